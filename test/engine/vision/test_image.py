"""Tests of the image ops of ``vp``: colour conversion, resize, letterbox and crops."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from skimage import data as skimage_data

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision.boxes import map_boxes, map_points
from ros_vision_pipe.engine.vision.image import convert_color, crop, crop_boxes, letterbox, resize

#: scikit-image's sample frames (the module is untyped).
FRAMES: Any = skimage_data


def read_only(array: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Return a read-only copy, as the engine may hand frames to the ops."""
    frozen = array.copy()
    frozen.flags.writeable = False
    return frozen


@pytest.fixture(scope="module")
def astronaut() -> NDArray[np.uint8]:
    """The 512 x 512 RGB astronaut photo, read-only."""
    return read_only(FRAMES.astronaut())


@pytest.fixture(scope="module")
def coffee() -> NDArray[np.uint8]:
    """The 400 x 600 RGB coffee photo, read-only."""
    return read_only(FRAMES.coffee())


# --- convert_color ---------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["bgr8", "rgba8", "bgra8"])
def test_convert_color_round_trips_a_real_frame_exactly(astronaut: NDArray[np.uint8], via: str) -> None:
    there = convert_color(astronaut, "rgb8", via)
    back = convert_color(there, via, "rgb8")
    np.testing.assert_array_equal(back, astronaut)


def test_convert_color_swaps_red_and_blue_for_bgr(astronaut: NDArray[np.uint8]) -> None:
    bgr = convert_color(astronaut, "rgb8", "bgr8")
    np.testing.assert_array_equal(bgr, astronaut[:, :, ::-1])


def test_convert_color_adds_an_opaque_alpha_channel(astronaut: NDArray[np.uint8]) -> None:
    rgba = convert_color(astronaut, "rgb8", "rgba8")
    assert rgba.shape == (512, 512, 4)
    assert np.all(rgba[:, :, 3] == 255)


def test_convert_color_mono_to_colour_replicates_the_grey_channel() -> None:
    page = FRAMES.page()
    rgb = convert_color(page, "mono8", "rgb8")
    assert rgb.shape == (*page.shape, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[:, :, channel], page)


def test_convert_color_to_mono_keeps_a_channel_axis_and_uses_luma_weights() -> None:
    red = np.zeros((2, 2, 3), dtype=np.uint8)
    red[..., 0] = 255
    mono = convert_color(red, "rgb8", "mono8")
    assert mono.shape == (2, 2, 1)
    assert mono[0, 0, 0] == 76  # round(0.299 * 255)
    assert convert_color(red, "bgr8", "mono8")[0, 0, 0] == 29  # round(0.114 * 255)


def test_convert_color_accepts_a_nested_table() -> None:
    table = [[[10, 20, 30], [40, 50, 60]]]
    np.testing.assert_array_equal(convert_color(table, "rgb8", "bgr8"), [[[30, 20, 10], [60, 50, 40]]])


def test_convert_color_with_equal_encodings_returns_the_image_unchanged(astronaut: NDArray[np.uint8]) -> None:
    assert convert_color(astronaut, "rgb8", "rgb8") is astronaut


def test_convert_color_rejects_an_unknown_encoding(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"convert_color: dst must be one of .* got 'hsv8'"):
        convert_color(astronaut, "rgb8", "hsv8")


def test_convert_color_rejects_a_channel_count_that_does_not_match_src(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="convert_color: img has 3 channels but src 'rgba8' needs 4"):
        convert_color(astronaut, "rgba8", "rgb8")


def test_convert_color_rejects_a_float_image() -> None:
    with pytest.raises(VisionOpError, match=r"convert_color: img must be a uint8 image .*float32"):
        convert_color(np.zeros((2, 2, 3), dtype=np.float32), "rgb8", "bgr8")


def test_convert_color_rejects_a_ragged_table() -> None:
    with pytest.raises(VisionOpError, match="convert_color: img must be a tensor or a rectangular table"):
        convert_color([[[1, 2, 3]], [[1, 2]]], "rgb8", "bgr8")


