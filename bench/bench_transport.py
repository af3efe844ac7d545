"""Fast DDS transport choices for camera-size images: one-way latency, delivery and CPU per message.

A camera stand-in (publisher) and a subscriber run as two processes for each transport choice and
exchange ``sensor_msgs/Image`` bgr8 frames of 640x480 (921,600 B), 1280x720 (2.8 MB) and
1920x1080 (6.2 MB) at 30 fps, best effort and reliable (depth 5, both sides the same QoS). For
each (choice, size, QoS) the table gives:

* delivered: frames received / published (a frame counts once, by its index in ``frame_id``);
* latency p50 / p95: ``header.stamp`` is the wall clock when the publisher calls ``publish``, the
  subscriber takes its wall clock when its callback starts: transport + rclpy plumbing
  (serialisation, the DDS hand-over, the executor's wake-up, deserialisation into Python);
* CPU per message of the publisher and of the subscriber process (process CPU time over the
  phase, all threads, divided by messages published / received).

Choices (``--choices``; each child's Fast DDS variables are set from scratch, profiles are
generated into a temporary folder):

* ``defaults``: no profile (Fast DDS's built-in transports: 512 KiB shared memory + UDPv4);
* ``shm4`` / ``shm16`` / ``shm32`` / ``shm64``: a shared-memory transport with a 4/16/32/64 MiB
  segment + UDPv4 (``shm16`` is the shipped ``config/fastdds_large_data.xml`` itself);
* ``shm16-only``: the 16 MiB shared-memory transport alone (no UDP: same-host only);
* ``large_data`` / ``large_data_4mb``: ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` (UDP for
  discovery, TCP + shared memory for data), plain and with
  ``?max_msg_size=1MB&sockets_size=4MB&non_blocking=true`` (``sockets_size`` also sizes the
  shared-memory segment; with 16MB, above ``net.core.rmem_max`` here, no participant was created).
  rmw_fastrtps ignores the variable under ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` (it sets
  its own transports there), so these two only mean something with ``--discovery-range SUBNET``;
* ``data_sharing``: ``shm16`` + ``<data_sharing><kind>AUTOMATIC</kind>`` for every DataWriter and
  DataReader, with ``RMW_FASTRTPS_USE_QOS_FROM_XML=1`` (without it rmw_fastrtps turns data
  sharing off); ``data_sharing_on``: the same with ``ON`` (which Fast DDS refuses for an unbounded
  type such as ``sensor_msgs/Image``: the run reports the failure);
* ``shm16_async``: ``shm16`` + ``RMW_FASTRTPS_PUBLICATION_MODE=ASYNCHRONOUS`` (rmw_fastrtps's
  default is SYNCHRONOUS).

Then "mixed" rows (``--mixed``, best effort): the camera without any profile and the subscriber
with the choice, and the other way round: what happens when only one side loads it; ``--pairs
shm64:shm16`` runs other camera/subscriber combinations.

    source tools/ros_env.sh
    python bench/bench_transport.py [--seconds 2] [--choices defaults,shm16,...] [--mixed shm16,...]
        [--sizes 640x480,1920x1080] [--discovery-range LOCALHOST|SUBNET]

The children inherit ``ROS_DOMAIN_ID`` and ``ROS_AUTOMATIC_DISCOVERY_RANGE`` (``tools/ros_env.sh``:
LOCALHOST; ``--discovery-range`` overrides it; with LOCALHOST rmw_fastrtps adds its own 512 KiB
shared-memory and UDP transports next to the profile's). Default run: about 5 minutes here.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # transport_choices, also when imported
from transport_choices import DEFAULT_CHOICES, child_environment, choice_environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZES = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}
QOS = ("best_effort", "reliable")
DEFAULT_MIXED = ("shm16",)
STEP_TIMEOUT_S = 60.0
def topic_name(size: str, qos: str) -> str:
    """The topic of one (size, QoS) stream."""
    return f"/bench_transport/img_{size}_{qos}"


# ---------------------------------------------------------------- children (own processes)

def _qos(name: str) -> Any:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE if name == "reliable"
                      else ReliabilityPolicy.BEST_EFFORT)


def _reply(payload: dict[str, Any]) -> None:
    print(json.dumps(payload), flush=True)


def publisher_main(sizes: list[str]) -> int:
    """The camera stand-in: ``run TAG SIZE QOS FRAMES FPS`` on stdin -> ``{"published", "cpu_s"}``."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    with rclpy.init():
        node = rclpy.create_node("bench_transport_camera")
        publishers, messages = {}, {}
        rng = np.random.default_rng(0)
        for size in sizes:
            width, height = SIZES[size]
            message = Image(height=height, width=width, encoding="bgr8", step=width * 3)
            message.data = rng.integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes()
            messages[size] = message
            for qos in QOS:
                publishers[size, qos] = node.create_publisher(Image, topic_name(size, qos), _qos(qos))
        deadline = time.monotonic() + STEP_TIMEOUT_S / 2
        while any(p.get_subscription_count() == 0 for p in publishers.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # let the subscriber's side of the discovery finish too
        _reply({"ready": all(p.get_subscription_count() > 0 for p in publishers.values())})
        for line in sys.stdin:
            command = line.split()
            if not command or command[0] == "quit":
                break
            tag, size, qos, frames, fps = command[1], command[2], command[3], int(command[4]), float(command[5])
            message, publisher = messages[size], publishers[size, qos]
            cpu0, start = time.process_time(), time.monotonic()
            for index in range(frames):
                pause = start + index / fps - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                now = time.time_ns()
                message.header.stamp.sec, message.header.stamp.nanosec = divmod(now, 1_000_000_000)
                message.header.frame_id = f"{tag}:{index}"
                publisher.publish(message)
            _reply({"published": frames, "cpu_s": time.process_time() - cpu0})
        node.destroy_node()
    return 0


def subscriber_main(sizes: list[str]) -> int:
    """The receiver: ``start TAG`` / ``stop`` on stdin -> ``{"received", "p50_ms", "p95_ms", "cpu_s"}``."""
    import threading

    import numpy as np
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import Image

    state: dict[str, Any] = {"tag": None, "latencies": [], "seen": set()}
    lock = threading.Lock()

    def on_image(message: Image) -> None:
        arrival = time.time_ns()
        tag, _, index = message.header.frame_id.partition(":")
        stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
        with lock:
            if tag == state["tag"] and index not in state["seen"]:
                state["seen"].add(index)
                state["latencies"].append((arrival - stamp) / 1e6)

    with rclpy.init():
        node = rclpy.create_node("bench_transport_receiver")
        for size in sizes:
            for qos in QOS:
                node.create_subscription(Image, topic_name(size, qos), on_image, _qos(qos))
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        running = threading.Event()
        running.set()

        def spin() -> None:
            while running.is_set():
                executor.spin_once(timeout_sec=0.1)

        spinner = threading.Thread(target=spin)
        spinner.start()
        _reply({"ready": True})
        cpu0 = 0.0
        for line in sys.stdin:
            command = line.split()
            if not command or command[0] == "quit":
                break
            if command[0] == "start":
                with lock:
                    state.update(tag=command[1], latencies=[], seen=set())
                cpu0 = time.process_time()
                _reply({"started": command[1]})
            else:  # stop
                cpu = time.process_time() - cpu0
                with lock:
                    latencies, state["tag"] = list(state["latencies"]), None
                p50, p95 = (np.percentile(latencies, [50, 95]).tolist() if latencies else (None, None))
                _reply({"received": len(latencies), "p50_ms": p50, "p95_ms": p95, "cpu_s": cpu})
        running.clear()
        spinner.join()  # a thread still spinning at exit aborts the process and leaks its /dev/shm segment
        executor.shutdown()
        node.destroy_node()
    return 0


# ---------------------------------------------------------------- the parent

@dataclass
class Child:
    """A child process and its stderr file, read line by line with a timeout."""

    process: subprocess.Popen[str]
    stderr: IO[str]
    pending: bytes = b""

    @classmethod
    def start(cls, role: str, sizes: list[str], env: dict[str, str], folder: Path) -> Child:
        """Start ``bench_transport.py --role ROLE``."""
        stderr = (folder / f"{role}.err").open("w+", encoding="utf-8")
        process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--role", role,
                                    "--sizes", ",".join(sizes)], env=env, cwd=REPO, text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        return cls(process, stderr)

    def ask(self, command: str | None, timeout: float = STEP_TIMEOUT_S) -> dict[str, Any]:
        """Send ``command`` (if any) and wait for the child's JSON reply (other output lines are skipped).

        Raises:
            RuntimeError: The child exited or did not answer in ``timeout`` s (names its stderr's tail).
        """
        assert self.process.stdin is not None and self.process.stdout is not None
        if command is not None:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" not in self.pending:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
                chunk = os.read(self.process.stdout.fileno(), 65536) if ready else b""
                if not chunk:
                    raise RuntimeError(f"no answer to {command or 'start-up'!r}: {self.error_tail()}")
                self.pending += chunk
            line, _, self.pending = self.pending.partition(b"\n")
            if line.startswith(b"{"):
                return json.loads(line)

    def error_tail(self) -> str:
        """The last meaningful line of the child's stderr."""
        self.stderr.flush()
        self.stderr.seek(0)
        lines = [line.strip() for line in self.stderr if line.strip()]
        return lines[-1][:200] if lines else f"exit code {self.process.poll()}"

    def stop(self) -> None:
        """Ask it to quit; kill it if it does not within 5 s."""
        try:
            if self.process.poll() is None and self.process.stdin is not None:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        self.stderr.close()


