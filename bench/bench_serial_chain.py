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

Run it on two checkouts to compare them (docs/performance.md, "Serial chain: Lua and
conversion cost")::

    python bench/bench_serial_chain.py [--frames 40] [--warmup 5]
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
        self.lua = 0.0
        self.infer = 0.0
        self.convert = 0.0
        self._depth = 0

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
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self.convert += time.perf_counter() - start

        setattr(module, name, timed)
        return lambda: setattr(module, name, original)

    def wrap(self, name: str, kind: str) -> Callable[[], None]:
        original = getattr(Model, name)

        def timed(model: Model, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(model, *args, **kwargs)
            finally:
                setattr(self, kind, getattr(self, kind) + time.perf_counter() - start)

        setattr(Model, name, timed)
        return lambda: setattr(Model, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    timers = Timers()
    restore = [timers.wrap("preprocess", "lua"), timers.wrap("postprocess", "lua"), timers.wrap("infer", "infer"),
               timers.wrap_conversions()]
    rows: dict[str, list[float]] = {"total": [], "inference": [], "Lua / convert": [], "of which conversion": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "person.lua").write_text(PERSON_SCRIPT, encoding="utf-8")
        config = folder / "chain.lua"
        config.write_text(CONFIG % (ROOT / "models/ssdlite_person.onnx", ROOT / "models/pose_landmark_full.onnx",
                                    ROOT / "config/scripts/pose.lua"), encoding="utf-8")
        with Pipeline.from_config(config) as pipeline:
            for index in range(args.warmup + args.frames):
                timers.lua = timers.infer = timers.convert = 0.0
                start = time.perf_counter()
                result = pipeline.run(image)
                total = time.perf_counter() - start
                assert len(result.results["pose"]["detections"]) == PEOPLE
                if index >= args.warmup:
                    rows["total"].append(total * 1e3)
                    rows["inference"].append(timers.infer * 1e3)
                    rows["Lua / convert"].append(timers.lua * 1e3)
                    rows["of which conversion"].append(timers.convert * 1e3)
    for undo in restore:
        undo()
    total = statistics.median(rows["total"])
    print(f"serial person -> pose, {PEOPLE} people, 640x480, {args.frames} frames (median ms per frame)")
    print(f"{'part':<20} {'ms':>8} {'share':>7}")
    for name, values in rows.items():
        ms = statistics.median(values)
        print(f"{name:<20} {ms:>8.2f} {ms / total:>7.1%}")


if __name__ == "__main__":
    main()
