"""ROS node overhead: the pipeline node vs a bare rclpy relay, and node vs engine throughput.

Prints a Markdown table (docs/performance.md, section "ROS node overhead"):

* latency: every frame is sent to (a) and then to (b), one at a time (no queueing), and timed
  from its ``header.stamp`` (wall clock, set when publishing) to the arrival of the output at
  a listener in this process; both processes run side by side, so they see the same load:
  (a) a bare rclpy relay in its own process: subscribe ``sensor_msgs/Image`` -> publish its
      ``std_msgs/Header``;
  (b) the pipeline node (``python -m ros_vision_pipe.ros.node``) in its own process running a
      single-model pipeline (bench/configs/single_person.lua) -> ``FusedResult``;
  node overhead = median over frames of ((b) - engine time - (a)), the frame's (a) and (b) measured
  back to back, where engine time is the model's ``latency_ms`` (preprocess + inference +
  postprocess) carried by the result;
* CPU time per frame of the relay and node processes during the latency runs, and of the engine
  alone with the node's sessions (``node_session_factory``: no spinning) run at the same pace in
  this process: the node's overhead in CPU, far less sensitive to the machine's load than latency;
* throughput on the same frames, in interleaved blocks of 20 frames so that all see the same
  load: the engine alone (``Pipeline.run`` back to back, in this process) vs the node fed
  closed-loop with 2 frames in flight (and the bare relay fed the same way: transport alone).

    source tools/ros_env.sh
    python bench/bench_node.py [--frames 100] [--rate 10] [--width 640 --height 480] [--debug-image]

The node runs with its defaults, so ``<ns>/debug_image`` exists (``debug_image_rate`` 5 Hz) but
nobody subscribes: nothing is drawn (the overhead above is the node's with the debug image
unsubscribed). ``--debug-image`` subscribes to it as well, with ``debug_image_rate:=1000`` (every
frame drawn), and prints how many debug images arrived: the cost of drawing when someone looks.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the source tree before an older install/ copy
    sys.path.insert(0, str(REPO))
CONFIG = REPO / "bench" / "configs" / "single_person.lua"
IMAGE_TOPIC = "/bench/image"
RELAY_TOPIC = "/bench/relay"
FUSED_TOPIC = "/bench_node/fused"
DEBUG_TOPIC = "/bench_node/debug_image"


def relay_main() -> int:
    """(a): the bare relay, run as ``bench_node.py --relay`` in its own process."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    with rclpy.init():
        node = rclpy.create_node("bench_relay")
        publisher = node.create_publisher(Header, RELAY_TOPIC, qos)
        node.create_subscription(Image, f"{IMAGE_TOPIC}/relay", lambda msg: publisher.publish(msg.header), qos)
        try:
            rclpy.spin(node)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        node.destroy_node()
    return 0


