"""The ``vp`` module Lua scripts call: vectorised numpy/OpenCV operations.

The operations themselves live in ``ros_vision_pipe.engine.vision`` as plain
numpy functions (see ``docs/lua_api.md``); this module binds them into a Lua
runtime, converting arguments and results and turning Python errors into Lua
errors located at the script's calling line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ros_vision_pipe.engine.lua.convert import to_lua
from ros_vision_pipe.engine.lua.handles import Tensor
from ros_vision_pipe.engine.lua.sandbox import LuaScript

_LOG = logging.getLogger("ros_vision_pipe.lua")

# Host functions written in Lua on top of the numpy ones.
_LUA_HELPERS = r"""
local vp = ...
-- The frame image in the requested encoding (default: as received).
function vp.image(ctx, encoding)
  if encoding == nil or encoding == ctx.encoding then return ctx.image end
  return vp.convert_color(ctx.image, ctx.encoding, encoding)
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
    script.runtime.execute(_LUA_HELPERS, vp)
    script.runtime.globals()["vp"] = script.readonly(vp, "vp")
    for name, value in (extra or {}).items():
        script.runtime.globals()[name] = script.readonly(to_lua(script.runtime, value), name)
