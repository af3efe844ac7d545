"""Child processes and the ROS driver of bench/bench_vs_handwritten.py (imported from bench/, not a package).

``Children`` starts the nodes (each in its own process group, logs in a folder) and stops them all
on exit; ``Driver`` publishes the frames, stamped with the wall clock when sent, and collects
``ModelResult`` messages per frame id: closed loop, one at a time, or a camera at a fixed rate.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

# -- child processes ----------------------------------------------------------------------------


class Children:
    """The child processes, each in its own process group; all stopped by ``stop_all`` (atexit too)."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        """Children log into ``log_dir`` and run with ``env``."""
        self.log_dir, self.env = log_dir, env
        self.processes: dict[str, subprocess.Popen] = {}
        atexit.register(self.stop_all)

    def start(self, label: str, command: list[str]) -> subprocess.Popen:
        """Start ``command`` in a new session, stderr and stdout to ``<log_dir>/<label>.log``."""
        with (self.log_dir / f"{label}.log").open("ab") as log:
            process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes[label] = process
        return process

    def log_tail(self, label: str, lines: int = 15) -> str:
        """The last lines of a child's log."""
        path = self.log_dir / f"{label}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, label: str) -> None:
        """SIGTERM to the child's process group (rclpy nodes shut down on it; SIGINT may be ignored
        when the bench was started in the background), SIGKILL after 20 s."""
        process = self.processes.pop(label, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        """Stop every child still running."""
        for label in list(self.processes):
            self.stop(label)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the driver (this process) ------------------------------------------------------------------


@dataclass
class FrameResults:
    """What arrived for one frame: per model (arrival wall ns, arrival monotonic s, latency_ms, payload)."""

    stamp_ns: int
    models: dict[str, tuple[int, float, float, tuple]] = field(default_factory=dict)

    def age_ms(self) -> float:
        """Last arrival - header stamp, ms."""
        return (max(m[0] for m in self.models.values()) - self.stamp_ns) / 1e6

    def arrived(self) -> float:
        """Monotonic time of the last arrival."""
        return max(m[1] for m in self.models.values())

    def model_ms(self, model: str) -> float:
        """The node's own latency_ms for ``model``."""
        return self.models[model][2]


def payload(msg: Any) -> tuple:
    """(status, error, detections, classifications) of a ModelResult, as plain tuples."""
    detections = tuple(((d.x_min, d.y_min, d.x_max, d.y_max), d.score, d.class_id, d.label) for d in msg.detections)
    classes = tuple((c.class_id, c.label, c.score) for c in msg.classifications)
    return msg.status, msg.error, detections, classes


def differences(a: tuple, b: tuple) -> str:
    """Why two payloads differ ("" when equal: same status, count, classes; boxes 1 px, scores 1e-3)."""
    if a[0] != b[0] or a[0] != 0:
        return f"status {a[0]} {a[1]!r} vs {b[0]} {b[1]!r}"
    if len(a[2]) != len(b[2]) or len(a[3]) != len(b[3]):
        return f"{len(a[2])} vs {len(b[2])} detections, {len(a[3])} vs {len(b[3])} classifications"
    for (box_a, score_a, class_a, label_a), (box_b, score_b, class_b, label_b) in zip(a[2], b[2], strict=True):
        if (class_a, label_a) != (class_b, label_b) or abs(score_a - score_b) > 1e-3 or \
                max(abs(p - q) for p, q in zip(box_a, box_b, strict=True)) > 1.0:
            return f"detection {box_a} {score_a:.4f} vs {box_b} {score_b:.4f}"
    for (id_a, _, score_a), (id_b, _, score_b) in zip(a[3], b[3], strict=True):
        if id_a != id_b or abs(score_a - score_b) > 1e-3:
            return f"classification {id_a} {score_a:.4f} vs {id_b} {score_b:.4f}"
    return ""


class Driver:
    """Publishes the frames and collects both nodes' results, in this process (its own executor thread)."""

    def __init__(self, images: list[np.ndarray]) -> None:
        """Create the driver node and one reusable Image message per frame."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import Image

        self.context = Context()
        # no rclpy signal handlers: Ctrl-C raises KeyboardInterrupt in the bench, which stops the children
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("bench_vs_driver", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.messages = []
        for image in images:
            msg = Image(height=image.shape[0], width=image.shape[1], encoding="bgr8", step=image.shape[1] * 3)
            msg.data = image.tobytes()
            self.messages.append(msg)
        self.results: dict[str, FrameResults] = {}
        self.done: dict[str, int] = {}  # run prefix -> frames with every model's result
        self.models: tuple[str, ...] = ()
        self.condition = threading.Condition()
        self.publishers: dict[tuple[str, bool], Any] = {}
        self.subscriptions: list[Any] = []

    def publisher(self, topic: str, reliable: bool) -> Any:
        """The Image publisher of ``topic`` (RELIABLE depth 10, or sensor data: best effort depth 5)."""
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        key = (topic, reliable)
        if key not in self.publishers:
            self.publishers[key] = self.node.create_publisher(Image, topic, 10 if reliable else qos_profile_sensor_data)
        return self.publishers[key]

    def listen(self, result_topics: dict[str, str], models: tuple[str, ...]) -> None:
        """Collect the ModelResults of ``{topic: model}``; a frame is done when all ``models`` answered.

        Waits (up to 30 s) until every topic's publisher is matched, so that no result of the first
        frames is lost (results are VOLATILE).
        """
        from ros_vision_pipe.msg import ModelResult

        for subscription in self.subscriptions:
            self.node.destroy_subscription(subscription)
        self.models = models
        self.subscriptions = [
            self.node.create_subscription(ModelResult, topic, lambda m, model=model: self._arrived(model, m), 100)
            for topic, model in result_topics.items()]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(s.get_publisher_count() for s in self.subscriptions):
            time.sleep(0.05)

    def _arrived(self, model: str, msg: Any) -> None:
        wall, mono = time.time_ns(), time.monotonic()
        with self.condition:
            frame = self.results.get(msg.header.frame_id)
            if frame is None or model in frame.models:
                return
            frame.models[model] = (wall, mono, msg.latency_ms, payload(msg))
            if len(frame.models) == len(self.models):
                prefix = msg.header.frame_id.rsplit("/", 1)[0]
                self.done[prefix] = self.done.get(prefix, 0) + 1
                self.condition.notify_all()

    def send(self, publisher: Any, index: int, frame_id: str) -> None:
        """Publish frame ``index`` as ``frame_id``, stamped now (wall clock)."""
        msg = self.messages[index % len(self.messages)]
        msg.header.frame_id = frame_id
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        with self.condition:
            self.results[frame_id] = FrameResults(now)
        publisher.publish(msg)

    def wait_done(self, prefix: str, count: int, timeout: float = 5.0) -> bool:
        """Wait until ``count`` frames of run ``prefix`` are done."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while self.done.get(prefix, 0) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.condition.wait(remaining)
        return True

    def collected(self, prefix: str, count: int) -> list[FrameResults | None]:
        """The results of frames 0..count-1 of run ``prefix`` (None where a model's result is missing)."""
        with self.condition:
            frames = [self.results.pop(f"{prefix}/{i}", None) for i in range(count)]
        return [f if f is not None and len(f.models) == len(self.models) else None for f in frames]

    def closed_loop(self, publisher: Any, prefix: str, count: int, in_flight: int = 2) -> list[FrameResults | None]:
        """Frames 0..count-1, a new one sent when a result returns (``in_flight`` outstanding)."""
        lost = 0
        for index in range(count):
            if not self.wait_done(prefix, index - in_flight + 1 - lost):
                lost += 1  # a frame without result: count it out after 5 s
            self.send(publisher, index, f"{prefix}/{index}")
        self.wait_done(prefix, count - lost)
        return self.collected(prefix, count)

    def one_at_a_time(self, publisher: Any, prefix: str, count: int, rate: float) -> list[FrameResults | None]:
        """Each frame sent once the previous result arrived, at most ``rate`` frames per second."""
        lost = 0
        for index in range(count):
            start = time.monotonic()
            self.send(publisher, index, f"{prefix}/{index}")
            lost += not self.wait_done(prefix, index + 1 - lost)
            time.sleep(max(0.0, start + 1.0 / rate - time.monotonic()))
        return self.collected(prefix, count)

    def camera(self, publisher: Any, prefix: str, count: int, fps: float) -> list[FrameResults | None]:
        """Frames sent at ``fps`` whatever comes back; results waited for 2 s after the last."""
        start = time.monotonic()
        for index in range(count):
            time.sleep(max(0.0, start + index / fps - time.monotonic()))
            self.send(publisher, index, f"{prefix}/{index}")
        self.wait_done(prefix, count, timeout=2.0)
        return self.collected(prefix, count)

    def wait_for(self, publisher: Any, result_topics: list[str], children: Children, labels: list[str]) -> None:
        """Wait until the node subscribed to ``publisher`` and publishes every result topic."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            for label in labels:
                process = children.processes.get(label)
                if process is None or process.poll() is not None:
                    raise RuntimeError(f"{label} exited during start-up:\n{children.log_tail(label)}")
            if publisher.get_subscription_count() > 0 and all(self.node.count_publishers(t) for t in result_topics):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{labels} did not come up in 180 s:\n" + "\n".join(children.log_tail(x) for x in labels))

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        import rclpy

        self.executor.shutdown()
        self.thread.join(timeout=10)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
