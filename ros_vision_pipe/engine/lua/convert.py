"""Conversions between Python values and Lua values.

Python -> Lua: dicts and lists become tables (lists 1-based), ndarrays become
``Tensor`` handles, numpy scalars become numbers. Lua -> Python: tables whose keys
are exactly 1..n become lists, other tables dicts, an empty table an empty list,
handles their ndarray.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from lupa import luajit21 as lua

from ros_vision_pipe.engine.lua.tensor import Tensor

#: Deepest nesting converted; deeper tables are almost certainly cyclic.
MAX_DEPTH = 64


def to_lua(runtime: lua.LuaRuntime, value: Any, _depth: int = 0) -> Any:
    """Convert a Python value into a fresh Lua value owned by ``runtime``."""
    if value is None or isinstance(value, (bool, int, float, str, Tensor)):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value)
    if isinstance(value, np.generic):
        return value.item()
    if _depth > MAX_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        table = runtime.table()
        for key, item in value.items():
            table[key] = to_lua(runtime, item, _depth + 1)
        return table
    if isinstance(value, (list, tuple)):
        return runtime.table_from([to_lua(runtime, item, _depth + 1) for item in value])
    raise TypeError(f"cannot pass a {type(value).__name__} to Lua")


def lua_kind(value: Any) -> str | None:
    """Lua type name of ``value`` (``"table"``, ``"function"``...), None for Python values."""
    kind: str | None = lua.lua_type(value)
    return kind


def is_table(value: Any) -> bool:
    """True when ``value`` is a Lua table."""
    return lua_kind(value) == "table"


def from_lua(value: Any, _depth: int = 0) -> Any:
    """Convert a Lua value into plain Python (lists, dicts, numbers, strings, ndarrays)."""
    if isinstance(value, Tensor):
        return value.array
    kind = lua.lua_type(value)
    if kind is None:
        return value
    if kind != "table":
        raise TypeError(f"cannot convert a Lua {kind} to a result value")
    if _depth > MAX_DEPTH:
        raise ValueError(f"Lua table nested deeper than {MAX_DEPTH} levels (cyclic?)")
    items = list(value.items())
    if not items:
        return []
    keys = [key for key, _ in items]
    if all(isinstance(key, int) for key in keys) and sorted(keys) == list(range(1, len(keys) + 1)):
        ordered = sorted(items, key=lambda item: item[0])
        return [from_lua(item, _depth + 1) for _, item in ordered]
    return {str(key): from_lua(item, _depth + 1) for key, item in items}