def bench_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Frames of the cyclist clip (from frame 60 on) resized to width x height, bgr8."""
    from ros_vision_pipe.frames import iter_frames

    source = [f.image for f in iter_frames("sample:bikes", 250)][60:]
    return [cv2.resize(source[i % len(source)], (width, height)) for i in range(count)]


class Engine:
    """The engine alone, in this process: ``Pipeline.run`` back to back on the same frames."""

    def __init__(self, frames: list[np.ndarray], config: Path, session_factory: Any = None) -> None:
        """Load the pipeline (default sessions unless ``session_factory``) and warm it up."""
        from ros_vision_pipe.engine.pipeline import Pipeline

        if session_factory is None:
            self.pipeline = Pipeline.from_config(config)
        else:
            self.pipeline = Pipeline.from_config(config, session_factory=session_factory)
        for image in frames[:10]:
            self.pipeline.run(image, encoding="bgr8")

    def cpu_ms(self, frames: list[np.ndarray], rate: float) -> float:
        """CPU milliseconds per frame of ``Pipeline.run`` at ``rate`` frames per second (as in (b))."""
        start = time.process_time()
        for image in frames:
            begin = time.monotonic()
            self.pipeline.run(image, encoding="bgr8")
            time.sleep(max(0.0, begin + 1.0 / rate - time.monotonic()))
        return (time.process_time() - start) * 1e3 / len(frames)

    def seconds(self, frames: list[np.ndarray]) -> float:
        """Wall time of ``Pipeline.run`` over ``frames``."""
        start = time.perf_counter()
        for image in frames:
            self.pipeline.run(image, encoding="bgr8")
        return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid``, all threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    """Publishes frames to the relay and to the node, and listens to both outputs, in this process."""

    def __init__(self, debug_image: bool = False) -> None:
        """Create the driver node (listening to the debug image too if asked) and spin it on a thread."""
        import rclpy
        from rclpy.context import Context
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from ros_vision_pipe.msg import FusedResult
        from sensor_msgs.msg import Image
        from std_msgs.msg import Header

        from ros_vision_pipe.ros.executors import MultiThreadedExecutor  # rclpy's busy-loops (executors.py)

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bench_driver", context=self.context)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.publishers = {name: self.node.create_publisher(Image, f"{IMAGE_TOPIC}/{name}", qos)
                           for name in ("relay", "node")}
        self.arrivals: dict[str, tuple[float, float, float]] = {}  # frame id -> (latency ms, engine ms, t)
        self.arrived = threading.Condition()
        self.node.create_subscription(Header, RELAY_TOPIC, lambda m: self._arrived(m, 0.0), qos)
        self.node.create_subscription(
            FusedResult, FUSED_TOPIC, lambda m: self._arrived(m.header, sum(r.latency_ms for r in m.results)), qos)
        self.debug_images = 0
        if debug_image:
            self.node.create_subscription(Image, DEBUG_TOPIC, self._debug_image, qos)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin)
        self.thread.start()
        self._image_type = Image

    def _debug_image(self, message: Any) -> None:
        self.debug_images += 1

    def _arrived(self, header: Any, engine_ms: float) -> None:
        now = time.time_ns()
        sent = header.stamp.sec * 1_000_000_000 + header.stamp.nanosec
        with self.arrived:
            self.arrivals[header.frame_id] = ((now - sent) / 1e6, engine_ms, time.monotonic())
            self.arrived.notify_all()

    def message(self, image: np.ndarray, frame_id: str) -> Any:
        """An Image message of ``image`` (stamped when sent)."""
        msg = self._image_type(height=image.shape[0], width=image.shape[1], encoding="bgr8",
                               step=image.shape[1] * 3)
        msg.data = image.tobytes()
        msg.header.frame_id = frame_id
        return msg

    def send(self, target: str, msg: Any) -> None:
        """Stamp ``msg`` with the wall clock and publish it to ``target`` (relay or node)."""
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
        self.publishers[target].publish(msg)

    def wait(self, wanted: set[str] | int, timeout: float = 10.0) -> bool:
        """Wait until every frame id in ``wanted`` arrived, or until ``wanted`` frames arrived."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while True:
                done = len(self.arrivals) >= wanted if isinstance(wanted, int) else wanted <= set(self.arrivals)
                remaining = deadline - time.monotonic()
                if done or remaining <= 0:
                    return done
                self.arrived.wait(remaining)

    def latency(self, frames: list[np.ndarray], rate: float) -> list[tuple[float, float, float]]:
        """Each frame to the relay, then to the node, one at a time: [(relay ms, node ms, engine ms)]."""
        pairs: list[tuple[float, float, float]] = []
        for index, image in enumerate(frames):
            for target in ("relay", "node"):
                start = time.monotonic()
                self.send(target, self.message(image, f"{target}-{index}"))
                self.wait({f"{target}-{index}"})
                time.sleep(max(0.0, start + 0.5 / rate - time.monotonic()))
            relay, node = self.arrivals.get(f"relay-{index}"), self.arrivals.get(f"node-{index}")
            if relay is not None and node is not None:
                pairs.append((relay[0], node[0], node[1]))
        return pairs

    def throughput(self, frames: list[np.ndarray], target: str = "node", in_flight: int = 2) -> float:
        """Seconds from the first to the last output of ``frames`` sent to ``target`` closed-loop
        (``in_flight`` frames outstanding): the time of ``len(frames) - 1`` frames."""
        messages = [self.message(image, f"tp-{index}") for index, image in enumerate(frames)]
        with self.arrived:
            self.arrivals = {}
        for sent, msg in enumerate(messages):
            self.wait(sent - in_flight + 1)
            self.send(target, msg)
        self.wait(len(messages), timeout=30)
        times = sorted(t for _, _, t in self.arrivals.values())
        return times[-1] - times[0]

    def wait_for_peers(self) -> None:
        """Wait until the relay and the node subscribed and their outputs are matched."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (all(p.get_subscription_count() > 0 for p in self.publishers.values())
                    and self.node.count_publishers(RELAY_TOPIC) and self.node.count_publishers(FUSED_TOPIC)):
                time.sleep(1.0)
                return
            time.sleep(0.05)
        raise RuntimeError("the relay or the node did not come up")

    def close(self) -> None:
        """Stop spinning and shut the context down."""
        import rclpy

        self.executor.shutdown()
        self.thread.join()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="frames per second of the latency runs")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--config", type=Path, default=CONFIG, help="single-model pipeline (default %(default)s)")
    parser.add_argument("--debug-image", action="store_true",
                        help="also subscribe to the node's debug image, drawn on every frame")
    parser.add_argument("--relay", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        return relay_main()
    config = args.config.resolve()

    frames = bench_frames(args.frames, args.width, args.height)
    from ros_vision_pipe.ros.node import node_session_factory

    same_sessions = Engine(frames, config, node_session_factory)  # CPU: the node's sessions (no spinning)
    engine_cpu_ms = same_sessions.cpu_ms(frames[:60], args.rate)
    same_sessions.pipeline.close()
    engine = Engine(frames, config)  # throughput reference: the engine's defaults
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    commands = [
        [sys.executable, __file__, "--relay"],
        [sys.executable, "-m", "ros_vision_pipe.ros.node", "--ros-args", "-r", "__node:=bench_node",
         "-p", f"config_file:={config}", "-p", f"image_topics:=[{IMAGE_TOPIC}/node]",
         "-p", "qos.reliable:=true", "-p", "qos.depth:=100",
         *(["-p", "debug_image_rate:=1000.0"] if args.debug_image else [])],
    ]
    processes = [subprocess.Popen(c, cwd=REPO, env=env, stdout=subprocess.DEVNULL) for c in commands]
    bench = Bench(args.debug_image)
    blocks: list[tuple[float, float, float]] = []  # seconds of (engine, node, relay) per block
    block = 20
    try:
        bench.wait_for_peers()
        bench.latency(frames[:10], args.rate)  # warm-up
        cpu_before = [cpu_seconds(p.pid) for p in processes]
        pairs = bench.latency(frames, args.rate)
        relay_cpu_ms, node_cpu_ms = ((cpu_seconds(p.pid) - before) * 1e3 / len(frames)
                                     for p, before in zip(processes, cpu_before, strict=True))
        bench.throughput(frames[:10])  # warm-up
        for start in range(0, len(frames) - block + 1, block):  # interleaved: same load for all three
            part = frames[start:start + block]
            blocks.append((engine.seconds(part[1:]), bench.throughput(part), bench.throughput(part, "relay")))
    finally:
        bench.close()
        engine.pipeline.close()
        for process in processes:
            process.send_signal(signal.SIGINT)
        for process in processes:
            process.wait(timeout=30)

    fps_engine, fps_node, fps_relay = ((block - 1) * len(blocks) / sum(b[i] for b in blocks) for i in range(3))
    ratio = statistics.median(b[0] / b[1] for b in blocks)  # node fps / engine fps, block by block
    relay_ms = statistics.median(p[0] for p in pairs)
    node_ms = statistics.median(p[1] for p in pairs)
    model_ms = statistics.median(p[2] for p in pairs)
    overhead = statistics.median(p[1] - p[2] - p[0] for p in pairs)  # paired: same load for (a) and (b)
    print(f"ROS node overhead, {args.width}x{args.height} bgr8, {len(frames)} frames, "
          f"{config.name}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}\n")
    print("| measure | value |")
    print("|---|---|")
    print(f"| (a) bare rclpy relay, image -> Header, median latency | {relay_ms:.2f} ms ({len(pairs)} frames) |")
    print(f"| (b) pipeline node, image -> FusedResult, median latency | {node_ms:.2f} ms ({len(pairs)} frames) |")
    print(f"| engine time in (b) (model latency_ms), median | {model_ms:.2f} ms |")
    print(f"| **node overhead: median over frames of (b) - engine - (a)** (goal <= 1 ms) | **{overhead:.2f} ms** |")
    print(f"| CPU per frame: (a) relay / (b) node process / engine alone, same sessions and pace | "
          f"{relay_cpu_ms:.2f} / {node_cpu_ms:.2f} / {engine_cpu_ms:.2f} ms |")
    print(f"| **node overhead in CPU: (b) - engine - (a)** | **{node_cpu_ms - engine_cpu_ms - relay_cpu_ms:.2f} ms** |")
    print(f"| engine alone, Pipeline.run back to back | {fps_engine:.1f} fps |")
    print(f"| through the node (closed loop, 2 frames in flight) | {fps_node:.1f} fps |")
    print(f"| **node / engine throughput**, median of {len(blocks)} blocks (goal >= 0.95) | **{ratio:.3f}** |")
    print(f"| bare relay, same feed (transport alone) | {fps_relay:.1f} fps |")
    debug = f"subscribed: {bench.debug_images} images received" if args.debug_image else "unsubscribed (nothing drawn)"
    print(f"| debug image | {debug} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
