"""FrameResult -> message fields -> rosbags / rclpy messages (ros_vision_pipe.result_mapping)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import MappingProxyType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome, ResultStatus
from ros_vision_pipe.result_mapping import (
    FUSED_RESULT,
    MODEL_RESULT,
    RosbagsFactory,
    fill,
    frame_messages,
    fused_result_fields,
    header_fields,
    model_result_fields,
    payload_fields,
)

MSG_DIR = Path(__file__).resolve().parents[1] / "msg"
HEADER = header_fields(12.25, "camera")
PERSON = {"box": {"x1": 329.0, "y1": 28.0, "x2": 487.0, "y2": 209.0}, "score": 0.75, "class_id": 1,
          "label": "person"}


def outcome(value: Any, status: ResultStatus = ResultStatus.OK, model: str = "det", **kw: Any) -> ModelOutcome:
    return ModelOutcome(model, status, value, kw.pop("computed_on", 5), **kw)


def frame(outcomes: dict[str, ModelOutcome], **kw: Any) -> FrameResult:
    return FrameResult(5, "/camera/image_raw", 12.25, kw.pop("mode", Mode.SERIAL), MappingProxyType(outcomes), **kw)


def test_standard_detections_map_to_detection_fields_with_keypoints() -> None:
    value = {"detections": [{**PERSON, "keypoints": [{"x": 1, "y": 2, "z": -3.5, "score": 0.9}, [4, 5]]}]}
    (det,) = payload_fields(value)["detections"]
    assert (det["x_min"], det["y_min"], det["x_max"], det["y_max"]) == (329.0, 28.0, 487.0, 209.0)
    assert (det["score"], det["class_id"], det["label"]) == (0.75, 1, "person")
    assert det["keypoints"][0] == {"x": 1.0, "y": 2.0, "z": -3.5, "score": 0.9}
    assert det["keypoints"][1]["x"] == 4.0 and math.isnan(det["keypoints"][1]["z"])


def test_a_box_given_as_an_array_and_missing_fields_take_their_defaults() -> None:
    (det,) = payload_fields({"detections": [{"box": [1, 2, 3, 4]}]})["detections"]
    assert (det["x_min"], det["y_max"], det["class_id"], det["label"], det["keypoints"]) == (1.0, 4.0, -1, "", [])
    assert math.isnan(det["score"])


def test_a_bare_list_of_detections_is_read_as_detections() -> None:
    fields = payload_fields([PERSON, PERSON])
    assert len(fields["detections"]) == 2 and fields["extra_json"] == ""


def test_classifications_features_and_masks_map_to_their_fields() -> None:
    value = {
        "classifications": [{"class_id": 2, "label": "cat", "score": 0.7}],
        "features": {"embedding": np.arange(6, dtype=np.float64).reshape(2, 3)},
        "masks": [np.eye(3, dtype=np.uint8), np.ones((2, 2), bool), np.full((1, 2), 0.5, np.float32)],
    }
    fields = payload_fields(value, HEADER)
    assert fields["classifications"] == [{"class_id": 2, "label": "cat", "score": 0.7}]
    (feature,) = fields["features"]
    assert feature["name"] == "embedding" and feature["shape"].tolist() == [2, 3]
    assert feature["data"].dtype == np.float32 and feature["data"].tolist() == [0, 1, 2, 3, 4, 5]
    mono, boolean, floating = fields["masks"]
    assert (mono["encoding"], mono["height"], mono["width"], mono["step"]) == ("mono8", 3, 3, 3)
    assert mono["data"].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 1] and mono["header"] is HEADER
    assert boolean["encoding"] == "mono8" and boolean["data"].tolist() == [1, 1, 1, 1]
    assert (floating["encoding"], floating["step"]) == ("32FC1", 8)
    assert np.frombuffer(floating["data"].tobytes(), "<f4").tolist() == [0.5, 0.5]


def test_features_given_as_a_list_of_named_tables_keep_their_shape() -> None:
    (feature,) = payload_fields({"features": [{"name": "heat", "data": [1, 2, 3, 4], "shape": [2, 2]}]})["features"]
    assert feature["shape"].tolist() == [2, 2]
    with pytest.raises(ValueError, match=r"features\[1\] \('heat'\): shape \[3\] does not hold 4 values"):
        payload_fields({"features": [{"name": "heat", "data": [1, 2, 3, 4], "shape": [3]}]})


def test_other_keys_go_to_extra_json_with_tensors_as_lists_and_nan_as_null() -> None:
    fields = payload_fields({"detections": [{**PERSON, "track_id": 4}], "presence": np.float32(0.5),
                             "heat": np.ones((2, 2), np.uint8), "bad": math.nan, "text": "abc"})
    assert json.loads(fields["extra_json"]) == {
        "detections_extra": [{"track_id": 4}], "presence": 0.5, "heat": [[1, 1], [1, 1]], "bad": None, "text": "abc"}


def test_scalars_and_non_detection_lists_become_a_json_value() -> None:
    assert json.loads(payload_fields([1, 2, 3])["extra_json"]) == {"value": [1, 2, 3]}
    assert json.loads(payload_fields("upright")["extra_json"]) == {"value": "upright"}
    assert payload_fields([]) == payload_fields(None)


def test_a_result_that_does_not_fit_becomes_an_error_status_instead_of_raising() -> None:
    fields = model_result_fields(outcome({"detections": [{"score": 1}]}), header=HEADER, frame_index=5, source="c")
    assert fields["status"] == 2 and fields["detections"] == []
    assert fields["error"] == ("result of model 'det' cannot be published: detections[1] must be a table "
                               "with box = {x1, y1, x2, y2}, got {'score': 1}")


def test_model_result_fields_carry_status_provenance_and_latency() -> None:
    reused = outcome({"detections": []}, ResultStatus.REUSED, computed_on=2, age=3, latency_ms=4.5)
    fields = model_result_fields(reused, header=HEADER, frame_index=5, source="/cam")
    assert {k: fields[k] for k in ("frame_index", "source", "model", "status", "error", "computed_on_frame",
                                   "age_frames", "latency_ms")} == {
        "frame_index": 5, "source": "/cam", "model": "det", "status": 3, "error": "", "computed_on_frame": 2,
        "age_frames": 3, "latency_ms": 4.5}


def test_fused_result_lists_every_configured_model_in_order() -> None:
    result = frame({"det": outcome({"detections": [PERSON]})}, fused={"count": 1}, has_fused=True)
    fields = fused_result_fields(result, models=["det", "pose"])
    assert [r["model"] for r in fields["results"]] == ["det", "pose"]
    assert [r["status"] for r in fields["results"]] == [0, 1]
    assert fields["has_fused"] and fields["fused"]["model"] == "fusion"
    assert json.loads(fields["fused"]["extra_json"]) == {"count": 1}
    assert fields["header"] == {"stamp": {"sec": 12, "nanosec": 250_000_000}, "frame_id": ""}
    assert fields["mode"] == "serial"


def test_a_failed_frame_reports_its_error_on_every_model() -> None:
    result = frame({}, error="InferenceError: boom (model 'det', frame 5)", mode=Mode.PARALLEL_ASYNC)
    fields = fused_result_fields(result, models=["det", "scene"])
    assert [(r["status"], r["error"]) for r in fields["results"]] == [(2, result.error)] * 2
    assert not fields["has_fused"] and fields["fused"]["model"] == ""


def test_without_fusion_the_fused_field_is_left_default() -> None:
    result = frame({"det": outcome({"detections": [PERSON]})}, fused=None, has_fused=False)
    fields = fused_result_fields(result, models=["det"])
    fused = fields["fused"]
    assert not fields["has_fused"]
    assert (fused["model"], fused["status"], fused["error"], fused["source"], fused["frame_index"]) == ("", 0, "", "", 0)
    assert fused["header"] == {"stamp": {"sec": 0, "nanosec": 0}, "frame_id": ""}
    assert fused["detections"] == [] and fused["extra_json"] == ""


def test_the_input_header_object_is_passed_through_unchanged() -> None:
    marker = object()
    messages = frame_messages(frame({"det": outcome(None, ResultStatus.SKIPPED)}, stamp=marker, has_fused=True),
                              lambda _type, fields: SimpleNamespace(**fields), models=["det"])
    assert messages.fused.header is marker and messages.models["det"].header is marker
    assert messages.fused.results[0] is messages.models["det"]


def test_fill_builds_nested_messages_bottom_up() -> None:
    built: list[str] = []

    def factory(type_name: str, fields: dict[str, Any]) -> dict[str, Any]:
        built.append(type_name)
        return {"type": type_name, **fields}

    message = fill(factory, MODEL_RESULT, model_result_fields(
        outcome({"detections": [{**PERSON, "keypoints": [[1, 2]]}]}), header=HEADER, frame_index=5, source="c"))
    assert built == ["builtin_interfaces/msg/Time", "std_msgs/msg/Header", "ros_vision_pipe/msg/Keypoint",
                     "ros_vision_pipe/msg/Detection", MODEL_RESULT]
    assert message["detections"][0]["keypoints"][0]["type"] == "ros_vision_pipe/msg/Keypoint"


@pytest.fixture(scope="module")
def typestore() -> Any:
    typesys = pytest.importorskip("rosbags.typesys")
    store = typesys.get_typestore(typesys.Stores.ROS2_KILTED)
    for path in sorted(MSG_DIR.glob("*.msg")):
        store.register(typesys.get_types_from_msg(path.read_text(), f"ros_vision_pipe/msg/{path.stem}"))
    return store


def rich_frame() -> FrameResult:
    value = {"detections": [{**PERSON, "keypoints": [[1, 2, 3, 0.5]]}], "features": {"e": np.ones(3, np.float32)},
             "masks": [np.eye(2, dtype=np.uint8)], "classifications": [{"class_id": 0, "label": "a", "score": 1}],
             "presence": 0.9}
    return frame({"det": outcome(value, latency_ms=3.0)}, fused=[PERSON], has_fused=True)


def test_rosbags_messages_serialize_and_read_back(typestore: Any) -> None:
    messages = frame_messages(rich_frame(), RosbagsFactory(typestore), models=["det", "pose"])
    raw = typestore.serialize_cdr(messages.fused, FUSED_RESULT)
    back = typestore.deserialize_cdr(raw, FUSED_RESULT)
    det = back.results[0]
    assert (back.frame_index, back.source, back.header.stamp.sec, back.header.stamp.nanosec) == (
        5, "/camera/image_raw", 12, 250_000_000)
    assert det.detections[0].label == "person" and det.detections[0].keypoints[0].score == 0.5
    assert det.features[0].data.tolist() == [1, 1, 1] and det.masks[0].data.tolist() == [1, 0, 0, 1]
    assert json.loads(det.extra_json) == {"presence": 0.9}
    assert back.results[1].status == 1 and back.fused.detections[0].x_min == 329.0


def test_rosbags_bytes_read_back_by_rclpy_equal_the_rclpy_messages(typestore: Any) -> None:
    pytest.importorskip("rclpy")
    messages_module = pytest.importorskip("ros_vision_pipe.msg")
    from rclpy.serialization import deserialize_message

    from ros_vision_pipe.result_mapping import RCLPY_FACTORY

    ours = frame_messages(rich_frame(), RCLPY_FACTORY, models=["det"])
    assert isinstance(ours.fused, messages_module.FusedResult)
    theirs = frame_messages(rich_frame(), RosbagsFactory(typestore), models=["det"])
    raw = bytes(typestore.serialize_cdr(theirs.fused, FUSED_RESULT))
    assert deserialize_message(raw, messages_module.FusedResult) == ours.fused


def test_a_dropped_frame_reports_its_models_as_skipped_with_the_reason() -> None:
    reason = "frame 5 of '/cam' was dropped before main model 'det' ran it (full queue or cancelled)"
    fields = fused_result_fields(frame({}, error=reason, dropped=True, mode=Mode.PARALLEL_ASYNC), models=["det"])
    assert [(r["status"], r["error"]) for r in fields["results"]] == [(1, reason)]


def test_a_detection_list_from_vp_maps_as_its_rows_would_through_the_parser() -> None:
    from ros_vision_pipe.engine.vision.detections import detections

    boxes = np.array([[1.5, 2.0, 30.25, 40.0], [5.0, 6.0, 7.0, 8.0]], dtype=np.float32)
    keypoints = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    for listed in (detections(boxes, np.array([0.9, 0.25]), np.array([2, 1]), ["cat", "dog"], keypoints,
                              ["x", "y", "score"]),
                   detections(boxes, None, None, ["person"]), detections(np.zeros((0, 4)), [])):
        fast = payload_fields({"detections": listed, "n": len(listed)})
        parsed = payload_fields({"detections": [dict(row) for row in listed], "n": len(listed)})
        assert json.dumps(fast, default=str) == json.dumps(parsed, default=str)
        assert len(fast["detections"]) == len(listed)

