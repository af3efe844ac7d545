"""The node with what real robots send and expect: camera encodings, depth, QoS peers, vision_msgs."""

from __future__ import annotations

import json
from typing import Any

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Log
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from ros_support import REPO, Probe, image_message, wait_for
from ros_vision_pipe.msg import FusedResult, ModelResult
from sensor_msgs.msg import Image

from ros_vision_pipe.ros.node import PipelineNode
from ros_vision_pipe.ros.params import NodeConfigError

CYCLIST_105 = (329.0, 28.0, 487.0, 209.0)  # models/PROVENANCE.md: frame 105, score 0.989
DEPTH_CONFIG = REPO / "config" / "depth_sectors.lua"


def make_node(context: Any, config: Any, **params: Any) -> PipelineNode:
    overrides = [Parameter("config_file", value=str(config))]
    overrides += [Parameter(name.replace("__", "."), value=value) for name, value in params.items()]
    return PipelineNode(context=context, parameter_overrides=overrides)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def mosaic_rggb(bgr: np.ndarray) -> np.ndarray:
    out = np.empty(bgr.shape[:2], np.uint8)
    out[0::2, 0::2], out[0::2, 1::2] = bgr[0::2, 0::2, 2], bgr[0::2, 1::2, 1]
    out[1::2, 0::2], out[1::2, 1::2] = bgr[1::2, 0::2, 1], bgr[1::2, 1::2, 0]
    return out


def send_until_answered(publisher: Any, message: Any, inbox: list[Any], frame_id: str) -> Any:
    for _ in range(3):  # best effort: publish again if the frame was lost
        publisher.publish(message)
        if wait_for(lambda: any(m.header.frame_id == frame_id for m in inbox), timeout=5):
            break
    return next((m for m in inbox if m.header.frame_id == frame_id), None)


def test_bayer_and_yuv422_camera_frames_are_decoded_and_the_cyclist_is_found(context, spin, bikes,
                                                                             person_config) -> None:
    node = make_node(context, person_config, image_topics=["/cam"])
    probe = Probe(context)
    fused = probe.listen(FusedResult, "/vision_pipeline/fused")
    spin(node, probe.node, threads=node.executor_threads + 1)
    publisher = probe.publisher(Image, "/cam")
    frame = bikes[5]
    messages = {
        "bayer_rggb8": image_message(mosaic_rggb(frame), "bayer_rggb8", "bayer_rggb8", 1),
        "yuv422": image_message(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_UYVY), "yuv422", "yuv422", 2),
        "yuv422_yuy2": image_message(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_YUY2), "yuv422_yuy2", "yuv422_yuy2", 3),
        "bayer_bggr16": image_message(
            mosaic_rggb(frame[::-1, ::-1])[::-1, ::-1].astype(np.uint16) * 257, "bayer_bggr16", "bayer_bggr16", 4),
    }
    for name, message in messages.items():
        result = send_until_answered(publisher, message, fused, name)
        assert result is not None, f"no result for {name}"
        (person,) = result.results
        assert person.status == ModelResult.STATUS_OK, (name, person.error)
        assert person.detections and iou((person.detections[0].x_min, person.detections[0].y_min,
                                          person.detections[0].x_max, person.detections[0].y_max), CYCLIST_105) > 0.8
        # no fusion in this configuration: FusedResult.fused is left default
        assert not result.has_fused and result.fused.model == "" and result.fused.source == ""
    assert node.diagnostics.totals()["input /cam"]["rejected"] == 0


def test_depth_images_reach_the_script_as_typed_tensors_and_give_the_nearest_obstacle_per_sector(
        context, spin) -> None:
    node = make_node(context, DEPTH_CONFIG, image_topics=["/depth_m", "/depth_mm"], image_format=["native"],
                     qos__reliable=True)
    probe = Probe(context)
    fused = probe.listen(FusedResult, "/vision_pipeline/fused")
    spin(node, probe.node, threads=node.executor_threads + 1)
    metres = np.full((120, 160), 4.0, np.float32)
    metres[40:80, 25:35] = 0.75  # an obstacle in sector 2 of 8 (columns 21..40)
    metres[:, 140:] = np.nan  # no return in the last sector
    millimetres = np.nan_to_num(metres * 1000, nan=0).astype(np.uint16)
    probe.publisher(Image, "/depth_m", reliable=True).publish(image_message(metres, "32FC1", "metres", 1))
    probe.publisher(Image, "/depth_mm", reliable=True).publish(image_message(millimetres, "16UC1", "millimetres", 2))
    assert wait_for(lambda: len(fused) == 2, timeout=10)
    for message in fused:
        (result,) = message.results
        assert result.status == ModelResult.STATUS_OK, result.error
        value = json.loads(result.extra_json)
        assert value["nearest_sector"] == 2 and value["nearest"] == pytest.approx(0.75)
        assert value["sectors"][0] == pytest.approx(4.0) and value["sectors"][7] is None  # no return: null


def test_depth_sent_to_an_8_bit_input_is_rejected_naming_the_native_format(context, spin) -> None:
    node = make_node(context, DEPTH_CONFIG, image_topics=["/depth_m"], qos__reliable=True)
    probe = Probe(context)
    logs = probe.listen(Log, "/rosout")
    spin(node, probe.node, threads=node.executor_threads + 1)
    probe.publisher(Image, "/depth_m", reliable=True).publish(
        image_message(np.ones((4, 6), np.float32), "32FC1", "metres", 1))
    assert wait_for(lambda: any("is not an 8-bit image" in log.msg for log in logs), timeout=10)
    text = next(log.msg for log in logs if "is not an 8-bit image" in log.msg)
    assert "'/depth_m'" in text and "set the input's image_format to 'native'" in text


