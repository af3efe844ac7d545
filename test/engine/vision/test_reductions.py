"""Tests of the reductions of ``vp``: softmax, argmax, max, topk, where_above."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.reductions import argmax, max_, softmax, topk, where_above

# --- softmax ---------------------------------------------------------------------------------


def test_softmax_sums_to_one_and_survives_large_logits() -> None:
    out = softmax([[1000.0, 1000.0], [0.0, math.log(3.0)]])
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.25, 0.75]], rtol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(softmax(np.zeros((2, 3)), 1).sum(axis=0), [1, 1, 1])


# --- argmax and max --------------------------------------------------------------------------


def test_argmax_returns_one_based_int64_indices() -> None:
    out = argmax([[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]])
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [2, 1])
    np.testing.assert_array_equal(argmax([[0.1, 0.7], [0.9, 0.0]], 1), [2, 1])


def test_argmax_of_a_vector_is_a_plain_number() -> None:
    out = argmax([3.0, 9.0, 1.0])
    assert out == 2
    assert type(out) is int


def test_argmax_rejects_axis_zero() -> None:
    with pytest.raises(VisionOpError, match=r"argmax: axis must be in 1..2 or -2..-1 \(1-based\), got 0"):
        argmax(np.zeros((2, 2)), 0)


def test_argmax_rejects_a_scalar() -> None:
    with pytest.raises(VisionOpError, match="argmax: t must have at least one axis"):
        argmax(5.0)


def test_max_reduces_everything_to_a_number_or_one_axis_to_a_tensor() -> None:
    scores = [[0.1, 0.7], [0.9, 0.2]]
    assert max_(scores) == pytest.approx(0.9)
    np.testing.assert_allclose(max_(scores, 2), [0.7, 0.9])
    assert max_([1, 5, 2], 1) == 5


def test_max_rejects_an_empty_tensor() -> None:
    with pytest.raises(VisionOpError, match=r"max: t must not be empty, got tensor float64\[0\]"):
        max_(np.zeros(0))


# --- topk and where_above --------------------------------------------------------------------


def test_topk_returns_values_and_one_based_indices_best_first() -> None:
    values, indices = topk([[0.1, 0.5, 0.3, 0.5]], 3)
    np.testing.assert_allclose(values, [[0.5, 0.5, 0.3]])
    np.testing.assert_array_equal(indices, [[2, 4, 3]])
    assert indices.dtype == np.int64
    values, _ = topk([1, 2], 10)
    np.testing.assert_array_equal(values, [2, 1])


def test_topk_rejects_k_zero() -> None:
    with pytest.raises(VisionOpError, match="topk: k must be >= 1, got 0"):
        topk([1, 2], 0)


def test_where_above_returns_sorted_one_based_positions_and_values() -> None:
    scores = np.array([[0.1, 0.8], [0.95, 0.2], [0.6, 0.5]], dtype=np.float32)
    indices, values = where_above(scores, 0.5)
    np.testing.assert_array_equal(indices, [[2, 1], [1, 2], [3, 1]])
    np.testing.assert_allclose(values, [0.95, 0.8, 0.6])
    indices, values = where_above(scores, 0.5, 2)
    assert indices.shape == (2, 2)
    indices, values = where_above(scores, 0.99)
    assert indices.shape == (0, 2)
    assert values.shape == (0,)


def test_where_above_rejects_a_non_numeric_threshold() -> None:
    with pytest.raises(VisionOpError, match="where_above: thr must be a number, got 'high'"):
        where_above([1.0], "high")
