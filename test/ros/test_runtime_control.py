"""Operating the node while it runs: per-model switches, reload, over real rclpy and DDS, real models."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from ros_support import SSD_MODEL, Probe, image_message, wait_for
from ros_vision_pipe.msg import FusedResult, ModelResult
from runtime_support import Stream, call, set_parameter, write_person_config
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from ros_vision_pipe.huge_pages import SETTLE_FRAMES
from ros_vision_pipe.ros.node import PipelineNode
from ros_vision_pipe.ros.node_core import WATCH_PERIOD_S

NODE = "/vision_pipeline"
SKIPPED, OK = ModelResult.STATUS_SKIPPED, ModelResult.STATUS_OK


def make_node(context: Any, config: Path, **params: Any) -> PipelineNode:
    overrides = [Parameter("config_file", value=str(config)), Parameter("image_topics", value=["/cam"]),
                 Parameter("qos.reliable", value=True)]
    overrides += [Parameter(name.replace("__", "."), value=value) for name, value in params.items()]
    return PipelineNode(context=context, parameter_overrides=overrides)


def send_and_wait(publisher: Any, image: Any, index: int, inbox: list[Any]) -> None:
    publisher.publish(image_message(image, "bgr8", f"cam_{index}", 100 + index))
    assert wait_for(lambda: len(inbox) > index, timeout=20), f"no result for frame {index}"


def generations_change_once(messages: list[Any]) -> list[int]:
    """The generations of ``messages`` in order; asserts they never go back and change at one frame only."""
    numbers = [m.config_generation for m in messages]
    changes = [i for i in range(1, len(numbers)) if numbers[i] != numbers[i - 1]]
    assert len(changes) == 1 and numbers[changes[0]] == numbers[changes[0] - 1] + 1, numbers
    return numbers


def test_disabling_a_model_mid_stream_skips_it_with_a_reason_and_the_others_never_miss_a_frame(
        context, spin, bikes, person_pose_config) -> None:
    node = make_node(context, person_pose_config)
    probe = Probe(context)
    fused = probe.listen(FusedResult, f"{NODE}/fused")
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    pose = probe.listen(ModelResult, f"{NODE}/pose/result")
    spin(node, probe.node, threads=node.executor_threads + 2)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    frames = bikes[3:]  # the cyclist is in every one of them
    for index, image in enumerate(frames):
        if index == 3:
            assert set_parameter(probe.node, NODE, "models.pose.enabled", False).successful
        if index == 6:
            assert set_parameter(probe.node, NODE, "models.pose.enabled", True).successful
        send_and_wait(publisher, image, index, fused)
    assert wait_for(lambda: len(person) == len(pose) == len(frames))

    assert [m.frame_index for m in person] == list(range(len(frames)))
    assert all(m.status == OK and m.detections for m in person)
    assert [m.status for m in pose] == [OK] * 3 + [SKIPPED] * 3 + [OK] * (len(frames) - 6)
    assert all(m.skip_reason == "model 'pose' disabled by parameter models.pose.enabled" for m in pose[3:6])
    assert not pose[3].detections and pose[6].detections and pose[6].detections[0].keypoints
    assert all(m.skip_reason == "" for m in pose[:3] + pose[6:])
    assert [r.status for r in fused[4].results] == [OK, SKIPPED]


def test_a_refused_switch_value_names_the_model_and_changes_nothing(context, spin, person_pose_config) -> None:
    node = make_node(context, person_pose_config)
    probe = Probe(context)
    spin(node, probe.node, threads=node.executor_threads + 2)
    result = set_parameter(probe.node, NODE, "models.pose.frame_interval", 3)
    assert not result.successful
    assert "frame_interval of model 'pose' applies to parallel_async only" in result.reason
    assert not set_parameter(probe.node, NODE, "models.pose.enabled", "no").successful  # typed: rclpy refuses
    assert node.get_parameter("models.pose.frame_interval").value == 1
    assert node.get_parameter("models.pose.enabled").value is True


def test_frame_interval_of_a_parallel_async_model_changes_at_run_time(context, spin, bikes, tmp_path) -> None:
    write_person_config(tmp_path)
    config = tmp_path / "async.lua"
    config.write_text(
        "return { mode = 'parallel_async', models = {\n"
        f"  {{ name = 'main', path = {str(SSD_MODEL)!r}, script = 'ssd.lua' }},\n"
        f"  {{ name = 'second', path = {str(SSD_MODEL)!r}, script = 'ssd.lua', drop_on_overflow = false }},\n"
        "} }\n", encoding="utf-8")
    node = make_node(context, config)
    probe = Probe(context)
    second = probe.listen(ModelResult, f"{NODE}/second/result")
    spin(node, probe.node, threads=node.executor_threads + 2)
    refused = set_parameter(probe.node, NODE, "models.main.frame_interval", 2)
    assert not refused.successful and "model 'main' is the main model" in refused.reason
    assert set_parameter(probe.node, NODE, "models.second.frame_interval", 4).successful
    publisher = probe.publisher(Image, "/cam", reliable=True)
    for index in range(8):
        send_and_wait(publisher, bikes[5], index, second)
    computed = sorted({m.computed_on_frame for m in second if m.status != SKIPPED})
    assert computed and all(frame % 4 == 0 for frame in computed), computed


def test_a_reload_after_editing_the_lua_script_swaps_at_one_frame_reusing_the_session(
        context, spin, bikes, tmp_path) -> None:
    config = write_person_config(tmp_path, label="person")
    node = make_node(context, config)
    probe = Probe(context)
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    spin(node, probe.node, threads=node.executor_threads + 2)
    stream = Stream(probe.publisher(Image, "/cam", reliable=True), bikes[4:])
    try:
        assert wait_for(lambda: len(person) >= 5, timeout=20)
        write_person_config(tmp_path, label="cyclist")  # the script changes, the model file does not
        response = call(probe.node, Trigger, f"{NODE}/reload", Trigger.Request())
        assert response.success, response.message
        assert "generation 2" in response.message and "1/1 session(s) reused" in response.message
        count = len(person)
        assert wait_for(lambda: len(person) >= count + 5, timeout=20)
    finally:
        stream.stop()
    assert wait_for(lambda: node.pipeline.stats().pending == 0)
    assert [m.frame_index for m in person] == list(range(len(person)))
    numbers = generations_change_once(person)
    hashes = {n: {m.config_hash for m in person if m.config_generation == n} for n in (1, 2)}
    assert all(len(h) == 1 for h in hashes.values()) and hashes[1] != hashes[2]
    for message, number in zip(person, numbers, strict=True):
        if message.detections:
            assert message.detections[0].label == ("person" if number == 1 else "cyclist")


def test_setting_config_file_to_another_model_file_swaps_at_one_frame_with_continuous_indices(
        context, spin, bikes, tmp_path) -> None:
    config = write_person_config(tmp_path / "a")
    copy = tmp_path / "b" / "ssdlite_copy.onnx"
    copy.parent.mkdir()
    shutil.copyfile(SSD_MODEL, copy)
    other = write_person_config(tmp_path / "b", label="other", model=copy)
    node = make_node(context, config)
    probe = Probe(context)
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    spin(node, probe.node, threads=node.executor_threads + 2)
    stream = Stream(probe.publisher(Image, "/cam", reliable=True), bikes[4:])
    try:
        assert wait_for(lambda: len(person) >= 5, timeout=20)
        result = set_parameter(probe.node, NODE, "config_file", str(other))
        assert result.successful, result.reason
        count = len(person)
        assert wait_for(lambda: len(person) >= count + 5, timeout=20)
    finally:
        stream.stop()
    assert wait_for(lambda: node.pipeline.stats().pending == 0)
    assert [m.frame_index for m in person] == list(range(len(person)))
    generations_change_once(person)
    assert node.get_parameter("config_file").value == str(other)
    assert node.builder.sessions.misses == 2  # the new file got its own session
    assert {m.detections[0].label for m in person if m.config_generation == 2 and m.detections} == {"other"}


def test_a_broken_config_is_refused_with_the_engine_error_while_the_old_one_keeps_publishing(
        context, spin, bikes, tmp_path) -> None:
    config = write_person_config(tmp_path)
    node = make_node(context, config)
    probe = Probe(context)
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    spin(node, probe.node, threads=node.executor_threads + 2)
    stream = Stream(probe.publisher(Image, "/cam", reliable=True), bikes[4:])
    try:
        assert wait_for(lambda: len(person) >= 3, timeout=20)
        good = config.read_text(encoding="utf-8")
        config.write_text(good.replace("mode = 'single'", "mode = 'sideways'"), encoding="utf-8")
        response = call(probe.node, Trigger, f"{NODE}/reload", Trigger.Request())
        assert not response.success
        assert "generation 1 keeps serving" in response.message and "unknown mode 'sideways'" in response.message
        missing = set_parameter(probe.node, NODE, "config_file", str(tmp_path / "missing.lua"))
        assert not missing.successful and "pipeline configuration not found" in missing.reason
        count = len(person)
        assert wait_for(lambda: len(person) >= count + 5, timeout=20)  # the old pipeline goes on
    finally:
        stream.stop()
    assert {m.config_generation for m in person} == {1}
    assert [m.frame_index for m in person] == list(range(len(person)))
    assert node.get_parameter("config_file").value == str(config)


def test_a_reload_that_adds_a_model_creates_its_topic_and_its_switches(
        context, spin, bikes, tmp_path, person_pose_config) -> None:
    node = make_node(context, write_person_config(tmp_path))
    probe = Probe(context)
    pose = probe.listen(ModelResult, f"{NODE}/pose/result")
    spin(node, probe.node, threads=node.executor_threads + 3)
    assert not node.has_parameter("models.pose.enabled")
    result = set_parameter(probe.node, NODE, "config_file", str(person_pose_config))
    assert result.successful, result.reason
    assert node.get_parameter("models.pose.enabled").value is True
    assert node.describe_parameter("models.pose.enabled").description.startswith("Run model 'pose'")
    publisher = probe.publisher(Image, "/cam", reliable=True)
    publisher.publish(image_message(bikes[5], "bgr8", "cam", 1))
    assert wait_for(lambda: len(pose) == 1, timeout=20)
    assert pose[0].status == OK and pose[0].config_generation == 2 and pose[0].detections[0].keypoints


def test_diagnostics_count_every_frame_across_a_reload_and_a_disabled_model_as_skipped(
        context, spin, bikes, person_pose_config) -> None:
    node = make_node(context, person_pose_config, diagnostics_period=0.2)
    probe = Probe(context)
    fused = probe.listen(FusedResult, f"{NODE}/fused")
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(node, probe.node, threads=node.executor_threads + 2)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    frames = bikes[3:10]  # the cyclist is in every one of them: pose runs unless disabled
    for index, image in enumerate(frames):
        if index == 2:
            assert set_parameter(probe.node, NODE, "models.pose.enabled", False).successful
        if index == 4:
            assert set_parameter(probe.node, NODE, "models.pose.enabled", True).successful
            response = call(probe.node, Trigger, f"{NODE}/reload", Trigger.Request())
            assert response.success and "generation 2" in response.message, response.message
        send_and_wait(publisher, image, index, fused)

    def reported(model: str) -> dict[str, str]:
        found = [s for a in list(diagnostics) for s in a.status if s.name == f"{NODE}: model {model}"]
        return {kv.key: kv.value for kv in found[-1].values} if found else {}

    # 7 frames: 4 in generation 1 (2 of them with pose off), 3 in generation 2 (after its warm-up frame)
    assert wait_for(lambda: reported("person").get("runs") == "7" and reported("pose").get("runs") == "5",
                    timeout=10), (reported("person"), reported("pose"))
    assert (reported("pose")["skipped"], reported("pose")["errors"], reported("person")["skipped"]) == ("2", "0", "0")
    assert node.diagnostics.totals()["model pose"] == {"runs": 5, "skipped": 2, "reused": 0, "errors": 0, "drops": 0}
    assert float(reported("pose")["latency_last_ms"]) > 0


def test_the_node_moves_its_memory_onto_huge_pages_once_settled_and_again_after_a_reload(
        context, spin, bikes, tmp_path) -> None:
    node = make_node(context, write_person_config(tmp_path), diagnostics_period=0.2)
    assert node.huge_pages is not None and node.huge_pages.last is None  # on by default
    probe = Probe(context)
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(node, probe.node, threads=node.executor_threads + 2)
    publisher = probe.publisher(Image, "/cam", reliable=True)

    def published() -> str:
        found = [s for a in list(diagnostics) for s in a.status if s.name == f"{NODE}: pipeline"]
        return {kv.key: kv.value for kv in found[-1].values}["huge_pages"] if found else ""

    for index in range(SETTLE_FRAMES - 1):
        send_and_wait(publisher, bikes[index % len(bikes)], index, person)
    time.sleep(2 * WATCH_PERIOD_S + 0.2)
    assert node.huge_pages.last is None  # not before the models settled
    assert wait_for(lambda: published() == f"after {SETTLE_FRAMES} frames")
    send_and_wait(publisher, bikes[0], SETTLE_FRAMES - 1, person)
    assert wait_for(lambda: node.huge_pages.last is not None, timeout=30)  # ~2 s per GB of this process
    first = node.huge_pages.last
    if not first.supported:
        pytest.skip(first.describe())
    assert first.chunks > 0
    assert wait_for(lambda: published() == first.describe())  # e.g. "huge pages: 57 chunks of 2 MiB (114 MiB)..."

    response = call(probe.node, Trigger, f"{NODE}/reload", Trigger.Request())
    assert response.success, response.message
    assert wait_for(lambda: published() == f"{first.describe()}; again {SETTLE_FRAMES} frames after the reload")
    sent = len(person)
    for index in range(sent, sent + SETTLE_FRAMES - 1):
        send_and_wait(publisher, bikes[index % len(bikes)], index, person)
    time.sleep(2 * WATCH_PERIOD_S + 0.2)
    assert node.huge_pages.last is first  # the new generation has not settled yet
    send_and_wait(publisher, bikes[0], sent + SETTLE_FRAMES - 1, person)
    assert wait_for(lambda: node.huge_pages.last is not first, timeout=30)
    assert node.huge_pages.last.chunks > 0
    assert wait_for(lambda: published() == node.huge_pages.last.describe())
    assert [m.frame_index for m in person] == list(range(len(person)))  # no frame lost meanwhile


def test_huge_pages_false_leaves_the_memory_as_allocated(context, tmp_path) -> None:
    node = make_node(context, write_person_config(tmp_path), huge_pages=False)
    assert node.huge_pages is None and node.get_parameter("huge_pages").value is False
    assert node.diagnostics.huge_pages == "off (huge_pages:=false)"
