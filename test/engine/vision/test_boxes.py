"""Tests of the box ops of ``vp``: formats, NMS, mapping, IoU, detections, heatmap peaks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from skimage import data as skimage_data

from ros_vision_pipe.engine.vision import Detection, VisionOpError
from ros_vision_pipe.engine.vision import boxes as boxes_op
from ros_vision_pipe.engine.vision.boxes import (
    box_convert,
    clip_boxes,
    detections,
    heatmap_peaks,
    iou,
    map_boxes,
    map_points,
    nms,
    scale_boxes,
)
from ros_vision_pipe.engine.vision.image import crop_boxes, letterbox
from ros_vision_pipe.engine.vision.tensor import take

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


# --- detections ------------------------------------------------------------------------------


def test_detections_builds_the_standard_detection_format() -> None:
    out = detections([[10.1, 20.0, 30.0, 40.0]], [0.9], [1], ["person"])
    assert out == [
        {
            "box": {"x1": 10.1, "y1": 20.0, "x2": 30.0, "y2": 40.0},
            "score": 0.9,
            "class_id": 1,
            "label": "person",
        }
    ]
    assert type(out[0]["class_id"]) is int
    assert type(out[0]["score"]) is float


def test_detections_without_classes_use_minus_one_and_an_empty_label() -> None:
    out = detections(np.array([[1, 2, 3, 4]], dtype=np.float32), np.array([0.5], dtype=np.float32))
    assert out[0]["class_id"] == -1
    assert out[0]["label"] == ""
    assert "keypoints" not in out[0]


def test_detections_without_scores_use_nan() -> None:
    assert math.isnan(detections([[1, 2, 3, 4]])[0]["score"])


def test_detections_of_a_single_class_detector_take_the_one_label_without_class_ids() -> None:
    out = detections([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5, 0.6], None, ["person"])
    assert [(d["class_id"], d["label"]) for d in out] == [(-1, "person"), (-1, "person")]


def test_detections_reject_several_labels_without_class_ids() -> None:
    with pytest.raises(VisionOpError, match=r"detections: labels without class_ids must be a single name"):
        detections([[0, 0, 1, 1]], [0.5], None, ["person", "car"])


def test_detections_look_labels_up_by_exact_id_in_a_key_table() -> None:
    out = detections([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5, 0.6], [0, 1], {"0": "person", "1": "bicycle"})
    assert [d["label"] for d in out] == ["person", "bicycle"]


def test_detections_attach_keypoints_with_nan_for_missing_fields() -> None:
    landmarks = np.array([[[5.0, 6.0], [7.0, 8.0]]], dtype=np.float32)
    out = detections([[0, 0, 10, 10]], [0.9], None, None, landmarks)
    keypoints = out[0]["keypoints"]
    assert len(keypoints) == 2
    assert keypoints[1]["x"] == 7.0
    assert keypoints[1]["y"] == 8.0
    assert math.isnan(keypoints[0]["z"])
    assert math.isnan(keypoints[0]["score"])


def test_detections_read_keypoint_columns_as_x_y_z_score_by_default_or_as_named() -> None:
    pose = np.array([[[1.0, 2.0, 3.0, 0.9, 0.8]]])
    default = detections([[0, 0, 1, 1]], [1.0], keypoints=pose)[0]["keypoints"][0]
    assert default == {"x": 1.0, "y": 2.0, "z": 3.0, "score": 0.9}
    named = detections([[0, 0, 1, 1]], [1.0], keypoints=pose[:, :, :3], keypoint_fields=["x", "y", "score"])
    assert named[0]["keypoints"][0]["score"] == 3.0
    assert math.isnan(named[0]["keypoints"][0]["z"])


def test_detections_tables_parse_back_into_detection_records() -> None:
    table = detections([[1, 2, 3, 4]], [0.5], [3], None, np.zeros((1, 1, 4)))[0]
    record = Detection.from_lua(table)
    assert (record.x1, record.y2, record.class_id, record.label) == (1.0, 4.0, 3, "")
    assert record.keypoints is not None
    assert record.to_lua() == table


def test_detections_of_no_boxes_is_an_empty_list() -> None:
    assert detections(np.zeros((0, 4)), np.zeros(0)) == []


def test_detections_reject_a_class_without_a_label() -> None:
    with pytest.raises(VisionOpError, match=r"detections: class_id 3 has no entry in labels \(1..2\)"):
        detections([[0, 0, 1, 1]], [0.5], [3], ["a", "b"])


def test_detections_reject_fractional_class_ids() -> None:
    with pytest.raises(VisionOpError, match="detections: class_ids must be integers"):
        detections([[0, 0, 1, 1]], [0.5], [1.5])


def test_detections_reject_keypoints_for_a_different_number_of_boxes() -> None:
    with pytest.raises(
        VisionOpError, match=r"detections: keypoints must be \[N, K, D\] with N = 1 and D >= 2"
    ):
        detections([[0, 0, 1, 1]], [0.5], None, None, np.zeros((2, 5, 2)))


def test_detections_reject_an_unknown_keypoint_field() -> None:
    with pytest.raises(VisionOpError, match=r"detections: keypoint field must be one of .* got 'vis'"):
        detections([[0, 0, 1, 1]], [0.5], keypoints=np.zeros((1, 1, 3)), keypoint_fields=["x", "y", "vis"])


def test_detections_reject_labels_that_are_a_string() -> None:
    with pytest.raises(
        VisionOpError, match="detections: labels must be an array or a key table of names, got 'person'"
    ):
        detections([[0, 0, 1, 1]], [0.5], [1], "person")


def test_detection_from_lua_rejects_a_table_without_box() -> None:
    with pytest.raises(VisionOpError, match=r"detection: a detection must be a table with a box"):
        Detection.from_lua({"score": 1.0})


# --- heatmap_peaks ---------------------------------------------------------------------------


def test_heatmap_peaks_finds_local_maxima_above_threshold_best_first() -> None:
    heat = np.zeros((1, 1, 20, 30), dtype=np.float32)
    heat[0, 0, 5, 7] = 0.9
    heat[0, 0, 5, 8] = 0.6  # neighbour of a higher peak: suppressed
    heat[0, 0, 15, 25] = 0.95
    heat[0, 0, 2, 2] = 0.3  # below threshold
    indices, scores = heatmap_peaks(heat, 0.5)
    np.testing.assert_array_equal(indices, [[16, 26], [6, 8]])
    np.testing.assert_allclose(scores, [0.95, 0.9])
    assert indices.dtype == np.int64


def test_heatmap_peaks_honours_kernel_and_limit() -> None:
    heat = np.zeros((10, 10), dtype=np.float32)
    heat[2, 2], heat[2, 5] = 0.9, 0.8
    assert len(heatmap_peaks(heat, 0.5, 3)[0]) == 2
    assert len(heatmap_peaks(heat, 0.5, 7)[0]) == 1
    assert len(heatmap_peaks(heat, 0.5, 3, 1)[0]) == 1


def test_heatmap_peaks_rejects_an_even_kernel() -> None:
    with pytest.raises(VisionOpError, match="heatmap_peaks: kernel must be odd, got 4"):
        heatmap_peaks(np.zeros((4, 4)), 0.5, 4)


def test_heatmap_peaks_rejects_a_three_dimensional_map() -> None:
    with pytest.raises(VisionOpError, match=r"heatmap_peaks: hm must be a 2-D heatmap \[H, W\]"):
        heatmap_peaks(np.zeros((2, 4, 4)), 0.5)


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
