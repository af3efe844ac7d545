"""Per-frame cost of a serial person -> pose chain with 10 people: where the time goes.

The chain is the shipped ``config/scripts/pose.lua`` after a person model that returns 10
fixed person boxes (its network, SSDLite, runs on every frame as in ``person_pose.lua``; only its
postprocess is fixed, so that every frame has exactly 10 people). Each frame is split into:

- inference: ``Model.infer`` of both models (ONNX Runtime; pose runs its 10 crops one by one);
- Lua / convert: ``Model.preprocess`` + ``Model.postprocess`` of both models (the scripts, the
  ``vp`` ops they call and every Python <-> Lua conversion of ``ctx``, the outputs and results);
- of which conversion: the outermost ``to_lua`` / ``from_lua`` calls in those steps (Python
  values <-> Lua tables: ``ctx``, ``vp`` arguments and results, the scripts' results);
- total: ``Pipeline.run``.

Each part is timed twice: wall time (``ms``) and the CPU time of the calling thread (``cpu ms``,
``time.thread_time``; ``run`` runs every step in the calling thread), which other processes
on a shared machine inflate much less than wall time.

With ``--replayed-inference`` each model runs its network once per input shape and then hands
back copies of those real outputs: the scripts see the same data, and the Lua side is measured
without ONNX Runtime's threads (which spin after each run) competing with it for the cores.

Run it on two checkouts to compare them (docs/performance.md, "One frame path (issue 10)")::

    python bench/bench_serial_chain.py [--frames 40] [--warmup 5] [--replayed-inference]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.remote.factory import default_session_factory

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = 10

PERSON_SCRIPT = """
local BOXES, SCORES, CLASSES = {}, {}, {}
for i = 1, PEOPLE do
  local x = 20 + (i - 1) * 60
  BOXES[i], SCORES[i], CLASSES[i] = { x, 60, x + 50, 300 }, 0.9, 1
end
BOXES, SCORES, CLASSES = vp.from_table(BOXES, "float32"), vp.from_table(SCORES, "float32"), vp.from_table(CLASSES)
function preprocess(ctx)
  return vp.expand_dims(vp.resize(vp.image(ctx, "rgb8"), 300, 300), 1)
end
function postprocess(outputs, ctx)  -- as ssd_person.lua: the boxes above, through vp.detections
  return { detections = vp.detections(BOXES, SCORES, CLASSES, { "person" }) }
end
""".replace("PEOPLE", str(PEOPLE))

CONFIG = """
return {
  mode = "serial",
  models = {
    { name = "person", path = "%s", script = "person.lua" },
    { name = "pose", path = "%s", script = "%s" },
  },
}
"""


class Timers:
    """Seconds spent in ``Model`` methods and in conversions during one frame, by kind."""

    def __init__(self) -> None:
        self.lua = self.infer = self.convert = 0.0
        self.lua_cpu = self.infer_cpu = self.convert_cpu = 0.0
        self._depth = 0

    def reset(self) -> None:
        """Zero every part before a frame."""
        self.lua = self.infer = self.convert = 0.0
        self.lua_cpu = self.infer_cpu = self.convert_cpu = 0.0

    def wrap_conversions(self) -> Callable[[], None]:
        """Time the outermost ``to_lua`` / ``from_lua`` calls, wherever they were imported."""
        import importlib

        undo = []
        for module_name in ("convert", "sandbox", "host_api"):
            module = importlib.import_module(f"ros_vision_pipe.engine.lua.{module_name}")
            undo += [self._patch(module, name) for name in ("to_lua", "from_lua") if hasattr(module, name)]
        for module_name in ("ros_vision_pipe.engine.model", "ros_vision_pipe.engine.modes.base"):
            module = importlib.import_module(module_name)
            undo += [self._patch(module, name) for name in ("to_lua", "from_lua") if hasattr(module, name)]
        return lambda: [each() for each in undo]

    def _patch(self, module: Any, name: str) -> Callable[[], None]:
        original = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth += 1
            start, start_cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.convert += time.perf_counter() - start
                    self.convert_cpu += time.thread_time() - start_cpu

        setattr(module, name, timed)
        return lambda: setattr(module, name, original)

    def wrap(self, name: str, kind: str) -> Callable[[], None]:
        original = getattr(Model, name)

        def timed(model: Model, *args: Any, **kwargs: Any) -> Any:
            start, start_cpu = time.perf_counter(), time.thread_time()
            try:
                return original(model, *args, **kwargs)
            finally:
                setattr(self, kind, getattr(self, kind) + time.perf_counter() - start)
                setattr(self, f"{kind}_cpu", getattr(self, f"{kind}_cpu") + time.thread_time() - start_cpu)

        setattr(Model, name, timed)
        return lambda: setattr(Model, name, original)


class ReplayedSession:
    """A real session that runs once per input shape, then returns copies of those outputs."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata
        self._outputs: dict[tuple[Any, ...], list[np.ndarray]] = {}

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        key = tuple((name, array.shape) for name, array in feeds.items())
        if key not in self._outputs:
            self._outputs[key] = self.inner.run(feeds)
        return [array.copy() for array in self._outputs[key]]


