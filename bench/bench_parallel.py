"""Parallel modes and the frame-level pipeline against their limits, with real models.

Prints four tables (all ratios are taken within one run, so both sides see the same load):

1. parallel_sync latency / max(T_i), two models pinned to one inference thread each
   (goal <= 1.15; serial gives the sum). Runs are interleaved frame by frame.
2. parallel_async: person-detector frames per second with pose (every 5th) and scene
   (every 30th) attached / alone (goal >= 0.90). Blocks alternate alone / attached.
3. frame-level pipeline (submit / wait_result) throughput / a run() loop, on the person
   detector with Lua pre+post work calibrated to cost about its inference (goal >= 1.6).
4. memory (RSS) over 10,000 frames in parallel_async with drops (goal: growth < 5 MB).

    python bench/bench_parallel.py [--frames 120] [--only sync,async,frames,memory]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.frames import iter_frames

CONFIGS = Path(__file__).resolve().parent / "configs"


def rss_mb() -> float:
    """Resident memory of this process, MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def settled_rss_mb(pipe: Pipeline) -> float:
    """RSS after a full Lua and Python collection and ``malloc_trim``: memory still referenced.

    Lua's collector does not see the size of the arrays its tensor handles hold, so a few
    frames' worth of arrays wait for its next cycle; that and glibc's per-thread arenas make
    the raw RSS swing by +-20 MB from one sample to the next.
    """
    for script in [pipe.config.script, *(model.script for model in pipe.models.values())]:
        with script.lock:
            script.runtime.execute("collectgarbage()")
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    return rss_mb()


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return (time.perf_counter() - start) * 1e3


def both_in_threads(first: Pipeline, second: Pipeline, image: np.ndarray) -> None:
    """Run two pipelines on ``image`` at once in two plain threads (the machine's parallel capacity)."""
    thread = threading.Thread(target=second.run, args=(image,), kwargs={"encoding": "bgr8"})
    thread.start()
    first.run(image, encoding="bgr8")
    thread.join()


def bench_sync(frames: list[np.ndarray]) -> None:
    print("\n## 1. parallel_sync latency vs the slowest model alone (1 inference thread per model)")
    print(f"{'pair':<14} {'T_person':>9} {'T_other':>8} {'sync':>7} {'serial':>7} {'sync/max':>9} {'serial/max':>11}"
          f" {'threads/max':>12}")
    for pair, other in (("person_face", "face"), ("person_scene", "scene")):
        pipes = {
            "person": Pipeline.from_config(CONFIGS / "par_single_person.lua"),
            "other": Pipeline.from_config(CONFIGS / f"par_single_{other}.lua"),
            "sync": Pipeline.from_config(CONFIGS / f"par_parallel_sync_{pair}.lua"),
            "serial": Pipeline.from_config(CONFIGS / f"par_serial_{pair}.lua"),
        }
        times: dict[str, list[float]] = {name: [] for name in (*pipes, "threads")}
        for index, image in enumerate(frames):
            for name, pipe in pipes.items():
                elapsed = timed(lambda p=pipe, i=image: p.run(i, encoding="bgr8"))  # type: ignore[misc]
                if index >= 5:
                    times[name].append(elapsed)
            first, second = pipes["person"], pipes["other"]
            elapsed = timed(lambda a=first, b=second, i=image: both_in_threads(a, b, i))  # type: ignore[misc]
            if index >= 5:
                times["threads"].append(elapsed)
        for pipe in pipes.values():
            pipe.close()
        med = {name: statistics.median(values) for name, values in times.items()}
        slowest = max(med["person"], med["other"])
        print(f"{pair:<14} {med['person']:>8.1f}  {med['other']:>7.1f}  {med['sync']:>6.1f}  {med['serial']:>6.1f}"
              f"  {med['sync'] / slowest:>8.3f}  {med['serial'] / slowest:>10.3f}  {med['threads'] / slowest:>11.3f}")
    print("(medians in ms; goal sync/max <= 1.15; 'threads/max': the two single-model pipelines run at once in")
    print(" two plain threads, i.e. what the machine's free cores allow at that moment)")


