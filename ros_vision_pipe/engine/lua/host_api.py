"""The ``vp`` module Lua scripts call: vectorised numpy/OpenCV operations.

The operations themselves live in ``ros_vision_pipe.engine.vision`` as plain
numpy functions (see ``docs/lua_api.md``); this module binds them into a Lua
runtime, converting arguments and results and turning Python errors into Lua
errors located at the script's calling line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import numpy as np

from ros_vision_pipe.engine.lua.convert import to_lua
from ros_vision_pipe.engine.lua.handles import Tensor
from ros_vision_pipe.engine.lua.sandbox import LuaScript

_LOG = logging.getLogger("ros_vision_pipe.lua")

# Host functions written in Lua on top of the numpy ones.
_LUA_HELPERS = r"""
local vp, mark_step, check_step = ...
local pairs = pairs
-- The frame image in the requested encoding (default: as received).
function vp.image(ctx, encoding)
  if encoding == nil or encoding == ctx.encoding then return ctx.image end
  return vp.convert_color(ctx.image, ctx.encoding, encoding)
end

-- Built-in steps (engine/steps.py): the arguments are checked now, by the step the engine runs
-- (``check_step`` returns them as it took them, copied); the function returned does the same in Lua.
local steps = {}
vp.steps = steps

local function made(spec)
  local ok, checked, message = check_step(spec)
  if not ok then error(checked, 3) end
  if checked == nil then error(message, 3) end
  return checked
end

function steps.model_input(w, h, opts)
  local spec = made({ kind = "model_input", width = w, height = h, opts = opts })
  local options = spec.opts or {}
  local function step(ctx)
    if options.dst == nil then return vp.model_input(ctx.image, spec.width, spec.height, options) end
    local with_src = { src = ctx.encoding }
    for key, value in pairs(options) do with_src[key] = value end
    return vp.model_input(ctx.image, spec.width, spec.height, with_src)
  end
  mark_step(step, spec)
  return step
end

function steps.select_detections(boxes, scores, thr, opts)
  local spec = made({ kind = "select_detections", boxes = boxes, scores = scores, thr = thr, opts = opts })
  local options = spec.opts or {}
  local function step(outputs, ctx)
    local selected = { labels = options.labels, format = options.format, limit = options.limit,
                       scale = options.scale }
    if options.class_ids ~= nil then selected.class_ids = outputs[options.class_ids] end
    if options.scale == "image" then selected.scale = { ctx.width, ctx.height } end
    return { [options.key or "detections"] = vp.select_detections(outputs[spec.boxes], outputs[spec.scores],
                                                                  spec.thr, selected) }
  end
  mark_step(step, spec)
  return step
end
"""


#: Lua arguments that reach Python as they are (``from_lua`` would return them unchanged).
_PLAIN = frozenset({int, float, bool, type(None)})


def _bind(script: LuaScript, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` with Lua arguments made Python (a tensor handle gives its array) and its result
    made Lua (a new array becomes a handle the script holds); one Python frame for the common case."""
    hold, from_lua, to_lua = script.hold, script.from_lua, script.to_lua

    def converted(item: Any) -> Any:
        if type(item) is np.ndarray:  # the common result: a new array, held as a handle
            return hold(Tensor(item))
        value = to_lua(item)
        if isinstance(value, Tensor):  # a new array the script holds: counted against its memory limit
            hold(value)
        return value

    def call(*args: Any) -> Any:
        result = function(*[arg.array if type(arg) is Tensor else arg if type(arg) in _PLAIN else from_lua(arg)
                            for arg in args])
        if type(result) is np.ndarray:
            return hold(Tensor(result))
        if isinstance(result, tuple):
            return tuple(converted(item) for item in result)
        return converted(result)

    return call


def _check_step(script: LuaScript, spec: Any) -> tuple[Any, Any]:
    """``(copy of spec, nil)`` when the built-in step ``spec`` describes takes its arguments, else
    ``(nil, message)``: ``vp.steps.<kind>``'s check (``engine/steps.py``)."""
    from ros_vision_pipe.engine.steps import make_step
    from ros_vision_pipe.engine.vision import VisionOpError

    arguments = script.from_lua(spec)
    try:
        make_step(arguments)
    except VisionOpError as error:
        return None, f"vp.{error}"
    return script.to_lua(arguments), None


def install_vp(script: LuaScript, extra: Mapping[str, Any] | None = None) -> None:
    """Define the global ``vp`` table (and the ``extra`` globals) in ``script``'s runtime.

    Args:
        script: The runtime to install into, before its chunk runs.
        extra: Additional read-only globals, e.g. ``MODEL`` (the model's description).
    """
    from ros_vision_pipe.engine.vision import VP_FUNCTIONS

    vp = script.runtime.table()
    for name, function in VP_FUNCTIONS.items():
        vp[name] = script.host_function(f"vp.{name}", _bind(script, function))
    vp["log"] = script.host_function("vp.log", lambda *parts: _LOG.info(
        "[%s] %s", script.display_name, " ".join(str(p) for p in parts)))
    script.runtime.execute(_LUA_HELPERS, vp, script.mark_step, script.guarded("vp.steps", partial(_check_step, script)))
    vp["steps"] = script.readonly(vp["steps"], "vp.steps")
    script.runtime.globals()["vp"] = script.readonly(vp, "vp")
    for name, value in (extra or {}).items():
        script.runtime.globals()[name] = script.readonly(to_lua(script.runtime, value), name)
