"""Tests of the tensor ops of ``vp``: layout, dtype, reductions, selection, arithmetic."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from skimage import data as skimage_data

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.tensor import (
    add,
    argmax,
    astype,
    clip,
    concat,
    exp,
    expand_dims,
    from_table,
    gather_nd,
    max_,
    mul,
    normalize,
    reshape,
    scale,
    sigmoid,
    slice_,
    softmax,
    squeeze,
    stack,
    take,
    to_chw,
    to_hwc,
    topk,
    totable,
    transpose,
    where_above,
    zeros,
)

#: scikit-image's sample frames (the module is untyped).
FRAMES: Any = skimage_data

# --- normalize -------------------------------------------------------------------------------


def test_normalize_applies_imagenet_mean_and_std_per_channel() -> None:
    image = FRAMES.astronaut()
    out = normalize(image, {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    expected = (image / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_normalize_with_scalars_maps_bytes_to_minus_one_one() -> None:
    out = normalize([[0, 255]], {"scale": 1 / 255, "mean": 0.5, "std": 0.5})
    np.testing.assert_allclose(out, [[-1.0, 1.0]], atol=1e-6)


def test_normalize_uses_channel_axis_for_channels_first_tensors() -> None:
    chw = np.ones((3, 2, 2), dtype=np.uint8)
    out = normalize(chw, {"mean": [1, 2, 3], "channel_axis": 1})
    np.testing.assert_array_equal(out[:, 0, 0], [0, -1, -2])


def test_normalize_without_options_only_converts_to_float32() -> None:
    out = normalize(np.array([1, 2], dtype=np.uint8), [])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1, 2])


def test_normalize_rejects_a_mean_per_channel_of_the_wrong_length() -> None:
    with pytest.raises(
        VisionOpError, match=r"normalize: opts.mean must have 3 entries \(one per channel\), got \[1, 2\]"
    ):
        normalize(np.zeros((2, 2, 3)), {"mean": [1, 2]})


def test_normalize_rejects_a_zero_std() -> None:
    with pytest.raises(VisionOpError, match=r"normalize: opts\.std must not be 0"):
        normalize(np.zeros((2, 3)), {"std": [1, 0, 1]})


def test_normalize_rejects_an_unknown_option() -> None:
    with pytest.raises(VisionOpError, match="normalize: unknown option 'stdev'"):
        normalize(np.zeros(3), {"stdev": 1})


def test_normalize_rejects_a_channel_axis_out_of_range() -> None:
    with pytest.raises(
        VisionOpError, match=r"normalize: opts.channel_axis must be in 1..3 or -3..-1 \(1-based\), got 4"
    ):
        normalize(np.zeros((2, 2, 3)), {"mean": [1, 2, 3], "channel_axis": 4})


# --- astype ----------------------------------------------------------------------------------


def test_astype_to_uint8_rounds_and_saturates() -> None:
    out = astype([-3.0, 0.4, 0.6, 254.5, 300.0], "uint8")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [0, 0, 1, 254, 255])


def test_astype_between_integer_types_saturates() -> None:
    np.testing.assert_array_equal(astype(np.array([-1, 256], dtype=np.int64), "uint8"), [0, 255])


def test_astype_to_bool_is_not_equal_to_zero() -> None:
    np.testing.assert_array_equal(astype([0.0, 0.5, -2.0], "bool"), [False, True, True])


def test_astype_to_the_same_dtype_returns_the_input() -> None:
    array = np.zeros(3, dtype=np.float32)
    assert astype(array, "float32") is array


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "uint8", "int32", "int64", "bool"])
def test_astype_produces_every_supported_dtype(dtype: str) -> None:
    assert astype([1, 2], dtype).dtype == np.dtype(dtype)


def test_astype_rejects_an_unknown_dtype() -> None:
    with pytest.raises(VisionOpError, match=r"astype: dtype must be one of .* got 'double'"):
        astype([1.0], "double")


def test_astype_rejects_nan_to_an_integer_type() -> None:
    with pytest.raises(VisionOpError, match="astype: cannot convert NaN to int32"):
        astype([1.0, math.nan], "int32")


# --- layout ----------------------------------------------------------------------------------


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


# --- activations and reductions ----------------------------------------------------------------


def test_softmax_sums_to_one_and_survives_large_logits() -> None:
    out = softmax([[1000.0, 1000.0], [0.0, math.log(3.0)]])
    np.testing.assert_allclose(out, [[0.5, 0.5], [0.25, 0.75]], rtol=1e-6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(softmax(np.zeros((2, 3)), 1).sum(axis=0), [1, 1, 1])


def test_sigmoid_is_the_logistic_function_without_overflow_warnings() -> None:
    with np.errstate(all="raise"):
        out = sigmoid([-1000.0, 0.0, 2.0])
    np.testing.assert_allclose(out, [0.0, 0.5, 1 / (1 + math.exp(-2))], rtol=1e-6)


def test_exp_returns_float32() -> None:
    out = exp([0, 1])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [1, math.e], rtol=1e-6)


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


# --- tables and construction -------------------------------------------------------------------


def test_totable_returns_nested_python_numbers() -> None:
    out = totable(np.array([[1.5, 2.0]], dtype=np.float32))
    assert out == [[1.5, 2.0]]
    assert type(out[0][0]) is float
    assert totable(np.array(3, dtype=np.int64)) == 3


def test_totable_rejects_more_than_100000_elements() -> None:
    with pytest.raises(
        VisionOpError, match=r"totable: tensor of 100001 elements is too large for a Lua table"
    ):
        totable(np.zeros(100_001))


def test_zeros_and_from_table_build_tensors_of_the_requested_dtype() -> None:
    z = zeros([1, 3, 2], "int64")
    assert z.shape == (1, 3, 2)
    assert z.dtype == np.int64
    assert zeros(4).shape == (4,)
    t = from_table([[10, 13], [16, 30]])
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t, [[10, 13], [16, 30]])
    assert from_table([True, False], "bool").dtype == np.bool_


def test_zeros_rejects_a_negative_size() -> None:
    with pytest.raises(VisionOpError, match="zeros: shape entry must be >= 0, got -1"):
        zeros([2, -1])


def test_from_table_rejects_strings() -> None:
    with pytest.raises(VisionOpError, match=r"from_table: values must hold numbers, got \['a', 'b'\]"):
        from_table(["a", "b"])


def test_from_table_rejects_a_ragged_table() -> None:
    with pytest.raises(VisionOpError, match="from_table: values must be a tensor or a rectangular table"):
        from_table([[1, 2], [3]])


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


def test_ops_do_not_modify_read_only_inputs() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    array.flags.writeable = False
    before = array.copy()
    for result in (
        normalize(array, {"mean": 1}),
        softmax(array),
        clip(array, 0, 2),
        add(array, 1),
        transpose(array, [2, 1]),
        slice_(array, 1, 1),
    ):
        assert isinstance(result, np.ndarray)
    np.testing.assert_array_equal(array, before)


# --- registry --------------------------------------------------------------------------------


def test_every_vp_function_is_registered_documented_and_has_a_lua_example() -> None:
    from pathlib import Path

    from ros_vision_pipe.engine.vision import VP_FUNCTIONS

    doc = (Path(__file__).resolve().parents[3] / "docs" / "lua_api.md").read_text(encoding="utf-8")
    for name, function in VP_FUNCTIONS.items():
        assert f"vp.{name}(" in doc, name
        assert "Lua::" in (function.__doc__ or ""), name


def test_vision_op_errors_are_value_errors_for_the_bridge() -> None:
    assert issubclass(VisionOpError, ValueError)
