"""How ONNX Runtime should use the cores of a shared machine: threads and spinning, measured.

The node's sessions are built with ``intra_op_threads = FREE_CORES`` (engine/session.py): every
core, spinning as ONNX Runtime's default does when other processes leave the cores free, and
threads that never spin otherwise. This bench shows why, on the SSDLite person detector (one 300x300
frame), for five session choices:

* ``1 thread``: one thread, no spinning;
* ``all cores, no spin``: every core, threads block between operators (the node before
  the speed work);
* ``all cores, spin``: ONNX Runtime's default (a plain ``InferenceSession(path)``): threads spin
  between operators and keep spinning after an inference;
* ``all cores, spin in run``: spinning only while an inference runs (``session.force_spinning_stop``);
* ``FREE_CORES``: the engine's adaptive session (spinning in run or not spinning, per inference,
  ``cores.FreeCores``).

each in two situations, the machine as it is and with one core busy in another process (a
``while True: pass`` child), and two paces: back to back (max throughput) and 30 Hz (a camera;
CPU per frame then includes what the session burns between frames). Rounds are interleaved so
that every choice sees the same load. Prints a Markdown table: inference wall time p50 / p95
and the process's CPU time per frame (medians of the rounds).

    source tools/ros_env.sh && python bench/bench_spinning.py [--frames 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ros_vision_pipe.engine.session import FREE_CORES, OnnxSession  # noqa: E402

MODEL = REPO / "models" / "ssdlite_person.onnx"


def plain_session(threads: int, spin: bool, stop: bool) -> Callable[[dict[str, np.ndarray]], Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if stop:
        options.add_session_config_entry("session.force_spinning_stop", "1")
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run(None, feeds)


def choices() -> dict[str, Callable[[dict[str, np.ndarray]], Any]]:
    import onnxruntime as ort

    default = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    adaptive = OnnxSession(MODEL, model_name="person", intra_op_threads=FREE_CORES, allow_spinning=True)
    return {
        "1 thread": plain_session(1, False, False),
        "all cores, no spin": plain_session(0, False, False),
        "all cores, spin (ORT default)": lambda feeds: default.run(None, feeds),
        "all cores, spin in run": plain_session(0, True, True),
        "FREE_CORES (the node)": adaptive.run,
    }


@contextmanager
def busy_core(enabled: bool) -> Iterator[None]:
    """A child process spinning on one core while the block runs."""
    if not enabled:
        yield
        return
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.6)  # let FreeCores see it (it samples every 0.1 s)
    try:
        yield
    finally:
        child.kill()
        child.wait()


def measure(run: Callable[[dict[str, np.ndarray]], Any], feeds: dict[str, np.ndarray], frames: int,
            period: float) -> tuple[list[float], float]:
    """Inference wall times (ms) and process CPU ms per frame, ``period`` s between starts (0: back to back)."""
    for _ in range(3):
        run(feeds)
    walls = []
    cpu0, start = time.process_time(), time.perf_counter()
    for index in range(frames):
        if period:
            delay = start + index * period - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        begin = time.perf_counter()
        run(feeds)
        walls.append((time.perf_counter() - begin) * 1e3)
    if period:  # what spinning threads burn after the last frame belongs to it
        time.sleep(max(0.0, start + frames * period - time.perf_counter()))
    return walls, (time.process_time() - cpu0) * 1e3 / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    feeds = {"image_tensor:0": np.random.default_rng(0).integers(0, 255, (1, 300, 300, 3), dtype=np.uint8)}
    sessions = choices()
    situations = [(busy, pace) for busy in (False, True) for pace in (0.0, 1 / 30)]
    rows: dict[tuple[str, bool, float], list[tuple[float, float, float]]] = {}
    load = os.getloadavg()[0]
    for _ in range(args.rounds):
        for busy, pace in situations:
            with busy_core(busy):
                for name, run in sessions.items():
                    walls, cpu = measure(run, feeds, args.frames, pace)
                    rows.setdefault((name, busy, pace), []).append(
                        (statistics.median(walls), float(np.percentile(walls, 95)), cpu))
    print(f"SSDLite person detector, one 300x300 frame per inference; {os.cpu_count()} cores, load {load:.1f} at "
          f"the start; {args.frames} inferences x {args.rounds} interleaved rounds; medians of the rounds\n")
    print("| session | situation | inference p50 / p95 ms | CPU ms per frame |")
    print("|---|---|---|---|")
    for busy, pace in situations:
        situation = ("one core busy elsewhere" if busy else "machine as is") + (
            ", 30 Hz" if pace else ", back to back")
        for name in sessions:
            values = rows[(name, busy, pace)]
            p50, p95, cpu = (statistics.median(v[i] for v in values) for i in range(3))
            print(f"| {name} | {situation} | {p50:.1f} / {p95:.1f} | {cpu:.1f} |")


if __name__ == "__main__":
    main()