@dataclass(frozen=True)
class Row:
    """One measured (choice, size, QoS) in one round."""

    label: str
    size: str
    qos: str
    published: int = 0
    received: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    cpu_pub_ms: float | None = None
    cpu_sub_ms: float | None = None
    error: str = ""


def _span(values: list[float | None], digits: int = 1) -> str:
    """``a`` or ``a-b`` (min-max over rounds) of the known values, ``-`` when none."""
    known = sorted(v for v in values if v is not None)
    if not known:
        return "-"
    low, high = f"{known[0]:.{digits}f}", f"{known[-1]:.{digits}f}"
    return low if low == high else f"{low}-{high}"


def cells(rounds: list[Row]) -> list[str]:
    """The Markdown cells of one (choice, size, QoS) over its rounds (ranges: min-max)."""
    first = rounds[0]
    failed = [row.error for row in rounds if row.error]
    if failed:
        return [first.label, first.size, first.qos, f"failed ({len(failed)}/{len(rounds)}): {failed[0]}", "", ""]
    received, published = sum(r.received for r in rounds), sum(r.published for r in rounds)
    delivered = f"{received}/{published} ({_span([100 * r.received / max(r.published, 1) for r in rounds], 0)} %)"
    latency = f"{_span([r.p50_ms for r in rounds])} / {_span([r.p95_ms for r in rounds])}"
    cpu = f"{_span([r.cpu_pub_ms for r in rounds])} / {_span([r.cpu_sub_ms for r in rounds])}"
    return [first.label, first.size, first.qos, delivered, latency, cpu]