def replayed_session_factory(*args: Any) -> ReplayedSession:
    """The default session factory, each session wrapped in a ``ReplayedSession``."""
    return ReplayedSession(default_session_factory(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--replayed-inference", action="store_true",
                        help="run each network once, then replay its outputs (the Lua side alone)")
    args = parser.parse_args()
    factory = replayed_session_factory if args.replayed_inference else default_session_factory
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    timers = Timers()
    restore = [timers.wrap("preprocess", "lua"), timers.wrap("postprocess", "lua"), timers.wrap("infer", "infer"),
               timers.wrap_conversions()]
    parts = ("total", "inference", "Lua / convert", "of which conversion")
    rows: dict[str, list[float]] = {name: [] for name in parts}
    cpu: dict[str, list[float]] = {name: [] for name in parts}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "person.lua").write_text(PERSON_SCRIPT, encoding="utf-8")
        config = folder / "chain.lua"
        config.write_text(CONFIG % (ROOT / "models/ssdlite_person.onnx", ROOT / "models/pose_landmark_full.onnx",
                                    ROOT / "config/scripts/pose.lua"), encoding="utf-8")
        with Pipeline.from_config(config, session_factory=factory) as pipeline:
            for index in range(args.warmup + args.frames):
                timers.reset()
                start, start_cpu = time.perf_counter(), time.thread_time()
                result = pipeline.run(image)
                total, total_cpu = time.perf_counter() - start, time.thread_time() - start_cpu
                assert len(result.results["pose"]["detections"]) == PEOPLE
                if index >= args.warmup:
                    rows["total"].append(total * 1e3)
                    rows["inference"].append(timers.infer * 1e3)
                    rows["Lua / convert"].append(timers.lua * 1e3)
                    rows["of which conversion"].append(timers.convert * 1e3)
                    for name, seconds in zip(parts, (total_cpu, timers.infer_cpu, timers.lua_cpu, timers.convert_cpu),
                                             strict=True):
                        cpu[name].append(seconds * 1e3)
    for undo in restore:
        undo()
    total = statistics.median(rows["total"])
    replayed = ", inference replayed" if args.replayed_inference else ""
    print(f"serial person -> pose, {PEOPLE} people, 640x480, {args.frames} frames{replayed} (median ms per frame)")
    print(f"{'part':<20} {'ms':>8} {'share':>7} {'cpu ms':>8}")
    for name, values in rows.items():
        ms = statistics.median(values)
        print(f"{name:<20} {ms:>8.2f} {ms / total:>7.1%} {statistics.median(cpu[name]):>8.2f}")


if __name__ == "__main__":
    main()
