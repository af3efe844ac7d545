"""Tests of the elementwise ops of ``vp``: activations and arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.elementwise import add, clip, exp, mul, scale, sigmoid
from ros_vision_pipe.engine.vision.reductions import argmax
from ros_vision_pipe.engine.vision.tensor import from_table

# --- activations -----------------------------------------------------------------------------


def test_sigmoid_is_the_logistic_function_without_overflow_warnings() -> None:
    with np.errstate(all="raise"):
        out = sigmoid([-1000.0, 0.0, 2.0])
    np.testing.assert_allclose(out, [0.0, 0.5, 1 / (1 + math.exp(-2))], rtol=1e-6)


def test_exp_returns_float32() -> None:
    out = exp([0, 1])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [1, math.e], rtol=1e-6)


# --- arithmetic ------------------------------------------------------------------------------


def test_add_of_integer_tensors_and_integral_numbers_stays_integer_without_overflow() -> None:
    out = add(np.array([250, 1], dtype=np.uint8), 10)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [260, 11])
    np.testing.assert_array_equal(add(argmax([[0.0, 1.0]]), -1), [1])


def test_add_with_a_fractional_number_gives_float32() -> None:
    out = add(np.array([1, 2], dtype=np.int64), 0.5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [1.5, 2.5])


def test_mul_broadcasts_a_row_vector_over_rows() -> None:
    xy = np.array([[0.5, 0.5], [1.0, 0.0]], dtype=np.float32)
    out = mul(xy, from_table([640, 480]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[320, 240], [640, 0]])


def test_mul_keeps_float64() -> None:
    assert mul(np.ones(2, dtype=np.float64), 2).dtype == np.float64


def test_mul_rejects_shapes_that_do_not_broadcast() -> None:
    with pytest.raises(
        VisionOpError, match=r"mul: cannot broadcast tensor float32\[2, 2\] with tensor float32\[3\]"
    ):
        mul(np.zeros((2, 2), dtype=np.float32), np.zeros(3, dtype=np.float32))


def test_scale_multiplies_by_a_number() -> None:
    np.testing.assert_allclose(scale(np.array([0.25, 0.5], dtype=np.float32), 4), [1, 2])


def test_scale_rejects_a_tensor_factor() -> None:
    with pytest.raises(VisionOpError, match=r"scale: s must be a number \(use vp.mul for tensors\)"):
        scale(np.ones(2), [1, 2])


def test_clip_keeps_the_dtype_and_allows_one_sided_bounds() -> None:
    out = clip(np.array([-5, 3, 300], dtype=np.int64), 0, 255)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [0, 3, 255])
    np.testing.assert_allclose(clip([-1.0, 2.0], 0, None), [0.0, 2.0])
    np.testing.assert_array_equal(clip(np.array([0, 200], dtype=np.uint8), -10.5, 100.5), [0, 100])


def test_clip_rejects_lo_above_hi() -> None:
    with pytest.raises(VisionOpError, match=r"clip: lo must be <= hi, got lo=2.0, hi=1.0"):
        clip([1.0], 2, 1)