def measure_pair(label: str, pub_env: dict[str, str], sub_env: dict[str, str], sizes: list[str],
                 qos_list: tuple[str, ...], seconds: float, fps: float, folder: Path) -> list[Row]:
    """Run one publisher/subscriber pair through every (size, QoS) phase."""
    rows: list[Row] = []
    subscriber = Child.start("sub", sizes, sub_env, folder)
    publisher: Child | None = None
    try:
        subscriber.ask(None)
        publisher = Child.start("pub", sizes, pub_env, folder)
        if not publisher.ask(None).get("ready"):
            raise RuntimeError(f"publisher and subscriber did not match in {STEP_TIMEOUT_S / 2:g} s")
        frames = max(int(seconds * fps), 2)
        for size in sizes:
            for qos in qos_list:
                tag = f"{size}-{qos}"
                subscriber.ask(f"start {tag}")
                sent = publisher.ask(f"run {tag} {size} {qos} {frames} {fps}")
                time.sleep(0.5)  # the last frames in flight
                got = subscriber.ask("stop")
                received = got["received"]
                rows.append(Row(label, size, qos, sent["published"], received, got["p50_ms"], got["p95_ms"],
                                1000 * sent["cpu_s"] / sent["published"],
                                1000 * got["cpu_s"] / received if received else None))
    except RuntimeError as error:
        rows.append(Row(label, "all", "-", error=str(error)))
    finally:
        for child in (publisher, subscriber):
            if child is not None:
                child.stop()
    return rows


