"""Tests of the tensor creation and conversion ops of ``vp``: normalize, astype, tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from skimage import data as skimage_data

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.elementwise import add, clip
from ros_vision_pipe.engine.vision.layout import (
    slice_,
    transpose,
)
from ros_vision_pipe.engine.vision.reductions import softmax
from ros_vision_pipe.engine.vision.tensor import astype, from_table, normalize, totable, zeros

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


@pytest.mark.parametrize("opts", [None, {"scale": 1 / 255}, {"mean": 0, "std": 1}, {"mean": [0, 0], "std": [1, 1]},
                                  {"scale": 0.3, "mean": 0.1, "std": 0.7}, {"mean": [0.1, -2], "std": [3, 0.5]}])
def test_normalize_gives_the_bits_of_its_formula_whatever_terms_it_leaves_out(opts: Any) -> None:
    values = np.array([[-0.0, 0.0], [np.nan, np.inf], [-np.inf, 3.3], [255, 1e-40]])
    o = opts or {}
    mean = np.asarray(o.get("mean", 0.0), dtype=np.float32)
    std = np.asarray(o.get("std", 1.0), dtype=np.float32)
    want = (values.astype(np.float32) * np.float32(o.get("scale", 1.0)) - mean) / std
    got = normalize(values, opts)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))


@pytest.mark.parametrize("shape", [(7,), (5, 6), (4, 5, 3), (2, 4, 5, 3), (4, 5, 4), (3, 4, 5)])
@pytest.mark.parametrize("opts", [{"scale": 1 / 255, "mean": 0.5, "std": 0.5}, {"mean": [104, 117, 123]},
                                  {"scale": 1 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                                  {"mean": [1, 2, 3], "channel_axis": 1}, {"std": [3, 0.5, 7, 0.1]}])
def test_normalize_of_bytes_gives_the_bits_of_its_formula_by_table_or_not(shape: tuple[int, ...], opts: Any) -> None:
    values = np.random.default_rng(5).integers(0, 256, shape).astype(np.uint8)
    values.flat[:2] = (0, 255)
    axis = opts.get("channel_axis", 0) - 1
    per_channel = [key for key in ("mean", "std") if isinstance(opts.get(key), list)]
    if per_channel and len(opts[per_channel[0]]) != shape[axis]:
        with pytest.raises(VisionOpError, match="entries \\(one per channel\\)"):
            normalize(values, opts)
        return
    terms = []
    for key, default in (("mean", 0.0), ("std", 1.0)):
        term = np.asarray(opts.get(key, default), dtype=np.float32)
        if per_channel:
            term = np.broadcast_to(term, (shape[axis],)).reshape([-1 if i == axis % len(shape) else 1
                                                                  for i in range(len(shape))])
        terms.append(term)
    want = (values.astype(np.float32) * np.float32(opts.get("scale", 1.0)) - terms[0]) / terms[1]
    got = normalize(values, opts)
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))


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


# --- tables and construction -----------------------------------------------------------------


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


# --- all tensor ops --------------------------------------------------------------------------


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