def test_convert_color_is_a_value_error_for_the_bridge() -> None:
    with pytest.raises(ValueError, match="convert_color: src must be one of"):
        convert_color(np.zeros((2, 2, 3), dtype=np.uint8), 3, "rgb8")  # type: ignore[arg-type]


# --- resize ----------------------------------------------------------------------------------


@pytest.mark.parametrize("interp", ["linear", "nearest", "area", "cubic"])
def test_resize_gives_the_requested_width_and_height(coffee: NDArray[np.uint8], interp: str) -> None:
    out = resize(coffee, 320, 200, interp)
    assert out.shape == (200, 320, 3)
    assert out.dtype == np.uint8


def test_resize_accepts_integral_floats_as_lua_numbers(coffee: NDArray[np.uint8]) -> None:
    assert resize(coffee, 64.0, 32.0).shape == (32, 64, 3)


def test_resize_keeps_a_single_channel_axis() -> None:
    mono = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    assert resize(mono, 8, 8).shape == (8, 8, 1)


def test_resize_of_a_float_heatmap_keeps_float32_and_two_dimensions() -> None:
    heat = np.zeros((10, 20), dtype=np.float32)
    heat[5, 10] = 1.0
    out = resize(heat, 40, 20, "nearest")
    assert out.shape == (20, 40)
    assert out.dtype == np.float32
    assert out.max() == 1.0


def test_resize_by_an_integer_factor_with_nearest_replicates_pixels() -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    out = resize(image, 8, 6, "nearest")
    np.testing.assert_array_equal(out, image.repeat(2, axis=0).repeat(2, axis=1))


def test_resize_rejects_a_negative_width(coffee: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="resize: width must be > 0, got -3"):
        resize(coffee, -3, 10)


def test_resize_rejects_a_zero_height(coffee: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="resize: height must be > 0, got 0"):
        resize(coffee, 10, 0)


def test_resize_rejects_a_fractional_size(coffee: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"resize: width must be an integer, got 3\.5"):
        resize(coffee, 3.5, 10)


def test_resize_rejects_an_unknown_interpolation(coffee: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"resize: interp must be one of .* got 'bilinear'"):
        resize(coffee, 10, 10, "bilinear")


def test_resize_rejects_a_one_dimensional_tensor() -> None:
    with pytest.raises(VisionOpError, match=r"resize: img must be a non-empty H x W or H x W x C array"):
        resize(np.zeros(5, dtype=np.uint8), 10, 10)


# --- letterbox -------------------------------------------------------------------------------


def test_letterbox_fits_a_landscape_frame_and_pads_top_and_bottom(coffee: NDArray[np.uint8]) -> None:
    out, info = letterbox(coffee, 640, 640)
    assert out.shape == (640, 640, 3)
    assert info == {"scale": 640 / 600, "pad_x": 0.0, "pad_y": 106.0, "src_w": 600, "src_h": 400}
    assert np.all(out[:106] == 114)
    assert np.all(out[106 + 427 :] == 114)
    assert not np.all(out[106:533] == 114)


def test_letterbox_then_map_boxes_round_trips_a_box_exactly(coffee: NDArray[np.uint8]) -> None:
    _, info = letterbox(coffee, 320, 320)
    original = np.array([[150.0, 80.0, 420.0, 310.0], [0.0, 0.0, 600.0, 400.0]])
    letterboxed = original * info["scale"] + [info["pad_x"], info["pad_y"], info["pad_x"], info["pad_y"]]
    np.testing.assert_allclose(map_boxes(letterboxed, info), original, rtol=0, atol=1e-9)


def test_letterbox_places_image_content_where_info_says(astronaut: NDArray[np.uint8]) -> None:
    wide = np.ascontiguousarray(astronaut[:256])  # 512 x 256: pads top and bottom at 1:1 scale
    out, info = letterbox(wide, 512, 512)
    assert info["scale"] == 1.0
    # The original pixel (row 100, col 300) sits at letterboxed (100 + pad_y, 300 + pad_x).
    back = map_points([[300.5 + info["pad_x"], 100.5 + info["pad_y"]]], info)
    np.testing.assert_allclose(back, [[300.5, 100.5]])
    np.testing.assert_array_equal(out[100 + int(info["pad_y"]), 300], wide[100, 300])


