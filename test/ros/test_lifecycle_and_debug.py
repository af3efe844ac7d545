"""The managed node's transitions, the debug image, steady diagnostics and watch_config, over real DDS."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.parameter import Parameter
from ros_support import Probe, image_message, wait_for
from ros_vision_pipe.msg import FusedResult, ModelResult
from runtime_support import call, write_person_config
from sensor_msgs.msg import Image

from ros_vision_pipe.ros.debug_image import PALETTE
from ros_vision_pipe.ros.lifecycle_node import LifecyclePipelineNode
from ros_vision_pipe.ros.node import PipelineNode

NODE = "/vision_pipeline"
CYCLIST_105 = (329.0, 28.0, 487.0, 209.0)  # models/PROVENANCE.md: frame 105, score 0.989


def overrides(config: Path, **params: Any) -> list[Parameter[Any]]:
    values = [Parameter("config_file", value=str(config)), Parameter("image_topics", value=["/cam"]),
              Parameter("qos.reliable", value=True)]
    return values + [Parameter(name.replace("__", "."), value=value) for name, value in params.items()]


def transition(probe: Probe, transition_id: int) -> bool:
    """What ``ros2 lifecycle set`` does: a ChangeState request to ``<node>/change_state``."""
    request = ChangeState.Request(transition=Transition(id=transition_id))
    return call(probe.node, ChangeState, f"{NODE}/change_state", request).success


def state(probe: Probe) -> int:
    return call(probe.node, GetState, f"{NODE}/get_state", GetState.Request()).current_state.id


def test_the_lifecycle_node_loads_on_configure_publishes_only_while_active_and_closes_on_cleanup(
        context, spin, bikes, tmp_path) -> None:
    node = LifecyclePipelineNode(context=context, parameter_overrides=overrides(write_person_config(tmp_path)))
    probe = Probe(context)
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    spin(node, probe.node, threads=8)
    assert state(probe) == State.PRIMARY_STATE_UNCONFIGURED and node.pipeline is None

    assert transition(probe, Transition.TRANSITION_CONFIGURE)
    assert state(probe) == State.PRIMARY_STATE_INACTIVE
    assert node.pipeline is not None and node.model_names == ("person",) and not node.image_subscriptions

    assert transition(probe, Transition.TRANSITION_ACTIVATE)
    assert state(probe) == State.PRIMARY_STATE_ACTIVE
    publisher = probe.publisher(Image, "/cam", reliable=True)
    for index in range(3):
        publisher.publish(image_message(bikes[5], "bgr8", "cam", index))
        assert wait_for(lambda n=index: len(person) > n, timeout=20)
    assert [m.frame_index for m in person] == [0, 1, 2] and person[0].detections

    assert transition(probe, Transition.TRANSITION_DEACTIVATE)
    assert state(probe) == State.PRIMARY_STATE_INACTIVE
    assert wait_for(lambda: publisher.get_subscription_count() == 0)  # intake stopped
    publisher.publish(image_message(bikes[5], "bgr8", "cam", 9))
    time.sleep(1.0)
    assert len(person) == 3

    assert transition(probe, Transition.TRANSITION_ACTIVATE)  # the same pipeline resumes
    assert wait_for(lambda: publisher.get_subscription_count() == 1)
    publisher.publish(image_message(bikes[5], "bgr8", "cam", 10))
    assert wait_for(lambda: len(person) == 4, timeout=20) and person[3].frame_index == 3

    assert transition(probe, Transition.TRANSITION_DEACTIVATE)
    pipeline = node.pipeline
    assert transition(probe, Transition.TRANSITION_CLEANUP)
    assert state(probe) == State.PRIMARY_STATE_UNCONFIGURED and node.pipeline is None
    assert not node.count_publishers(f"{NODE}/person/result") or not node.model_publishers
    try:
        pipeline.stats()  # still answers counters; submitting is refused
        pipeline.submit(bikes[5], source="/cam", encoding="bgr8")
    except Exception as error:  # noqa: BLE001
        assert "closed" in str(error)
    else:
        raise AssertionError("the cleaned-up pipeline accepted a frame")

    assert transition(probe, Transition.TRANSITION_CONFIGURE)  # configure again after cleanup
    assert transition(probe, Transition.TRANSITION_INACTIVE_SHUTDOWN)
    assert state(probe) == State.PRIMARY_STATE_FINALIZED and node.pipeline is None


def test_configure_fails_cleanly_on_a_broken_config_and_succeeds_once_it_is_fixed(context, spin, tmp_path) -> None:
    config = write_person_config(tmp_path)
    good = config.read_text(encoding="utf-8")
    config.write_text("return { mode = 'single' ", encoding="utf-8")
    node = LifecyclePipelineNode(context=context, parameter_overrides=overrides(config))
    probe = Probe(context)
    spin(node, probe.node, threads=8)
    assert not transition(probe, Transition.TRANSITION_CONFIGURE)
    assert state(probe) == State.PRIMARY_STATE_UNCONFIGURED
    config.write_text(good, encoding="utf-8")
    assert transition(probe, Transition.TRANSITION_CONFIGURE)
    assert state(probe) == State.PRIMARY_STATE_INACTIVE


def test_the_debug_image_draws_the_detected_box_in_the_model_colour_with_the_input_header(
        context, spin, bikes, tmp_path) -> None:
    node = PipelineNode(context=context, parameter_overrides=overrides(write_person_config(tmp_path),
                                                                         debug_image_rate=100.0))
    probe = Probe(context)
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    spin(node, probe.node, threads=node.executor_threads + 2)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    for index in range(3):  # nobody subscribes to the debug image: nothing is drawn
        publisher.publish(image_message(bikes[5], "bgr8", "cam", index))
        assert wait_for(lambda n=index: len(person) > n, timeout=20)
    assert node.debug_image.drawn == 0

    debug = probe.listen(Image, f"{NODE}/debug_image")
    assert wait_for(lambda: node.debug_image.publisher.get_subscription_count() == 1)
    publisher.publish(image_message(bikes[5], "bgr8", "cam_105", 105))
    assert wait_for(lambda: len(debug) == 1, timeout=20)
    message, result = debug[0], person[3]
    assert node.debug_image.drawn == 1
    assert message.header == result.header and message.header.frame_id == "cam_105"
    assert (message.width, message.height, message.encoding) == (640, 272, "bgr8")
    drawn = np.frombuffer(bytes(message.data), np.uint8).reshape(272, 640, 3)
    x1, y1, x2, y2 = (int(round(v)) for v in (result.detections[0].x_min, result.detections[0].y_min,
                                               result.detections[0].x_max, result.detections[0].y_max))
    assert abs(x1 - CYCLIST_105[0]) < 8 and abs(y2 - CYCLIST_105[3]) < 8
    colour = np.array(PALETTE[0], np.uint8)
    for y in range(y1 + 20, y2 - 5, 10):  # left and right edges of the box, below the label
        assert (drawn[y, x1] == colour).all() and (drawn[y, x2] == colour).all(), y
    for x in range(x1 + 5, x2 - 5, 10):  # bottom edge
        assert (drawn[y2, x] == colour).all(), x
    inside = (slice(y1 + 30, y2 - 30), slice(x1 + 30, x2 - 30))  # no drawing inside the box
    assert (drawn[inside] == bikes[5][inside]).all()
    assert (drawn[240:, :300] == bikes[5][240:, :300]).all()  # nor far from it
    label = drawn[y1 - 12:y1, x1 + 2:x1 + 60]  # the label "person: person 0.99" on a filled background
    assert 0.4 < (label == colour).all(axis=2).mean() < 0.95  # background...
    assert (label.astype(int).sum(axis=2) < 120).any()  # ...and dark (anti-aliased) text on it


def test_diagnostics_keep_coming_with_use_sim_time_and_no_clock(context, spin, tmp_path) -> None:
    node = PipelineNode(context=context, parameter_overrides=[
        *overrides(write_person_config(tmp_path), diagnostics_period=0.2), Parameter("use_sim_time", value=True)])
    probe = Probe(context)
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(node, probe.node, threads=node.executor_threads + 2)
    assert node.get_clock().ros_time_is_active  # sim time, and no /clock is published
    assert wait_for(lambda: len(diagnostics) >= 3, timeout=10)


def test_watch_config_reloads_when_the_script_changes_on_disk(context, spin, bikes, tmp_path) -> None:
    config = write_person_config(tmp_path)
    node = PipelineNode(context=context, parameter_overrides=overrides(config, watch_config=True))
    probe = Probe(context)
    fused = probe.listen(FusedResult, f"{NODE}/fused")
    spin(node, probe.node, threads=node.executor_threads + 2)
    write_person_config(tmp_path, label="edited")
    assert wait_for(lambda: node.pipeline.current.number == 2, timeout=20)
    assert node.watcher is not None and node.watcher.events >= 1
    publisher = probe.publisher(Image, "/cam", reliable=True)
    publisher.publish(image_message(bikes[5], "bgr8", "cam", 1))
    assert wait_for(lambda: len(fused) == 1, timeout=20)
    assert fused[0].config_generation == 2 and fused[0].results[0].detections[0].label == "edited"


def test_a_lua_draw_function_in_the_config_adds_its_own_overlay_to_the_debug_image(
        context, spin, bikes, tmp_path) -> None:
    draw = ("debug_image = { draw = function(ctx, results)\n"
            "  local n = #results.person.detections\n"
            "  vp.draw_box(10, 10, 60, 50, n .. ' seen', {255, 0, 0})\n"
            "  vp.draw_circle(100, 200, 6, {0, 255, 0})\n"
            "  vp.draw_line(0, ctx.height - 1, ctx.width - 1, ctx.height - 1)\n"
            "  vp.draw_text(200, 240, 'frame ' .. ctx.frame_id)\n"
            "end },\n")
    config = write_person_config(tmp_path, extra=draw)
    node = PipelineNode(context=context, parameter_overrides=overrides(config, debug_image_rate=100.0))
    probe = Probe(context)
    debug = probe.listen(Image, f"{NODE}/debug_image")
    spin(node, probe.node, threads=node.executor_threads + 2)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    assert wait_for(lambda: node.debug_image.publisher.get_subscription_count() == 1)
    publisher.publish(image_message(bikes[5], "bgr8", "cam_105", 105))
    assert wait_for(lambda: len(debug) == 1, timeout=20)
    drawn = np.frombuffer(bytes(debug[0].data), np.uint8).reshape(272, 640, 3)
    assert (drawn[30, 10] == (0, 0, 255)).all() and (drawn[50, 35] == (0, 0, 255)).all()  # red box, bgr8
    assert (drawn[200, 100] == (0, 255, 0)).all()  # green dot
    assert (drawn[271, 5:600] == 255).all()  # default colour: white line along the bottom row
    assert node.debug_image.overlay_error is None

    config.write_text(config.read_text(encoding="utf-8").replace("local n =", "local n = nil .. "), encoding="utf-8")
    node.reloader.reload(config)  # a failing draw: reported, the standard drawing still goes out
    time.sleep(0.05)
    publisher.publish(image_message(bikes[5], "bgr8", "cam_106", 106))
    assert wait_for(lambda: len(debug) == 2, timeout=20)
    assert "debug_image.draw" in node.debug_image.overlay_error
    drawn = np.frombuffer(bytes(debug[1].data), np.uint8).reshape(272, 640, 3)
    assert (drawn[30, 10] == bikes[5][30, 10]).all() and (drawn[60:200, 329] == PALETTE[0]).all()


def test_the_debug_image_is_published_at_most_at_debug_image_rate(context, spin, bikes, tmp_path) -> None:
    node = PipelineNode(context=context, parameter_overrides=overrides(write_person_config(tmp_path),
                                                                         debug_image_rate=1.0))
    probe = Probe(context)
    person = probe.listen(ModelResult, f"{NODE}/person/result")
    debug = probe.listen(Image, f"{NODE}/debug_image")
    spin(node, probe.node, threads=node.executor_threads + 2)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    assert wait_for(lambda: node.debug_image.publisher.get_subscription_count() == 1)
    start = time.monotonic()
    for index in range(8):
        publisher.publish(image_message(bikes[5], "bgr8", "cam", index))
        assert wait_for(lambda n=index: len(person) > n, timeout=20)
    elapsed = time.monotonic() - start
    assert wait_for(lambda: len(debug) >= 1)
    assert 1 <= len(debug) == node.debug_image.drawn <= 1 + int(elapsed)  # 1 Hz: the first frame, then 1 per s
    assert debug[0].header.stamp.sec == 0  # the first frame was drawn