def print_table(rows: list[Row]) -> None:
    """Print the rows as a Markdown table, one line per (choice, size, QoS) in first-measured order."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.label, row.size, row.qos), []).append(row)
    print("| transport (camera -> subscriber) | image bgr8 | QoS | delivered at 30 fps | latency p50 / p95 ms "
          "| CPU ms/msg pub / sub |")
    print("|---|---|---|---|---|---|")
    for group in groups.values():
        print("| " + " | ".join(cells(group)) + " |", flush=True)


def main() -> int:
    """Parse the arguments; run a child role, or the whole comparison."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=["pub", "sub"], help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma-separated, of " + ", ".join(SIZES))
    parser.add_argument("--seconds", type=float, default=2.0, help="per (size, QoS) phase")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--choices", default=",".join(DEFAULT_CHOICES))
    parser.add_argument("--mixed", default=",".join(DEFAULT_MIXED),
                        help="choices also run with only one side configured ('' = none)")
    parser.add_argument("--pairs", default="", help="CAMERA:SUBSCRIBER choice pairs, best effort (e.g. shm64:shm16)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat everything, in another order each round")
    parser.add_argument("--discovery-range", default=None, help="ROS_AUTOMATIC_DISCOVERY_RANGE of the children")
    args = parser.parse_args()
    sizes = [size for size in args.sizes.split(",") if size]
    if args.role == "pub":
        return publisher_main(sizes)
    if args.role == "sub":
        return subscriber_main(sizes)
    choices = [c for c in args.choices.split(",") if c]
    mixed = [c for c in args.mixed.split(",") if c]
    discovery = args.discovery_range or os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "(unset: SUBNET)")
    print(f"# {len(sizes)} sizes x {len(QOS)} QoS, {args.seconds:g} s at {args.fps:g} fps per phase, "
          f"{args.rounds} round(s) (ranges: min-max over rounds); "
          f"ROS_AUTOMATIC_DISCOVERY_RANGE={discovery}\n", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_transport_") as tmp:
        folder = Path(tmp)
        plain = child_environment({}, args.discovery_range)
        pairs: list[tuple[str, dict[str, str], dict[str, str], tuple[str, ...]]] = []
        for choice in choices:
            env = child_environment(choice_environment(choice, folder), args.discovery_range)
            pairs.append((choice, env, env, QOS))
        for choice in mixed:
            env = child_environment(choice_environment(choice, folder), args.discovery_range)
            pairs += [(f"defaults -> {choice}", plain, env, ("best_effort",)),
                      (f"{choice} -> defaults", env, plain, ("best_effort",))]
        for pair in [p for p in args.pairs.split(",") if p]:
            camera, _, receiver = pair.partition(":")
            pairs.append((f"{camera} -> {receiver}", child_environment(choice_environment(camera, folder),
                                                                       args.discovery_range),
                          child_environment(choice_environment(receiver, folder), args.discovery_range),
                          ("best_effort",)))
        for round_index in range(args.rounds):
            shift = round_index * max(len(pairs) // max(args.rounds, 1), 1)  # another order each round
            for label, pub_env, sub_env, qos_list in pairs[shift:] + pairs[:shift]:
                rows += measure_pair(label, pub_env, sub_env, sizes, qos_list, args.seconds, args.fps, folder)
                print(f"# round {round_index + 1}: {label} done", file=sys.stderr, flush=True)
    order = {label: index for index, (label, *_) in enumerate(pairs)}
    rows.sort(key=lambda row: order[row.label])  # stable: sizes and QoS stay in measured order
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