def run_loop_fps(pipe: Pipeline, frames: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for image in frames:
        pipe.run(image, encoding="bgr8")
    return len(frames) / (time.perf_counter() - start)


def bench_async(frames: list[np.ndarray], rounds: int = 5) -> None:
    print("\n## 2. parallel_async: person detector frames/s with pose (1/5) and scene (1/30) attached vs alone")
    alone = Pipeline.from_config(CONFIGS / "par_async_person_alone.lua")
    attached = Pipeline.from_config(CONFIGS / "par_async_person_pose_scene.lua")
    for pipe in (alone, attached):
        run_loop_fps(pipe, frames[:10])
    fps: dict[str, list[float]] = {"alone": [], "attached": []}
    for _ in range(rounds):
        fps["alone"].append(run_loop_fps(alone, frames))
        fps["attached"].append(run_loop_fps(attached, frames))
    time.sleep(0.5)
    stats = attached.stats()
    alone.close()
    attached.close()
    print(f"{'run() loop':<12} {'alone fps':>10} {'attached fps':>13} {'attached/alone':>15}")
    ratios = []
    for index, (a, b) in enumerate(zip(fps["alone"], fps["attached"], strict=True)):
        ratios.append(b / a)
        print(f"{f'round {index + 1}':<12} {a:>10.1f} {b:>13.1f} {b / a:>15.3f}")
    print(f"{'median':<12} {'':>10} {'':>13} {statistics.median(ratios):>15.3f}   (goal >= 0.90)")
    for row in stats.models:
        print(f"  {row.model:<7} runs {row.runs:>4}  reused {row.reused:>4}  skipped {row.skipped:>4}  "
              f"dropped {row.dropped:>3}  mean {row.latency_mean_ms:5.1f} ms  p95 {row.latency_p95_ms:5.1f} ms")


def calibrate_work(frames: list[np.ndarray]) -> tuple[int, float, float]:
    """Lua iterations such that preprocess + postprocess ~ inference (at one thread)."""
    with Pipeline.from_config(CONFIGS / "fp_person_heavy.lua", frame_pipeline=True) as pipe:
        model = pipe.models["person"]
        model.script.runtime.globals()["WORK"] = 0
        infer = []
        for image in frames[:30]:
            ctx = pipe.make_context(image, encoding="bgr8")
            prepared = model.preprocess(ctx)
            assert prepared is not None
            infer.append(timed(lambda p=prepared, c=ctx: model.infer(p, c.frame_id)))  # type: ignore[misc]
        target = statistics.median(infer[5:])
        model.script.runtime.globals()["WORK"] = 1_000_000
        lua = []
        for image in frames[:20]:
            ctx = pipe.make_context(image, encoding="bgr8")
            lua.append(timed(lambda c=ctx: model.preprocess(c)))  # type: ignore[misc]
        per_iteration = statistics.median(lua[5:]) / 1_000_000
    work = int(target / 2 / per_iteration)
    return work, target, 2 * work * per_iteration


def frame_pipeline_fps(pipe: Pipeline, frames: list[np.ndarray]) -> float:
    start = time.perf_counter()
    collected = 0
    for image in frames:
        while not pipe.submit(image, encoding="bgr8"):
            pipe.wait_result(5)
            collected += 1
    while collected < len(frames):
        assert pipe.wait_result(5) is not None
        collected += 1
    return len(frames) / (time.perf_counter() - start)


def bench_frames(frames: list[np.ndarray], rounds: int = 5) -> None:
    print("\n## 3. frame-level pipeline vs run() loop, person detector + Lua work (pre+post ~ inference)")
    work, infer_ms, lua_ms = calibrate_work(frames)
    print(f"calibration: inference {infer_ms:.1f} ms (1 thread), Lua pre+post {lua_ms:.1f} ms ({work} iterations)")
    default = Pipeline.from_config(CONFIGS / "fp_person_heavy.lua")
    sized = Pipeline.from_config(CONFIGS / "fp_person_heavy.lua", frame_pipeline=True)
    for pipe in (default, sized):
        pipe.models["person"].script.runtime.globals()["WORK"] = work
        run_loop_fps(pipe, frames[:5])
    fps: dict[str, list[float]] = {"run, default threads": [], "run, frame_pipeline sessions": [],
                                   "submit/wait_result": []}
    for _ in range(rounds):
        fps["run, default threads"].append(run_loop_fps(default, frames))
        fps["run, frame_pipeline sessions"].append(run_loop_fps(sized, frames))
        fps["submit/wait_result"].append(frame_pipeline_fps(sized, frames))
    default.close()
    sized.close()
    print(f"{'frames/s':<9} {'run default':>12} {'run sized':>10} {'submit/wait':>12} {'/run sized':>11}"
          f" {'/run default':>13}")
    same, default_ratio = [], []
    for index in range(rounds):
        a, b, c = (fps[name][index] for name in fps)
        same.append(c / b)
        default_ratio.append(c / a)
        print(f"{f'round {index + 1}':<9} {a:>12.1f} {b:>10.1f} {c:>12.1f} {c / b:>11.3f} {c / a:>13.3f}")
    print(f"{'median':<9} {'':>12} {'':>10} {'':>12} {statistics.median(same):>11.3f}"
          f" {statistics.median(default_ratio):>13.3f}")
    print("(goal submit/wait_result / run() >= 1.6. 'run sized': the same sessions as the frame-level")
    print(" pipeline (frame_pipeline=True: 1 inference thread, no spinning); 'run default': from_config's")
    print(" defaults for a run() loop (all cores for ONNX Runtime, spinning on))")


def bench_memory(frames: list[np.ndarray], total: int = 10_000) -> None:
    print(f"\n## 4. memory over {total} frames, parallel_async person+pose+scene, frame-level pipeline with drops")
    pipe = Pipeline.from_config(CONFIGS / "par_async_person_pose_scene.lua")
    samples: list[tuple[int, float, float]] = []
    collected = 0
    start = time.perf_counter()
    for index in range(total):
        while not pipe.submit(frames[index % len(frames)], encoding="bgr8"):
            pipe.wait_result(5)
            collected += 1
        if index % 1_000 == 0 or index == total - 1:
            raw = rss_mb()
            samples.append((index, raw, settled_rss_mb(pipe)))
    while collected < total:
        assert pipe.wait_result(5) is not None
        collected += 1
    elapsed = time.perf_counter() - start
    stats = pipe.stats()
    pipe.close()
    print(f"{'frame':>7} {'RSS MB':>8} {'settled MB':>11}")
    for index, raw, settled in samples:
        print(f"{index:>7} {raw:>8.1f} {settled:>11.1f}")
    after = [row for row in samples if row[0] >= 1_000]
    print(f"growth from frame 1000 to {total}: settled {after[-1][2] - after[0][2]:+.1f} MB (goal < 5 MB), "
          f"raw {after[-1][1] - after[0][1]:+.1f} MB (range {min(r[1] for r in after):.0f}-"
          f"{max(r[1] for r in after):.0f}); {elapsed:.0f} s")
    print(f"frames out {stats.frames_out}, dropped whole (main queue full) {stats.frames_dropped}")
    for row in stats.models:
        print(f"  {row.model:<7} runs {row.runs:>5}  dropped {row.dropped:>5}  reused {row.reused:>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--only", default="sync,async,frames,memory")
    args = parser.parse_args()
    frames = [f.image for f in iter_frames("sample:bikes", limit=args.frames)]
    if args.only != "memory" or "--only" not in sys.argv:
        print(f"bench_parallel: {len(frames)} frames of bikes.mp4 (640x272), onnxruntime CPU")
    sections = {"sync": bench_sync, "async": bench_async, "frames": bench_frames, "memory": bench_memory}
    names = args.only.split(",")
    for name in names:
        if name == "memory" and len(names) > 1:  # in a fresh process: earlier sections' threads skew RSS
            sys.stdout.flush()
            subprocess.run([sys.executable, __file__, "--frames", str(args.frames), "--only", "memory"],
                           check=True)
            continue
        sections[name](frames)


if __name__ == "__main__":
    main()
