"""Tests of the box geometry ops of ``vp``: formats, IoU, NMS, scaling, clipping, mapping."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from skimage import data as skimage_data

from ros_vision_pipe.engine.vision import VisionOpError
from ros_vision_pipe.engine.vision import boxes as boxes_op
from ros_vision_pipe.engine.vision.boxes import box_convert, clip_boxes, iou, map_boxes, map_points, nms, scale_boxes
from ros_vision_pipe.engine.vision.image import crop_boxes, letterbox
from ros_vision_pipe.engine.vision.layout import (
    take,
)

#: scikit-image's sample frames (the module is untyped).
FRAMES: Any = skimage_data

# --- box_convert -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("xyxy", [10, 20, 50, 80]),
        ("xywh", [10, 20, 40, 60]),
        ("cxcywh", [30, 50, 40, 60]),
        ("yxyx", [20, 10, 80, 50]),
    ],
)
def test_box_convert_from_xyxy_gives_each_format(fmt: str, expected: list[int]) -> None:
    out = box_convert([[10, 20, 50, 80]], "xyxy", fmt)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [expected])


@pytest.mark.parametrize("src", ["xyxy", "xywh", "cxcywh", "yxyx"])
@pytest.mark.parametrize("dst", ["xyxy", "xywh", "cxcywh", "yxyx"])
def test_box_convert_round_trips_between_every_pair_of_formats(src: str, dst: str) -> None:
    boxes = np.random.default_rng(1).random((5, 4)) * 100
    np.testing.assert_allclose(box_convert(box_convert(boxes, src, dst), dst, src), boxes, atol=1e-9)


def test_box_convert_keeps_leading_axes() -> None:
    assert box_convert(np.zeros((1, 100, 4), dtype=np.float32), "yxyx", "xyxy").shape == (1, 100, 4)


def test_box_convert_rejects_an_unknown_format() -> None:
    with pytest.raises(VisionOpError, match=r"box_convert: dst must be one of .* got 'ltrb'"):
        box_convert([[0, 0, 1, 1]], "xyxy", "ltrb")


def test_box_convert_rejects_boxes_with_three_numbers() -> None:
    with pytest.raises(VisionOpError, match=r"box_convert: boxes must be a \[..., 4\] tensor"):
        box_convert([[0, 0, 1]], "xyxy", "xywh")


# --- iou and nms -----------------------------------------------------------------------------


def test_iou_is_the_intersection_over_union_matrix() -> None:
    a = [[0, 0, 10, 10], [0, 0, 0, 0]]
    b = [[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]]
    out = iou(a, b)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, [[50 / 150, 1.0, 0.0], [0.0, 0.0, 0.0]])


def test_iou_rejects_boxes_of_the_wrong_rank() -> None:
    with pytest.raises(VisionOpError, match=r"iou: b must be an \[N, 4\] tensor"):
        iou([[0, 0, 1, 1]], np.zeros((1, 1, 4)))


def test_nms_removes_overlapping_boxes_of_the_same_class_best_first() -> None:
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 9]]
    scores = [0.8, 0.9, 0.7, 0.3]
    assert nms(boxes, scores, 0.5) == [2, 3]


def test_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]]
    scores = [0.9, 0.8, 0.7]
    assert nms(boxes, scores, 0.5, [1, 2, 1]) == [1, 2]
    assert nms(boxes, scores, 0.5) == [1]


def test_nms_applies_the_score_threshold_and_max_detections() -> None:
    boxes = [[0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]]
    assert nms(boxes, [0.2, 0.6, 0.9], 0.5, None, 0.5) == [3, 2]
    assert nms(boxes, [0.2, 0.6, 0.9], 0.5, None, 0, 1) == [3]


def test_nms_drops_nan_scores_and_handles_no_boxes() -> None:
    assert nms([[0, 0, 1, 1], [5, 5, 6, 6]], [math.nan, 0.5], 0.5) == [2]
    assert nms([], [], 0.5) == []


def test_nms_result_selects_rows_with_take() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    keep = nms(boxes, [0.9, 0.8, 0.7], 0.5)
    np.testing.assert_array_equal(take(boxes, keep), boxes[[0, 2]])


def test_nms_rejects_a_score_count_that_differs_from_the_boxes() -> None:
    with pytest.raises(VisionOpError, match=r"nms: scores must have one entry per box \(2\), got \[0.5\]"):
        nms([[0, 0, 1, 1], [1, 1, 2, 2]], [0.5], 0.5)


def test_nms_rejects_an_iou_threshold_above_one() -> None:
    with pytest.raises(VisionOpError, match=r"nms: iou_threshold must be in 0\.\.1, got 1\.5"):
        nms([[0, 0, 1, 1]], [0.5], 1.5)


# --- scale, clip, map ------------------------------------------------------------------------


def test_scale_boxes_turns_normalised_boxes_into_pixels() -> None:
    np.testing.assert_allclose(scale_boxes([[0.1, 0.2, 0.5, 1.0]], 640, 480), [[64, 96, 320, 480]], rtol=1e-6)
    np.testing.assert_allclose(scale_boxes([[1, 2, 3, 4]], 2), [[2, 4, 6, 8]])


def test_clip_boxes_clamps_into_the_image() -> None:
    np.testing.assert_array_equal(clip_boxes([[-5, 10, 700, 500]], 640, 480), [[0, 10, 640, 480]])


def test_clip_boxes_rejects_a_negative_width() -> None:
    with pytest.raises(VisionOpError, match=r"clip_boxes: w and h must be >= 0, got -1.0, 10.0"):
        clip_boxes([[0, 0, 1, 1]], -1, 10)


def test_map_boxes_undoes_a_letterbox() -> None:
    info = {"scale": 0.5, "pad_x": 0.0, "pad_y": 80.0, "src_w": 1280, "src_h": 720}
    np.testing.assert_allclose(map_boxes([[10, 90, 110, 190]], info), [[20, 20, 220, 220]])


def test_map_boxes_undoes_a_crop_transform() -> None:
    transform = {"x0": 100.0, "y0": -20.0, "sx": 2.0, "sy": 0.5}
    np.testing.assert_allclose(map_boxes([[0, 0, 10, 40]], transform), [[100, -20, 120, 0]])


def test_map_boxes_maps_a_box_found_in_a_real_letterboxed_frame_back_onto_the_same_content() -> None:
    image = FRAMES.coffee()
    letterboxed, info = letterbox(image, 320, 320)
    original = np.array([[200.0, 100.0, 440.0, 300.0]])
    x1, y1, x2, y2 = (original[0] * info["scale"] + [info["pad_x"], info["pad_y"]] * 2).round().astype(int)
    found = map_boxes([[x1, y1, x2, y2]], info)
    np.testing.assert_allclose(found, original, atol=0.5 / info["scale"])
    patch_lb = letterboxed[y1:y2, x1:x2].astype(float).mean(axis=(0, 1))
    patch_orig = image[100:300, 200:440].astype(float).mean(axis=(0, 1))
    np.testing.assert_allclose(patch_lb, patch_orig, atol=3.0)


def test_map_boxes_rejects_an_info_that_is_neither_letterbox_nor_crop() -> None:
    with pytest.raises(
        VisionOpError, match=r"map_boxes: info must have the keys \{scale, pad_x, pad_y, src_w, src_h\}"
    ):
        map_boxes([[0, 0, 1, 1]], {"w": 3})


def test_map_boxes_rejects_a_letterbox_info_without_pad_y() -> None:
    with pytest.raises(VisionOpError, match="map_boxes: letterbox info is missing 'pad_y'"):
        map_boxes([[0, 0, 1, 1]], {"scale": 1, "pad_x": 0, "src_w": 1, "src_h": 1})


def test_map_boxes_rejects_a_zero_scale() -> None:
    with pytest.raises(VisionOpError, match=r"map_boxes: info\.sx and info\.sy must be > 0, got 0\.0, 1\.0"):
        map_boxes([[0, 0, 1, 1]], {"x0": 0, "y0": 0, "sx": 0, "sy": 1})


def test_map_points_maps_x_and_y_and_keeps_extra_columns() -> None:
    transform = {"x0": 10.0, "y0": 20.0, "sx": 2.0, "sy": 2.0}
    points = np.array([[[1.0, 2.0, -0.3, 0.9]]], dtype=np.float32)
    out = map_points(points, transform)
    np.testing.assert_allclose(out, [[[12.0, 24.0, -0.3, 0.9]]], rtol=1e-6)
    np.testing.assert_array_equal(out[..., 2:], points[..., 2:])
    np.testing.assert_array_equal(points[..., :2], [[[1.0, 2.0]]])  # input untouched


def test_map_points_with_crop_boxes_finds_the_original_pixel() -> None:
    image = FRAMES.astronaut()
    batch, transforms = crop_boxes(image, [[181, 58, 269, 177]], 88, 119)
    row, col = np.unravel_index(np.argmax(batch[0, :, :, 0]), batch.shape[1:3])
    x, y = map_points([[col, row]], transforms[0])[0]
    np.testing.assert_array_equal(image[int(y), int(x)], batch[0, row, col])


def test_map_points_rejects_points_with_one_column() -> None:
    with pytest.raises(VisionOpError, match=r"map_points: points must be \[..., D\] with D >= 2"):
        map_points([[1.0], [2.0]], {"x0": 0, "y0": 0, "sx": 1, "sy": 1})


#: Three crops' transforms x0, y0, sx, sy (odd values: float32 rounding shows).
TRANSFORMS = np.array([[10.1, -20.3, 1.7, 2.3], [-5.5, 7.25, 0.3, 0.9], [300.7, 410.2, 3.1, 1.1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_map_points_with_one_transform_per_crop_gives_the_bits_of_one_call_per_crop(dtype: Any) -> None:
    points = np.random.default_rng(3).uniform(-50, 300, (3, 33, 5)).astype(dtype)
    tables = [dict(zip(("x0", "y0", "sx", "sy"), row, strict=True)) for row in TRANSFORMS.tolist()]
    one_by_one = np.stack([map_points(points[n], tables[n]) for n in range(3)])
    for info in (TRANSFORMS, tables):
        batched = map_points(points, info)
        assert batched.dtype == dtype
        assert np.array_equal(batched.view(np.uint8), one_by_one.view(np.uint8))
    boxes = points[:, :, :4]
    per_crop = np.stack([map_boxes(boxes[n], tables[n]) for n in range(3)])
    assert np.array_equal(map_boxes(boxes, TRANSFORMS), per_crop)


def test_map_points_takes_one_crop_transform_as_a_four_number_tensor() -> None:
    points = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    table = {"x0": 10.1, "y0": -20.3, "sx": 1.7, "sy": 2.3}
    assert np.array_equal(map_points(points, TRANSFORMS[0]), map_points(points, table))


def test_map_points_with_no_crops_maps_nothing() -> None:
    assert map_points(np.zeros((0, 33, 5), np.float32), np.zeros((0, 4))).shape == (0, 33, 5)
    assert map_points(np.zeros((0, 33, 5), np.float32), []).shape == (0, 33, 5)


@pytest.mark.parametrize(("points", "info", "match"), [
    (np.zeros((3, 5, 2)), TRANSFORMS[:2], r"map_points: 2 transforms for 3 rows of points .*one transform per crop"),
    (np.zeros((3, 5, 2)), [], r"map_points: 0 transforms for 3 rows of points"),
    (np.zeros(2), TRANSFORMS, r"map_points: 3 transforms \(one per crop\) need points \[N, ..., D\]"),
    (np.zeros((3, 2)), np.zeros((3, 5)), r"map_points: info must be a letterbox info or crop transform table, "
                                          r"or an \[N, 4\] tensor"),
    (np.zeros((3, 2)), [[0, 0, 1, 1]] * 2 + [[0, 0, 0, 1]], r"map_points: info must hold finite transforms with "
                                                             r"sx and sy > 0"),
    (np.zeros((1, 2)), np.array([[0, np.nan, 1, 1]]), r"map_points: info must hold finite transforms"),
    (np.zeros((1, 2)), [0, 0, -1, 1], r"map_points: info\.sx and info\.sy must be > 0"),
    (np.zeros((2, 2)), [{"x0": 0, "y0": 0, "sx": 1, "sy": 1}, {"w": 3}],
     r"map_points: info must have the keys \{scale, pad_x, pad_y, src_w, src_h\}"),
    (np.zeros((2, 2)), "tf", r"map_points: info must be a tensor or a table of numbers, got 'tf'"),
])
def test_map_points_rejects_transforms_that_do_not_fit_the_crops(points: Any, info: Any, match: str) -> None:
    with pytest.raises(VisionOpError, match=match):
        map_points(points, info)


# --- boxes -----------------------------------------------------------------------------------


def test_boxes_of_a_detection_list_become_an_n_by_4_tensor() -> None:
    detections = [{"box": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}, "score": 0.5},
                  {"box": {"x1": 5.5, "y1": 6, "x2": 7, "y2": 8}, "score": 0.9}]
    got = boxes_op.boxes(detections)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[1, 2, 3, 4], [5.5, 6, 7, 8]])
    assert boxes_op.boxes([]).shape == (0, 4)


def test_boxes_names_the_detection_without_a_box() -> None:
    with pytest.raises(ValueError, match=r"boxes: boxes\[2\] is missing 'x1'"):
        boxes_op.boxes([{"box": {"x1": 1, "y1": 2, "x2": 3, "y2": 4}}, {"score": 1}])
