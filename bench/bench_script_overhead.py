"""What the Lua side of a model costs per frame: preprocess and postprocess apart from inference.

The SSDLite person detector (``config/scripts/ssd_person.lua``) on bikes.mp4: median time of the
engine's ``preprocess`` (Lua call, context table, ``vp`` calls, feed checks) and ``postprocess``
(Lua call, ``vp`` calls, result conversion), next to the inference they surround. The script cost
is what changes with the Lua runtime; run it on two checkouts to compare them side by side. Since
the script names built-in steps (``vp.steps``, docs/lua_api.md), its functions run without a call into
Lua: on a checkout from before that, the same figures include the Lua calls.

    PYTHONPATH=. python bench/bench_script_overhead.py [--frames 300]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.frames import iter_frames

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    frames = [f.image for f in iter_frames("sample:bikes", limit=min(args.frames, 150))]
    times: dict[str, list[float]] = {"preprocess": [], "inference": [], "postprocess": []}
    with Pipeline.from_config(REPO / "bench" / "configs" / "single_person.lua") as pipeline:
        model = pipeline.models["person"]
        for index in range(args.frames + 20):
            ctx = pipeline.make_context(frames[index % len(frames)], encoding="bgr8")
            start = time.perf_counter()
            prepared = model.preprocess(ctx)
            assert prepared is not None
            middle = time.perf_counter()
            outputs = model.infer(prepared, ctx.frame_id)
            after = time.perf_counter()
            model.postprocess(outputs, ctx, prepared)
            end = time.perf_counter()
            if index >= 20:  # warm-up
                times["preprocess"].append((middle - start) * 1e3)
                times["inference"].append((after - middle) * 1e3)
                times["postprocess"].append((end - after) * 1e3)
    print(f"SSDLite person detector, {args.frames} frames of bikes.mp4 (640x272), median per frame")
    print(f"{'step':<14} {'median ms':>10} {'p95 ms':>8}")
    for step, samples in times.items():
        print(f"{step:<14} {statistics.median(samples):>10.3f} {np.percentile(samples, 95):>8.3f}")
    script = statistics.median(times["preprocess"]) + statistics.median(times["postprocess"])
    print(f"{'script total':<14} {script:>10.3f}   ({script / statistics.median(times['inference']):.1%} of inference)")


if __name__ == "__main__":
    main()