def test_letterbox_accepts_a_per_channel_pad_value(coffee: NDArray[np.uint8]) -> None:
    out, _ = letterbox(coffee, 64, 64, [0, 128, 255])
    np.testing.assert_array_equal(out[0, 0], [0, 128, 255])


def test_letterbox_does_not_modify_its_input(coffee: NDArray[np.uint8]) -> None:
    before = coffee.copy()
    letterbox(coffee, 100, 300)
    np.testing.assert_array_equal(coffee, before)


def test_letterbox_rejects_a_pad_value_with_the_wrong_channel_count(coffee: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"letterbox: pad_value must have 3 entries .* got \[1, 2\]"):
        letterbox(coffee, 64, 64, [1, 2])


def test_letterbox_rejects_a_pad_value_out_of_byte_range(coffee: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"letterbox: pad_value must be in 0\.\.255, got 300"):
        letterbox(coffee, 64, 64, 300)


def test_letterbox_rejects_a_zero_width(coffee: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="letterbox: width must be > 0, got 0"):
        letterbox(coffee, 0, 64)


def test_letterbox_rejects_an_image_with_two_channels() -> None:
    with pytest.raises(VisionOpError, match=r"letterbox: img must be an H x W x C image with C = 1, 3 or 4"):
        letterbox(np.zeros((4, 4, 2), dtype=np.uint8), 8, 8)


# --- crop ------------------------------------------------------------------------------------


def test_crop_inside_the_image_equals_slicing(astronaut: NDArray[np.uint8]) -> None:
    out = crop(astronaut, {"x1": 181, "y1": 58, "x2": 269, "y2": 177})
    np.testing.assert_array_equal(out, astronaut[58:177, 181:269])


def test_crop_covers_every_pixel_the_box_touches(astronaut: NDArray[np.uint8]) -> None:
    out = crop(astronaut, [10.5, 20.2, 30.1, 40.9])
    np.testing.assert_array_equal(out, astronaut[20:41, 10:31])


def test_crop_partly_outside_pads_with_zero_without_shifting(astronaut: NDArray[np.uint8]) -> None:
    out = crop(astronaut, {"x1": -10, "y1": 500, "x2": 20, "y2": 520})
    assert out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out[:12, 10:], astronaut[500:512, 0:20])
    assert np.all(out[:, :10] == 0)
    assert np.all(out[12:] == 0)


def test_crop_accepts_a_detection_table(astronaut: NDArray[np.uint8]) -> None:
    detection = {"box": {"x1": 0, "y1": 0, "x2": 4, "y2": 3}, "score": 0.9}
    np.testing.assert_array_equal(crop(astronaut, detection), astronaut[:3, :4])


def test_crop_rejects_an_empty_box(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="crop: box must have x2 > x1 and y2 > y1"):
        crop(astronaut, [10, 10, 10, 20])


def test_crop_rejects_a_box_table_without_y2(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="crop: box is missing 'y2'"):
        crop(astronaut, {"x1": 1, "y1": 1, "x2": 3})


def test_crop_rejects_a_box_of_three_numbers(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"crop: box must be \{x1, y1, x2, y2\}, got \[1, 2, 3\]"):
        crop(astronaut, [1, 2, 3])


# --- crop_boxes ------------------------------------------------------------------------------


def test_crop_boxes_at_native_size_copies_pixels_and_pads_outside(astronaut: NDArray[np.uint8]) -> None:
    batch, transforms = crop_boxes(astronaut, [[-20, -10, 44, 54], [100, 200, 164, 264]], 64, 64)
    assert batch.shape == (2, 64, 64, 3)
    assert transforms == [
        {"x0": -20.0, "y0": -10.0, "sx": 1.0, "sy": 1.0},
        {"x0": 100.0, "y0": 200.0, "sx": 1.0, "sy": 1.0},
    ]
    np.testing.assert_array_equal(batch[0, 10:, 20:], astronaut[0:54, 0:44])
    assert np.all(batch[0, :10] == 0)
    assert np.all(batch[0, :, :20] == 0)
    np.testing.assert_array_equal(batch[1], astronaut[200:264, 100:164])


