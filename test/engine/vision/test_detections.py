"""Tests of the detection ops of ``vp``: the standard detection format and heatmap peaks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ros_vision_pipe.engine.vision import Detection, VisionOpError
from ros_vision_pipe.engine.vision.boxes import box_convert, scale_boxes
from ros_vision_pipe.engine.vision.detections import detections, heatmap_peaks, select_detections
from ros_vision_pipe.engine.vision.layout import take
from ros_vision_pipe.engine.vision.reductions import where_above

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


def test_detections_with_keypoints_are_exactly_the_tables_of_detection_records() -> None:
    rng = np.random.default_rng(7)
    boxes, points = rng.uniform(0, 500, (3, 4)).astype(np.float32), rng.standard_normal((3, 5, 4)).astype(np.float32)
    tables = detections(boxes, [0.5, 0.25, 1.0], [1, 2, 1], ["a", "b"], points)
    records = [Detection.from_lua(table) for table in tables]
    assert [record.to_lua() for record in records] == tables
    assert [list(table) for table in tables] == [["box", "score", "class_id", "label", "keypoints"]] * 3
    assert tables[2]["keypoints"][4] == dict(zip(("x", "y", "z", "score"), points[2, 4].tolist(), strict=True))


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


def _chain(boxes, scores, thr, class_ids, labels, fmt, sx, sy, limit=None):  # noqa: ANN001, ANN202
    """The vp calls select_detections stands for, one after the other."""
    keep, _ = where_above(scores, thr, limit)
    xyxy = scale_boxes(box_convert(take(boxes, keep), fmt, "xyxy"), sx, sy)
    return detections(xyxy, take(scores, keep), take(class_ids, keep), labels)


def test_select_detections_equals_the_where_above_take_convert_scale_detections_chain() -> None:
    rng = np.random.default_rng(7)
    boxes = rng.random((100, 4), dtype=np.float32)
    scores = rng.random(100, dtype=np.float32)
    scores[[3, 40]] = scores[10]  # ties keep input order
    classes = rng.integers(1, 4, 100).astype(np.float32)
    labels = ["person", "bicycle", "car"]
    for limit in (None, 5):
        expected = _chain(boxes, scores, 0.5, classes, labels, "yxyx", 640, 480, limit)
        got = select_detections(boxes[None], scores[None], 0.5, {  # a batch of one, as detectors output
            "class_ids": classes[None], "labels": labels, "format": "yxyx", "scale": [640, 480], "limit": limit})
        assert got == expected and len(got) == (5 if limit else int((scores > 0.5).sum()))
    assert [d["score"] for d in got] == sorted((d["score"] for d in got), reverse=True)


def test_select_detections_defaults_to_xyxy_unscaled_without_classes() -> None:
    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
    got = select_detections(boxes, np.array([0.2, 0.9], dtype=np.float32), 0.1)
    corners = [[d["box"][k] for k in ("x1", "y1", "x2", "y2")] for d in got]
    assert corners == [[5, 6, 7, 8], [1, 2, 3, 4]]
    assert [d["class_id"] for d in got] == [-1, -1]
    assert select_detections(boxes, np.array([0.2, 0.9], dtype=np.float32), 0.95) == []
    scaled = select_detections(boxes, np.array([0.2, 0.9], dtype=np.float32), 0.1, {"scale": [2]})[0]["box"]
    assert [scaled[k] for k in ("x1", "y1", "x2", "y2")] == [10, 12, 14, 16]


@pytest.mark.parametrize(("args", "message"), [
    ((np.zeros((3, 4)), np.zeros(2), 0.5), r"select_detections: boxes must be \[2, 4\]"),
    ((np.zeros((2, 4)), np.zeros((2, 2)), 0.5), "select_detections: scores must have 1 dimension"),
    ((np.zeros((2, 4)), np.zeros(2), 0.5, {"colour": 1}), r"unknown option\(s\) \['colour'\]"),
    ((np.zeros((2, 4)), np.zeros(2), 0.5, {"format": "xy"}), "format must be one of"),
    ((np.zeros((2, 4)), np.zeros(2), 0.5, {"scale": [1, 2, 3]}), "scale must be"),
    ((np.zeros((2, 4)), np.zeros(2), 0.5, {"class_ids": np.zeros(3)}), "class_ids must have 2 entries"),
    ((np.zeros((2, 4)), np.zeros(2), 0.5, "yxyx"), "options must be a table"),
    ((np.zeros((2, 4)), np.ones(2), 0.5, {"class_ids": np.array([1.5, 1])}),
     "select_detections: class_ids must be integers"),
    ((np.zeros((2, 4)), np.ones(2), 0.5, {"class_ids": np.array([3, 1]), "labels": ["a", "b"]}),
     r"select_detections: class_id 3 has no entry in labels \(1..2\)"),
    ((np.zeros((2, 4)), np.ones(2), 0.5, {"labels": ["a", "b"]}),
     "select_detections: labels without class_ids must be a single name"),
])
def test_select_detections_rejects_bad_arguments_naming_the_op(args, message) -> None:  # noqa: ANN001
    with pytest.raises(VisionOpError, match=message):
        select_detections(*args)
