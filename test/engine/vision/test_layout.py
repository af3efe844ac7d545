"""Tests of the layout and indexing ops of ``vp``: axes, shape, joining, slicing, selection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from skimage import data as skimage_data

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.layout import (
    concat,
    expand_dims,
    gather_nd,
    reshape,
    slice_,
    squeeze,
    stack,
    take,
    to_chw,
    to_hwc,
    transpose,
)
from ros_vision_pipe.engine.vision.reductions import where_above

#: scikit-image's sample frames (the module is untyped).
FRAMES: Any = skimage_data

# --- to_chw, to_hwc, transpose ---------------------------------------------------------------


def test_to_chw_and_to_hwc_are_inverse_for_images_and_batches() -> None:
    image = FRAMES.astronaut()
    chw = to_chw(image)
    assert chw.shape == (3, 512, 512)
    assert chw.flags.c_contiguous
    np.testing.assert_array_equal(chw[0], image[:, :, 0])
    np.testing.assert_array_equal(to_hwc(chw), image)
    batch = np.stack([image, image[::-1]])
    assert to_chw(batch).shape == (2, 3, 512, 512)
    np.testing.assert_array_equal(to_hwc(to_chw(batch)), batch)


def test_to_chw_rejects_a_two_dimensional_tensor() -> None:
    with pytest.raises(
        VisionOpError, match=r"to_chw: t must be 3-D \(HWC\) or 4-D \(NHWC\), got tensor uint8\[2, 2\]"
    ):
        to_chw(np.zeros((2, 2), dtype=np.uint8))


def test_to_hwc_rejects_a_five_dimensional_tensor() -> None:
    with pytest.raises(VisionOpError, match=r"to_hwc: t must be 3-D \(CHW\) or 4-D \(NCHW\)"):
        to_hwc(np.zeros((1, 1, 1, 1, 1)))


def test_transpose_uses_one_based_axes() -> None:
    array = np.zeros((2, 3, 4))
    assert transpose(array, [1, 3, 2]).shape == (2, 4, 3)
    assert transpose(array, [-1, 1, 2]).shape == (4, 2, 3)


def test_transpose_rejects_a_repeated_axis() -> None:
    with pytest.raises(
        VisionOpError, match=r"transpose: perm must be a permutation of 1..3, got \[1, 1, 2\]"
    ):
        transpose(np.zeros((2, 3, 4)), [1, 1, 2])


def test_transpose_rejects_axis_zero() -> None:
    with pytest.raises(
        VisionOpError, match=r"transpose: perm entry must be in 1..2 or -2..-1 \(1-based\), got 0"
    ):
        transpose(np.zeros((2, 3)), [0, 1])


# --- reshape, squeeze, expand_dims -----------------------------------------------------------


def test_reshape_infers_one_minus_one() -> None:
    assert reshape(np.zeros((1, 165)), [33, -1]).shape == (33, 5)


def test_reshape_rejects_a_different_element_count() -> None:
    with pytest.raises(VisionOpError, match=r"reshape: cannot reshape tensor float64\[1, 165\] to \[33, 4\]"):
        reshape(np.zeros((1, 165)), [33, 4])


def test_reshape_rejects_two_minus_ones() -> None:
    with pytest.raises(VisionOpError, match=r"reshape: shape may contain at most one -1, got \[-1, -1\]"):
        reshape(np.zeros(4), [-1, -1])


def test_squeeze_removes_all_unit_axes_or_only_the_given_one() -> None:
    array = np.zeros((1, 1, 4, 5))
    assert squeeze(array).shape == (4, 5)  # type: ignore[union-attr]
    assert squeeze(array, 2).shape == (1, 4, 5)  # type: ignore[union-attr]
    assert squeeze(np.array([[7.0]])) == 7.0


def test_squeeze_rejects_an_axis_that_is_not_of_size_one() -> None:
    with pytest.raises(VisionOpError, match=r"squeeze: axis 3 has size 4, not 1"):
        squeeze(np.zeros((1, 1, 4)), 3)


def test_expand_dims_places_the_new_axis_at_its_one_based_position() -> None:
    array = np.zeros((3, 4))
    assert expand_dims(array, 1).shape == (1, 3, 4)
    assert expand_dims(array, 3).shape == (3, 4, 1)
    assert expand_dims(array, -1).shape == (3, 4, 1)


def test_expand_dims_rejects_an_axis_past_the_end() -> None:
    with pytest.raises(
        VisionOpError, match=r"expand_dims: axis must be in 1..3 or -3..-1 \(1-based\), got 4"
    ):
        expand_dims(np.zeros((3, 4)), 4)


# --- stack, concat ---------------------------------------------------------------------------


def test_stack_adds_a_leading_batch_axis_by_default() -> None:
    assert stack([np.zeros((3, 2)), np.ones((3, 2))]).shape == (2, 3, 2)
    assert stack([[1, 2], [3, 4]], -1).shape == (2, 2)


def test_stack_rejects_tensors_of_different_shapes() -> None:
    with pytest.raises(
        VisionOpError,
        match=r"stack: tensors\[2\] is tensor float64\[3\] but tensors\[1\] is tensor float64\[2\]",
    ):
        stack([np.zeros(2), np.zeros(3)])


def test_stack_rejects_an_empty_list() -> None:
    with pytest.raises(VisionOpError, match=r"stack: tensors must not be empty"):
        stack([])


def test_concat_joins_along_the_given_axis() -> None:
    out = concat([np.zeros((2, 4)), np.ones((3, 4))], 1)
    assert out.shape == (5, 4)
    assert concat([np.zeros((2, 4)), np.ones((2, 1))], -1).shape == (2, 5)


def test_concat_rejects_mismatched_other_axes() -> None:
    with pytest.raises(
        VisionOpError, match=r"concat: tensors\[2\] is tensor float64\[3, 5\], which does not match"
    ):
        concat([np.zeros((2, 4)), np.zeros((3, 5))], 1)


# --- slice, take, gather_nd ------------------------------------------------------------------


def test_slice_is_one_based_and_inclusive() -> None:
    pred = np.arange(20).reshape(2, 10)
    np.testing.assert_array_equal(slice_(pred, 2, 1, 4), pred[:, 0:4])
    np.testing.assert_array_equal(slice_(pred, 2, 6), pred[:, 5:])
    np.testing.assert_array_equal(slice_(pred, -1, -1, -1), pred[:, 9:10])


def test_slice_rejects_a_stop_before_start() -> None:
    with pytest.raises(VisionOpError, match=r"slice: stop \(2\) is before start \(3\) on an axis of size 10"):
        slice_(np.zeros(10), 1, 3, 2)


def test_slice_rejects_a_start_out_of_range() -> None:
    with pytest.raises(VisionOpError, match=r"slice: start must be in 1..10 or -10..-1, got 11"):
        slice_(np.zeros(10), 1, 11)


def test_take_selects_rows_by_one_based_index() -> None:
    boxes = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(take(boxes, [3, 1]), boxes[[2, 0]])
    np.testing.assert_array_equal(take(boxes, np.array([[2]])), boxes[[1]])
    np.testing.assert_array_equal(take(boxes, [4, 1], 2), boxes[:, [3, 0]])
    assert take(boxes, []).shape == (0, 4)


def test_take_rejects_index_zero() -> None:
    with pytest.raises(VisionOpError, match=r"take: index 0 is out of range 1..3"):
        take(np.zeros((3, 4)), [1, 0])


def test_gather_nd_picks_elements_and_rows_at_one_based_positions() -> None:
    grid = np.arange(24).reshape(2, 3, 4)
    np.testing.assert_array_equal(gather_nd(grid, [[1, 1, 1], [2, 3, 4]]), [0, 23])
    np.testing.assert_array_equal(gather_nd(grid, [[2, 1]]), [grid[1, 0]])
    assert gather_nd(grid, []).shape == (0, 3, 4)


def test_gather_nd_round_trips_where_above() -> None:
    scores = np.random.default_rng(0).random((5, 7))
    indices, values = where_above(scores, 0.5)
    np.testing.assert_array_equal(gather_nd(scores, indices), values)


def test_gather_nd_rejects_a_position_out_of_range() -> None:
    with pytest.raises(
        VisionOpError, match=r"gather_nd: index row 2 = \[3, 1\] is out of range for shape \[2, 2\]"
    ):
        gather_nd(np.zeros((2, 2)), [[1, 1], [3, 1]])


def test_gather_nd_rejects_too_many_index_columns() -> None:
    with pytest.raises(VisionOpError, match=r"gather_nd: indices must be \[K, m\] with 1 <= m <= 2"):
        gather_nd(np.zeros((2, 2)), [[1, 1, 1]])
