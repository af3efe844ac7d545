"""Frames that back up in the node run side by side on replicas of the model (engine/replicas.py),
over real rclpy and DDS with the real person detector: results in order, none lost, the same detections."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from ros_support import Probe, image_message, wait_for
from ros_vision_pipe.msg import ModelResult
from runtime_support import write_person_config
from sensor_msgs.msg import Image

from ros_vision_pipe.engine.cores import FreeCores, available_cores
from ros_vision_pipe.engine.overlap import CALM_FRAMES
from ros_vision_pipe.engine.replicas import Replicas
from ros_vision_pipe.ros.node import PipelineNode

pytestmark = pytest.mark.skipif(available_cores() < 2, reason="replicas are for machines of 2+ cores")

NODE = "/vision_pipeline"


def make_node(context: Any, config: Path, **params: Any) -> PipelineNode:
    overrides = [Parameter("config_file", value=str(config)), Parameter("image_topics", value=["/cam"]),
                 Parameter("qos.reliable", value=True), Parameter("qos.depth", value=10)]
    overrides += [Parameter(name, value=value) for name, value in params.items()]
    return PipelineNode(context=context, parameter_overrides=overrides)


def closed_loop(publisher: Any, inbox: list[Any], images: list[Any], in_flight: int, first_sec: int) -> list[Any]:
    """Publish ``images`` keeping ``in_flight`` frames without a result, as a client that sends the next
    frame when a result comes; returns their results."""
    start = len(inbox)
    sent = 0
    while len(inbox) - start < len(images):
        while sent < len(images) and sent - (len(inbox) - start) < in_flight:
            publisher.publish(image_message(images[sent], "bgr8", "cam", first_sec + sent))
            sent += 1
        got = len(inbox)
        assert wait_for(lambda got=got: len(inbox) > got, timeout=20), f"no result after {got - start} of {len(images)}"
    return inbox[start:]


def replicas_of(node: PipelineNode) -> Replicas | None:
    assert node.pipeline is not None
    return node.pipeline.current.pipeline.models["person"].replicas(start=False)


def published(diagnostics: list[Any]) -> str:
    """The last ``replicas`` value of the node's "pipeline" status on /diagnostics ("" before one)."""
    found = [s for a in list(diagnostics) for s in a.status if s.name == f"{NODE}: pipeline"]
    return {kv.key: kv.value for kv in found[-1].values}["replicas"] if found else ""


def boxes(messages: list[Any]) -> list[list[tuple[float, ...]]]:
    return [[(round(d.x_min), round(d.y_min), round(d.x_max), round(d.y_max), round(d.score, 3))
             for d in m.detections] for m in messages]


def running(context: Any, spin: Any, tmp_path: Path, **params: Any) -> tuple[PipelineNode, Any, list[Any], list[Any]]:
    """The node on a person config, spinning with a probe: (node, image publisher, results, /diagnostics)."""
    node = make_node(context, write_person_config(tmp_path), diagnostics_period=0.2, **params)
    probe = Probe(context)
    results = probe.listen(ModelResult, f"{NODE}/person/result")
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(node, probe.node, threads=node.executor_threads + 2)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    assert wait_for(lambda: publisher.get_subscription_count() > 0)
    return node, publisher, results, diagnostics


def test_frames_that_back_up_run_side_by_side_in_order_and_one_at_a_time_does_not(
        context, spin, bikes, tmp_path, monkeypatch) -> None:
    # every core reads as free: CI's other processes do not keep frames off the replicas (that rule:
    # test/engine/test_replicas.py)
    monkeypatch.setattr(FreeCores, "free", lambda self: float(self.cores))
    node, publisher, results, diagnostics = running(context, spin, tmp_path)

    alone = closed_loop(publisher, results, bikes, in_flight=1, first_sec=100)
    time.sleep(0.3)
    assert replicas_of(node) is None, "one frame at a time built replicas"
    assert wait_for(lambda: published(diagnostics) == "person: none yet (no frame has backed up)")

    closed_loop(publisher, results, bikes[:4], in_flight=2, first_sec=200)  # the replicas are built meanwhile
    assert wait_for(lambda: replicas_of(node) is not None, timeout=30), "frames backed up, no replicas built"
    replicas = replicas_of(node)
    assert replicas is not None
    used = replicas.runs
    backed_up = closed_loop(publisher, results, bikes, in_flight=2, first_sec=300)
    assert replicas.runs - used >= len(bikes) - CALM_FRAMES, "frames that backed up did not run on replicas"
    assert [m.header.stamp.sec for m in backed_up] == list(range(300, 300 + len(bikes)))
    assert all(m.status == ModelResult.STATUS_OK for m in backed_up)
    assert boxes(backed_up) == boxes(alone) and any(boxes(alone)), "detections differ (or none to compare)"

    used = replicas.runs
    closed_loop(publisher, results, bikes, in_flight=1, first_sec=400)
    assert replicas.runs - used <= CALM_FRAMES, "one frame at a time stayed on the replicas"
    assert node.pipeline is not None
    assert node.pipeline.current.pipeline.stats().frames_dropped == 0
    expected = f"person: {replicas.size} built, {replicas.runs} inferences on them ({replicas.peak} at once at most)"
    assert wait_for(lambda: published(diagnostics) == expected), published(diagnostics)


def test_replicas_false_keeps_one_frame_at_a_time(context, spin, bikes, tmp_path) -> None:
    node, publisher, results, diagnostics = running(context, spin, tmp_path, replicas=False)
    got = closed_loop(publisher, results, bikes, in_flight=2, first_sec=100)
    assert [m.header.stamp.sec for m in got] == list(range(100, 100 + len(bikes)))
    time.sleep(0.3)
    assert replicas_of(node) is None
    assert wait_for(lambda: published(diagnostics) == "off (replicas:=false)")
