"""Frames side by side or one after the other: what replicas (engine/replicas.py) buy.

Two ways to run back-to-back inferences of the SSDLite person detector (300x300 frames) on every
core of this machine, measured in one process, rounds interleaved:

* ``one session, all cores``: one frame at a time on one session with an intra-op thread per
  core (spinning, ONNX Runtime's default; the node's session while the cores are free);
* ``one session, all cores, quiet``: the same without spinning;
* ``replicas``: one one-thread session per core, each on a frame of its own at the same time (what
  the node's direct path does while frames back up);
* ``one session, one thread``: for scale.

Then the same model in the engine, as the node runs it (``Pipeline.from_config(direct=True)``),
with one frame at a time and with two in flight: frames per second, and whether replicas ran.
Prints a Markdown table of inferences per second (median and range of the rounds).

    source tools/ros_env.sh && python bench/bench_replicas.py [--frames 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ros_vision_pipe.engine.cores import available_cores  # noqa: E402

MODEL = ROOT / "models" / "ssdlite_person.onnx"
CONFIG = ROOT / "bench" / "configs" / "single_person.lua"


def session(threads: int, spinning: bool = True) -> Any:
    """A plain ``onnxruntime.InferenceSession`` of the person detector."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(MODEL), sess_options=options, providers=["CPUExecutionProvider"])


def side_by_side(sessions: list[Any], frames: int) -> float:
    """Inferences per second with each session running ``frames`` inferences in a thread of its own."""
    feeds = {"image_tensor:0": np.random.default_rng(0).integers(0, 255, (1, 300, 300, 3), np.uint8)}
    for each in sessions:
        each.run(None, feeds)

    def loop(each: Any) -> None:
        for _ in range(frames):
            each.run(None, feeds)

    threads = [threading.Thread(target=loop, args=(each,)) for each in sessions]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(sessions) * frames / (time.perf_counter() - start)


def engine(in_flight: int, images: list[np.ndarray]) -> tuple[float, int]:
    """Frames per second of the engine's direct path with ``in_flight`` frames submitted at once,
    and the inferences that ran on replicas."""
    from ros_vision_pipe.engine.pipeline import Pipeline

    pipeline = Pipeline.from_config(CONFIG, direct=True, shares_cores=True)
    try:
        model = pipeline.models["person"]
        for _ in range(2):  # the second pass finds the replicas built when frames back up
            start, got, frames = time.perf_counter(), 0, iter(images)
            for _ in range(in_flight):
                pipeline.submit(next(frames), source="bench")
            while got < len(images):
                if pipeline.wait_result(timeout=30) is None:
                    raise RuntimeError("no result within 30 s")
                got += 1
                image = next(frames, None)
                if image is not None:
                    pipeline.submit(image, source="bench")
        replicas = model.replicas(start=False)
        return len(images) / (time.perf_counter() - start), 0 if replicas is None else replicas.runs
    finally:
        pipeline.close()


def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150, help="inferences per session and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = available_cores()
    choices: dict[str, Callable[[], float]] = {
        "one session, all cores (spinning)": lambda: side_by_side([session(cores)], args.frames),
        "one session, all cores, quiet": lambda: side_by_side([session(cores, False)], args.frames),
        f"replicas: {cores} one-thread sessions side by side": lambda: side_by_side(
            [session(1, False) for _ in range(cores)], args.frames),
        "one session, one thread": lambda: side_by_side([session(1, False)], args.frames),
    }
    results: dict[str, list[float]] = {name: [] for name in choices}
    for _ in range(args.rounds):
        for name, choice in choices.items():
            results[name].append(choice())
    from ros_vision_pipe.frames import iter_frames

    images = [frame.image for frame in iter_frames("sample:bikes", min(args.frames, 120))]
    direct: dict[str, list[float]] = {"engine direct path, one frame at a time": [],
                                      "engine direct path, two in flight": []}
    replica_runs = {name: 0 for name in direct}
    for _ in range(args.rounds):
        for name, in_flight in zip(direct, (1, 2), strict=True):
            fps, runs = engine(in_flight, images)
            direct[name].append(fps)
            replica_runs[name] = runs
    print(f"\n{cores} cores; SSDLite person detector; {args.rounds} rounds\n")
    print("| choice | inferences/s, median (range) | on replicas |")
    print("|---|---|---|")
    for name, values in {**results, **direct}.items():
        cell = f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"
        print(f"| {name} | {cell} | {replica_runs.get(name, '')} |")


if __name__ == "__main__":
    main()
