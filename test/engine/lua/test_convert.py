"""Lua -> Python conversion of script results: exact, bounded, plain data only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.lua.convert import ConversionError, from_lua
from ros_vision_pipe.engine.lua.handles import Tensor
from ros_vision_pipe.engine.lua.sandbox import LuaScript


@pytest.fixture
def lua(tmp_path: Path) -> Any:
    """``lua(code, *args)``: run ``code`` as a function body in a sandboxed runtime, return its value."""
    path = tmp_path / "probe.lua"
    path.write_text("", encoding="utf-8")
    script = LuaScript(path, owner="probe", search_dir=tmp_path)

    def run(code: str, *args: Any) -> Any:
        return script.call(script.runtime.eval(f"function(...) {code} end"), "probe", *args)

    return run


def test_lists_dicts_and_numbers_convert_exactly(lua: Any) -> None:
    value = lua("return { list = {1, 2.5, 'x', true}, map = { a = 1 }, empty = {}, half = 7 / 2, "
                "whole = 10 / 2, int = 7 // 2, mixed = { 1, 2, name = 'n' } }")
    assert from_lua(value) == {"list": [1, 2.5, "x", True], "map": {"a": 1}, "empty": [], "half": 3.5,
                               "whole": 5.0, "int": 3, "mixed": {"1": 1, "2": 2, "name": "n"}}
    converted = from_lua(value)
    assert type(converted["whole"]) is float and type(converted["int"]) is int


def test_a_tensor_handle_becomes_its_array(lua: Any) -> None:
    array = np.arange(3, dtype=np.float32)
    assert from_lua(lua("return { t = ... }", Tensor(array)))["t"] is array


@pytest.mark.parametrize(("code", "message"), [
    ("return {[1] = 'a', ['1'] = 'b'}", r"two keys with the same text '1'"),
    ("return { a = { b = {[1] = 1, [3] = 3} } }", r"a list with holes .*index 2 missing.*\(at value\.a\.b\)"),
    ("return {[0] = 'zero', [1] = 'one'}", r"a list with holes"),
    ("return { [true] = 1 }", r"a table key that is bool"),
    ("return { f = function() end }",
     r"a Lua function cannot leave Lua: only numbers, strings, booleans, tables and tensors can \(at value\.f\)"),
    ("return { {}, { coroutine.create(print) } }",
     r"a Lua (thread|function) cannot leave Lua: .* \(at value\[2\]\[1\]\)"),
    ("local t = {} for i = 1, 25 do t = {t, t} end return t", r"more than 1000000 values"),
    ("local t = {} t[1] = t return t", r"nested deeper than 64 levels"),
])
def test_a_result_that_cannot_be_converted_exactly_is_a_named_error(lua: Any, code: str, message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        from_lua(lua(code))


def test_the_byte_limit_counts_a_shared_string_each_time(lua: Any) -> None:
    value = lua("local s = string.rep('x', 1000) local t = {} for i = 1, 100 do t[i] = s end return t")
    assert len(from_lua(value)) == 100
    with pytest.raises(ConversionError, match="more than"):
        from_lua(value, max_bytes=50_000)


def test_conversion_never_runs_a_metamethod_of_the_script(lua: Any) -> None:
    value = lua("return setmetatable({ a = 1 }, { __index = function() while true do end end, "
                "__pairs = function() while true do end end })")
    assert from_lua(value) == {"a": 1}