def _warnings(logs: list[Any], needle: str) -> list[str]:
    return [log.msg for log in logs if needle in log.msg and log.level == Log.WARN]


def test_a_transient_local_result_subscriber_gets_one_warning_naming_topic_policy_and_both_values(
        context, spin, person_config) -> None:
    node = make_node(context, person_config, image_topics=["/cam"])
    probe = Probe(context)
    logs = probe.listen(Log, "/rosout")
    spin(node, probe.node, threads=node.executor_threads + 1)
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.node.create_subscription(FusedResult, "/vision_pipeline/fused", lambda _m: None, latched)
    probe.node.create_subscription(FusedResult, "/vision_pipeline/fused", lambda _m: None, latched)
    needle = "incompatible QoS on '/vision_pipeline/fused'"
    assert wait_for(lambda: _warnings(logs, needle), timeout=10), [log.msg for log in logs]
    wait_for(lambda: False, timeout=1.0)
    (warning,) = _warnings(logs, needle)
    assert "policy DURABILITY" in warning
    assert "this node's publisher offers VOLATILE" in warning
    assert "a subscriber requests TRANSIENT_LOCAL (node '/probe')" in warning


def test_a_best_effort_camera_on_a_reliable_input_gets_a_warning_naming_both_reliabilities(
        context, spin, person_config) -> None:
    node = make_node(context, person_config, image_topics=["/cam"], qos__reliable=True)
    probe = Probe(context)
    logs = probe.listen(Log, "/rosout")
    spin(node, probe.node, threads=node.executor_threads + 1)
    probe.node.create_publisher(Image, "/cam", QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    needle = "incompatible QoS on '/cam'"
    assert wait_for(lambda: _warnings(logs, needle), timeout=10), [log.msg for log in logs]
    (warning,) = _warnings(logs, needle)
    assert "policy RELIABILITY" in warning and "this node's subscription requests RELIABLE" in warning
    assert "a publisher offers BEST_EFFORT (node '/probe')" in warning and "qos.reliable:=false" in warning


def test_a_matched_publisher_that_sends_nothing_is_reported_once_and_in_diagnostics(
        context, spin, person_config) -> None:
    node = make_node(context, person_config, image_topics=["/quiet"], qos__silent_input_warning=1.0,
                     diagnostics_period=0.3)
    probe = Probe(context)
    logs = probe.listen(Log, "/rosout")
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(node, probe.node, threads=node.executor_threads + 1)
    probe.publisher(Image, "/quiet")  # matched, never publishes
    needle = "no frame on '/quiet' for"
    assert wait_for(lambda: _warnings(logs, needle), timeout=10)
    wait_for(lambda: False, timeout=1.5)
    (warning,) = _warnings(logs, needle)
    assert "1 publisher(s) matched (message size unknown (no frame arrived yet))" in warning
    assert "this node subscribes BEST_EFFORT, VOLATILE, KEEP_LAST 5" in warning
    assert "publishers offer '/probe': BEST_EFFORT" in warning and "FASTDDS_DEFAULT_PROFILES_FILE" in warning

    def quiet_status() -> Any:
        for array in reversed(diagnostics):
            for status in array.status:
                if status.name.endswith("input /quiet") and status.level == b"\x01":
                    return status
        return None

    assert wait_for(quiet_status, timeout=5)
    values = {kv.key: kv.value for kv in quiet_status().values}
    assert (values["frames_in"], values["publishers"]) == ("0", "1")
    assert "frames_in 0, publishers 1" in quiet_status().message


def test_detections_are_also_published_as_vision_msgs_when_asked(context, spin, bikes, person_config) -> None:
    vision_msgs = pytest.importorskip("vision_msgs.msg", reason="vision_msgs is not installed")
    node = make_node(context, person_config, image_topics=["/cam"], vision_msgs__detections=True)
    probe = Probe(context)
    arrays = probe.listen(vision_msgs.Detection2DArray, "/vision_pipeline/person/detections")
    spin(node, probe.node, threads=node.executor_threads + 1)
    publisher = probe.publisher(Image, "/cam")
    message = image_message(bikes[5], "bgr8", "cam_105", 105)
    result = send_until_answered(publisher, message, arrays, "cam_105")
    assert result is not None
    assert (result.header.stamp.sec, result.header.stamp.nanosec) == (105, 123_456_789)
    detection = result.detections[0]
    assert detection.header == result.header
    hypothesis = detection.results[0].hypothesis
    assert hypothesis.class_id == "1" and hypothesis.score > 0.9
    box = detection.bbox
    corners = (box.center.position.x - box.size_x / 2, box.center.position.y - box.size_y / 2,
               box.center.position.x + box.size_x / 2, box.center.position.y + box.size_y / 2)
    assert iou(corners, CYCLIST_105) > 0.8


def test_asking_for_vision_msgs_where_it_is_missing_fails_with_a_clear_message(context, person_config) -> None:
    try:
        import vision_msgs.msg  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vision_msgs is installed here")
    with pytest.raises(NodeConfigError, match=r"parameter 'vision_msgs.detections' is true but the vision_msgs "
                                              r"package cannot be imported .*vision_msgs.detections:=false"):
        make_node(context, person_config, image_topics=["/cam"], vision_msgs__detections=True)
