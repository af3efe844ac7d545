"""Custom debug-image overlays from Lua: the configuration's ``debug_image.draw(ctx, results)``.

The function runs in the configuration's own Lua runtime (where ``fusion``/``aggregator`` live,
under its lock), only when a debug image is drawn. While it runs, ``vp`` also has four drawing
operations (coordinates in original-image pixels, ``colour`` an optional ``{r, g, b}``, 0-255)::

    vp.draw_box(x1, y1, x2, y2 [, label [, colour]])
    vp.draw_line(x1, y1, x2, y2 [, colour])
    vp.draw_circle(x, y, radius [, colour])   -- filled
    vp.draw_text(x, y, text [, colour])

``ctx`` holds ``frame_id``, ``source``, ``width``, ``height``; ``results`` the models' results as
their scripts returned them (a disabled or skipped model is absent). Example::

    debug_image = {
      draw = function(ctx, results)
        local person = results.person
        if person then vp.draw_text(4, ctx.height - 8, #person.detections .. " people", {255, 255, 255}) end
      end,
    }

A failing ``draw`` is reported (``ScriptError``) by the caller and the standard drawing still goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.lua.convert import to_lua

_DEFAULT = (255, 255, 255)
_COMPOSE = "local base, extra = ...\nreturn setmetatable(extra, { __index = base })"


def _colour(value: Any) -> tuple[int, int, int]:
    if value is None:
        return _DEFAULT
    r, g, b = (int(value[i]) for i in (1, 2, 3))
    return (b, g, r)


class LuaOverlay:
    """Runs a configuration's ``debug_image.draw`` and applies the operations it asked for.

    Args:
        config: The loaded configuration (its runtime holds the function).
        function: The Lua function ``debug_image.draw``.
    """

    def __init__(self, config: LoadedConfig, function: Any) -> None:
        """Build the ``vp`` seen by ``draw``: the configuration's ``vp`` plus the drawing operations."""
        self._script = script = config.script
        self._function = function
        self._ops: list[tuple[Any, ...]] = []
        extra = script.runtime.table()
        for name, op in (("draw_box", self._box), ("draw_line", self._line), ("draw_circle", self._circle),
                         ("draw_text", self._text)):
            extra[name] = script.host_function(f"vp.{name}", op)
        base = script.runtime.globals()["vp"]
        self._vp = script.readonly(script.runtime.execute(_COMPOSE, base, extra), "vp")

    def _box(self, x1: float, y1: float, x2: float, y2: float, label: Any = None, colour: Any = None) -> None:
        self._ops.append(("box", float(x1), float(y1), float(x2), float(y2),
                          None if label is None else str(label), _colour(colour)))

    def _line(self, x1: float, y1: float, x2: float, y2: float, colour: Any = None) -> None:
        self._ops.append(("line", float(x1), float(y1), float(x2), float(y2), _colour(colour)))

    def _circle(self, x: float, y: float, radius: float, colour: Any = None) -> None:
        self._ops.append(("circle", float(x), float(y), float(radius), _colour(colour)))

    def _text(self, x: float, y: float, text: Any, colour: Any = None) -> None:
        self._ops.append(("text", float(x), float(y), str(text), _colour(colour)))

    def draw(self, canvas: np.ndarray, frame_id: int, source: str, results: Mapping[str, Any]) -> int:
        """Call ``draw(ctx, results)`` and apply its operations to ``canvas``; returns how many.

        Raises:
            ScriptError: The function failed (the message names the configuration and line).
        """
        script = self._script
        height, width = canvas.shape[:2]
        with script.lock:
            self._ops = []
            runtime = script.runtime
            ctx = script.readonly(to_lua(runtime, {"frame_id": frame_id, "source": source, "width": width,
                                                   "height": height}), "ctx")
            globals_ = runtime.globals()
            original = globals_["vp"]
            globals_["vp"] = self._vp
            try:
                script.call(self._function, "debug_image.draw", ctx, to_lua(runtime, dict(results)),
                            frame_id=frame_id)
            finally:
                globals_["vp"] = original
            ops, self._ops = self._ops, []
        from ros_vision_pipe.ros.debug_image import label_at  # the same label style as the standard drawing

        for op in ops:
            kind, colour = op[0], op[-1]
            if kind == "box":
                x1, y1, x2, y2 = (int(round(v)) for v in op[1:5])
                cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
                if op[5]:
                    label_at(canvas, op[5], x1, y1, colour)
            elif kind == "line":
                cv2.line(canvas, (int(op[1]), int(op[2])), (int(op[3]), int(op[4])), colour, 2, cv2.LINE_AA)
            elif kind == "circle":
                cv2.circle(canvas, (int(op[1]), int(op[2])), max(1, int(op[3])), colour, cv2.FILLED)
            else:
                cv2.putText(canvas, op[3], (int(op[1]), int(op[2])), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                            cv2.LINE_AA)
        return len(ops)


__all__ = ["LuaOverlay"]
