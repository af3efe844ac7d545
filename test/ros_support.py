"""Helpers of the rclpy tests (test/ros, test/replay): domains, spinning, image messages."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rclpy.context import Context
from rclpy.node import Node

from ros_vision_pipe.ros.executors import MultiThreadedExecutor

REPO = Path(__file__).resolve().parents[1]
PERSON_POSE = REPO / "config" / "person_pose.lua"
SSD_SCRIPT = REPO / "config" / "scripts" / "ssd_person.lua"
SSD_MODEL = REPO / "models" / "ssdlite_person.onnx"
PYTHON = sys.executable

#: One DDS domain per test run, so that concurrent runs on this host do not hear each other
#: (``RVP_TEST_DOMAIN_ID`` when set, as tools/run_tests.sh and each engineer's shell do).
DOMAIN_ID = int(os.environ.get("RVP_TEST_DOMAIN_ID") or 1 + os.getpid() % 100)


def ros_env() -> dict[str, str]:
    """Environment for a child process on this run's domain, with the source tree importable."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(DOMAIN_ID), PYTHONUNBUFFERED="1")
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    return env


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, period: float = 0.02) -> bool:
    """Poll ``condition`` until it is truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period)
    return bool(condition())


class Spinner:
    """Spins nodes in the node's ``MultiThreadedExecutor`` on a background thread until ``stop``."""

    def __init__(self, context: Context, nodes: list[Node], threads: int) -> None:
        """Add ``nodes`` and start spinning."""
        self.executor = MultiThreadedExecutor(num_threads=threads, context=context)
        self.nodes = nodes
        for node in nodes:
            self.executor.add_node(node)
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._spin, name="test-spin")
        self.thread.start()

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except BaseException as error:  # noqa: BLE001 - ``stop`` reports it
            self.errors.append(error)

    def stop(self) -> None:
        """Close pipeline nodes, stop the executor, join its thread, destroy the nodes; fail if it raised."""
        for node in self.nodes:
            close = getattr(node, "close", None)
            if callable(close):
                close()
        self.executor.shutdown(timeout_sec=10.0)
        self.thread.join(timeout=10.0)
        assert not self.thread.is_alive(), "executor thread did not stop"
        for node in self.nodes:
            node.destroy_node()
        assert not self.errors, f"the executor's spin thread raised: {self.errors!r}"


def image_message(image: Any, encoding: str, frame_id: str, sec: int, *, step: int | None = None,
                  bigendian: int = 0) -> Any:
    """A ``sensor_msgs/Image`` holding ``image`` (any dtype) with optional row padding."""
    import numpy as np
    from sensor_msgs.msg import Image

    array = np.asarray(image)
    height, width = array.shape[:2]
    row = array.reshape(height, -1).view(np.uint8)
    step = row.shape[1] if step is None else step
    padded = np.zeros((height, step), np.uint8)
    padded[:, : row.shape[1]] = row
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=bigendian, step=step)
    msg.data = padded.tobytes()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = sec
    msg.header.stamp.nanosec = 123_456_789
    return msg


class Probe:
    """A test node: publishes images on topics and collects every result message by topic."""

    def __init__(self, context: Context, name: str = "probe") -> None:
        """Create the node (spin it together with the pipeline node)."""
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

        self.node = rclpy.create_node(name, context=context)
        self.received: dict[str, list[Any]] = {}
        self.lock = threading.Lock()
        self._publishers: dict[str, Any] = {}
        self._sensor_qos = qos_profile_sensor_data
        self._reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)

    def listen(self, message_type: Any, topic: str) -> list[Any]:
        """Collect ``topic``'s messages into the returned (growing) list."""
        inbox = self.received.setdefault(topic, [])

        def store(msg: Any) -> None:
            with self.lock:
                inbox.append(msg)

        self.node.create_subscription(message_type, topic, store, self._reliable)
        return inbox

    def publisher(self, message_type: Any, topic: str, *, reliable: bool = False) -> Any:
        """A publisher of ``topic`` (sensor-data QoS unless ``reliable``), waiting for a subscriber."""
        key = f"{topic}:{reliable}"
        if key not in self._publishers:
            qos = self._reliable if reliable else self._sensor_qos
            self._publishers[key] = self.node.create_publisher(message_type, topic, qos)
            assert wait_for(lambda: self._publishers[key].get_subscription_count() > 0), f"no subscriber on {topic}"
        return self._publishers[key]


class SlowSession:
    """Wraps a real ONNX session and sleeps before each inference."""

    def __init__(self, inner: Any, seconds: float) -> None:
        self._inner, self._seconds = inner, seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def run(self, feeds: Any) -> Any:
        time.sleep(self._seconds)
        return self._inner.run(feeds)
