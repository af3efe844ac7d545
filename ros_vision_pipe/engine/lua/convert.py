"""Conversions between Python values and Lua values.

Python -> Lua: dicts and lists become tables (lists 1-based), ndarrays become
``Tensor`` handles, numpy scalars become numbers. With ``views`` (a ``LuaScript``'s
``view``), a ``DetectionList`` becomes a read-only list view instead: its rows are made
tables only when the script indexes them, and ``from_lua`` (given the script's
``view_source``) turns the view back into the same detections without reading it.

Lua -> Python is exact and bounded: a table whose keys are exactly 1..n becomes a
list, a table with string (or string and number) keys a dict with string keys, an
empty table an empty list, a tensor handle its ndarray. Anything else is a
``ConversionError`` naming where in the value it is:

- a key that is neither a string nor a number, or two keys with the same text
  (``{[1] = "a", ["1"] = "b"}``);
- a list with holes, or integer keys that are not 1..n (``{[1] = 1, [3] = 3}``);
- a function, coroutine or host object other than a tensor handle (e.g. ``t.at``);
- a string that is not UTF-8;
- more than ``MAX_VALUES`` values in all (a subtable reached twice counts twice, so
  ``local t = {} for i = 1, 40 do t = {t, t} end`` stops after a million values), or
  more than ``MAX_BYTES`` of strings and numbers, or nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from lupa import lua54 as lua

from ros_vision_pipe.engine.lua.handles import Tensor
from ros_vision_pipe.engine.vision.formats import DetectionList

#: Deepest nesting converted; deeper tables are almost certainly cyclic.
MAX_DEPTH = 64

#: Most values (table entries and scalars, counted each time they are reached) one
#: conversion produces.
MAX_VALUES = 1_000_000

#: Most bytes of strings (their length) and numbers (8 bytes each) one conversion produces.
MAX_BYTES = 64 * 1024 * 1024

_SCALARS = (bool, int, float)
_lua_type = lua.lua_type


class ConversionError(ValueError):
    """A Lua value cannot be converted exactly; ``path`` says where in the value."""

    def __init__(self, message: str) -> None:
        """Create the error; the path is filled in while it travels up the value."""
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def __str__(self) -> str:
        where = "".join(reversed(self.path))
        return f"{self.message} (at value{where})" if where else self.message


def to_lua(runtime: lua.LuaRuntime, value: Any, _depth: int = 0, *,
           views: Callable[[DetectionList], Any] | None = None) -> Any:
    """Convert a Python value into a fresh Lua value owned by ``runtime``.

    ``views`` turns a ``DetectionList`` into a lazy read-only view (``LuaScript.view``);
    without it, detections become tables like any list.
    """
    if value is None or isinstance(value, (bool, int, float, str, Tensor)):
        return value
    if views is not None and type(value) is DetectionList:
        return views(value)
    if isinstance(value, np.ndarray):
        return Tensor(value)
    if isinstance(value, np.generic):
        return value.item()
    if _depth > MAX_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        table = runtime.table()
        for key, item in value.items():
            table[key] = to_lua(runtime, item, _depth + 1, views=views)
        return table
    if isinstance(value, (list, tuple)):
        return runtime.table_from([to_lua(runtime, item, _depth + 1, views=views) for item in value])
    raise TypeError(f"cannot pass a {type(value).__name__} to Lua")


def lua_kind(value: Any) -> str | None:
    """Lua type name of ``value`` (``"table"``, ``"function"``...), None for Python values."""
    kind: str | None = _lua_type(value)
    return kind


def is_table(value: Any) -> bool:
    """True when ``value`` is a Lua table."""
    return _lua_type(value) == "table"


class _Budget:
    __slots__ = ("values", "bytes", "view_source")

    def __init__(self, values: int, size: int, view_source: Callable[[Any], Any] | None) -> None:
        self.values = values
        self.bytes = size
        self.view_source = view_source


def from_lua(value: Any, *, max_values: int = MAX_VALUES, max_bytes: int = MAX_BYTES,
             view_source: Callable[[Any], Any] | None = None) -> Any:
    """Convert a Lua value into plain Python (lists, dicts, numbers, strings, ndarrays).

    ``view_source`` (``LuaScript.view_source``) recognises the script's detection views: one
    comes back as a ``DetectionList`` of its detections (counted against the same bounds).

    Raises:
        ConversionError: The value cannot be converted exactly, or is too large (see the
            module docstring).
    """
    return _convert(value, _Budget(max_values, max_bytes, view_source), 0)


def _key_text(key: Any) -> str:
    return f"[{key!r}]" if not isinstance(key, str) else f".{key}"


def _convert(value: Any, budget: _Budget, depth: int) -> Any:
    budget.values -= 1
    if budget.values < 0:
        raise ConversionError(f"more than {MAX_VALUES} values (shared subtables count each time)")
    kind = type(value)
    if value is None or kind in _SCALARS:
        budget.bytes -= 8
        if budget.bytes < 0:
            raise ConversionError(f"more than {MAX_BYTES} bytes of data")
        return value
    if kind is str:
        budget.bytes -= len(value)
        if budget.bytes < 0:
            raise ConversionError(f"more than {MAX_BYTES} bytes of data")
        return value
    if kind is Tensor:
        return value.array
    lua_type = _lua_type(value)
    if lua_type != "table":
        if kind is bytes:
            raise ConversionError("a string that is not valid UTF-8")
        what = f"a Lua {lua_type}" if lua_type else f"a host object ({kind.__name__})"
        raise ConversionError(f"{what} cannot leave Lua: only numbers, strings, booleans, tables "
                              f"and tensors can")
    if depth >= MAX_DEPTH:
        raise ConversionError(f"tables nested deeper than {MAX_DEPTH} levels (cyclic?)")
    try:
        items = list(value.items())
    except UnicodeDecodeError:
        raise ConversionError("a string that is not valid UTF-8") from None
    if not items:
        source = budget.view_source(value) if budget.view_source is not None else None
        if source is not None:  # a detection view: its detections, as they were handed in
            budget.values -= len(source)
            if budget.values < 0:
                raise ConversionError(f"more than {MAX_VALUES} values (shared subtables count each time)")
            return DetectionList(source)
        return []
    if all(type(key) is int for key, _ in items):
        return _convert_list(items, budget, depth)
    return _convert_dict(items, budget, depth)


def _convert_list(items: list[tuple[Any, Any]], budget: _Budget, depth: int) -> list[Any]:
    count = len(items)
    ordered: list[Any] = [None] * count
    filled = [False] * count
    for key, item in items:
        if not 1 <= key <= count or filled[key - 1]:
            missing = next(i + 1 for i, done in enumerate(filled) if not done)
            keys = sorted(k for k, _ in items)
            raise ConversionError(
                f"a list with holes (integer keys {keys[:5]}{'...' if count > 5 else ''}, "
                f"index {missing} missing): use string keys for a map")
        filled[key - 1] = True
        try:
            ordered[key - 1] = _convert(item, budget, depth + 1)
        except ConversionError as error:
            error.path.append(f"[{key}]")
            raise
    return ordered


def _convert_dict(items: list[tuple[Any, Any]], budget: _Budget, depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in items:
        kind = type(key)
        if kind is str:
            text = key
        elif kind is int or kind is float:
            text = str(key)
        else:
            what = f"a Lua {_lua_type(key)}" if _lua_type(key) else kind.__name__
            raise ConversionError(f"a table key that is {what}: keys must be strings or numbers")
        if text in result:
            raise ConversionError(f"two keys with the same text {text!r} (a number key and a "
                                  f"string key)")
        try:
            result[text] = _convert(item, budget, depth + 1)
        except ConversionError as error:
            error.path.append(_key_text(key))
            raise
    return result