def test_crop_boxes_transform_maps_a_crop_pixel_back_to_the_right_original_pixel(
    astronaut: NDArray[np.uint8],
) -> None:

    batch, transforms = crop_boxes(astronaut, [[100, 150, 164, 214]], 32, 32)
    transform = transforms[0]
    assert transform["sx"] == transform["sy"] == 2.0
    # Crop pixel (v, u) is the 2 x 2 original block whose centre the transform gives.
    for v, u in [(0, 0), (5, 17), (31, 31)]:
        x, y = map_points([[u + 0.5, v + 0.5]], transform)[0]
        col, row = int(x) - 1, int(y) - 1
        block = astronaut[row : row + 2, col : col + 2].astype(np.float64).mean(axis=(0, 1))
        np.testing.assert_allclose(batch[0, v, u], block, atol=1.0)


def test_crop_boxes_squares_and_expands_around_the_centre(astronaut: NDArray[np.uint8]) -> None:
    _, transforms = crop_boxes(astronaut, [[100, 100, 200, 150]], 50, 50, {"scale": 1.25, "square": True})
    assert transforms == [{"x0": 87.5, "y0": 62.5, "sx": 2.5, "sy": 2.5}]


def test_crop_boxes_box_partly_outside_the_image_keeps_its_centre(astronaut: NDArray[np.uint8]) -> None:
    batch, transforms = crop_boxes(astronaut, [[-50, -50, 50, 50]], 100, 100, {"pad_value": 7})
    assert transforms[0]["x0"] == -50.0
    assert np.all(batch[0, :50, :50] == 7)
    np.testing.assert_array_equal(batch[0, 50:, 50:], astronaut[:50, :50])


def test_crop_boxes_accepts_detection_tables(astronaut: NDArray[np.uint8]) -> None:
    dets = [{"box": {"x1": 0, "y1": 0, "x2": 8, "y2": 8}, "score": 1.0, "class_id": -1, "label": ""}]
    batch, _ = crop_boxes(astronaut, dets, 8, 8)
    np.testing.assert_array_equal(batch[0], astronaut[:8, :8])


def test_crop_boxes_of_no_boxes_is_an_empty_batch(astronaut: NDArray[np.uint8]) -> None:
    batch, transforms = crop_boxes(astronaut, [], 16, 16, [])
    assert batch.shape == (0, 16, 16, 3)
    assert transforms == []


def test_crop_boxes_rejects_a_box_of_zero_width(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(
        VisionOpError, match=r"crop_boxes: box 2 has zero or negative size, got \[5.0, 5.0, 5.0, 9.0\]"
    ):
        crop_boxes(astronaut, [[0, 0, 4, 4], [5, 5, 5, 9]], 8, 8)


def test_crop_boxes_rejects_a_misspelt_option(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="crop_boxes: unknown option 'scal'"):
        crop_boxes(astronaut, [[0, 0, 4, 4]], 8, 8, {"scal": 2})


def test_crop_boxes_rejects_a_non_positive_scale(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"crop_boxes: opts\.scale must be > 0, got 0\.0"):
        crop_boxes(astronaut, [[0, 0, 4, 4]], 8, 8, {"scale": 0})


def test_crop_boxes_rejects_a_non_boolean_square(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"crop_boxes: opts\.square must be true or false, got 1"):
        crop_boxes(astronaut, [[0, 0, 4, 4]], 8, 8, {"square": 1})


def test_crop_boxes_rejects_area_interpolation(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(
        VisionOpError, match=r"crop_boxes: interp must be one of \['cubic', 'linear', 'nearest'\]"
    ):
        crop_boxes(astronaut, [[0, 0, 4, 4]], 8, 8, {"interp": "area"})


def test_crop_boxes_rejects_boxes_with_five_columns(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match=r"crop_boxes: boxes must be an \[N, 4\] tensor"):
        crop_boxes(astronaut, [[0, 0, 4, 4, 1]], 8, 8)


def test_crop_boxes_rejects_non_finite_boxes(astronaut: NDArray[np.uint8]) -> None:
    with pytest.raises(VisionOpError, match="crop_boxes: boxes must be finite"):
        crop_boxes(astronaut, [[0, 0, np.nan, 4]], 8, 8)
