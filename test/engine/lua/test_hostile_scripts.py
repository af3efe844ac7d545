"""A corpus of hostile Lua scripts: each one, run in its own child process, ends with a named error.

Every entry is a script a careless or adversarial user could write: runaway loops (also inside
pcall, coroutines, metamethods), recursion through coroutines, pcall/error/string/pattern abuse,
metatable tricks, memory bombs, and results that are huge, cyclic, shared or not plain data.
The child loads a real pipeline (the ``y = 2x`` ONNX model) whose script is the entry, runs one
frame and prints the outcome; the test asserts the child exited normally (never a signal) and
reports the expected error class and message.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import REPO, make_scale_model

CHILD = Path(__file__).with_name("hostile_child.py")
TIMEOUT_MS = 1000
MEMORY_MB = 32


@dataclass(frozen=True)
class Hostile:
    """One corpus entry: Lua ``code`` placed at ``where``, and the outcome it must have."""

    name: str
    where: str  # "post", "pre", "chunk" (model script's main chunk), "script" (whole script), "fusion"
    code: str
    error: str  # expected error class name ("" for a normal result)
    match: str  # regex the message (or the result's repr) must contain


T = f"time limit of {TIMEOUT_MS} ms exceeded"
M = f"memory limit of {MEMORY_MB} MiB exceeded"

_FEED = 'return vp.from_table({{1, 2, 3}}, "float32")'

CORPUS = [
    # runaway loops, however they are wrapped
    Hostile("loop_in_postprocess", "post", "while true do end", "ScriptTimeoutError",
            rf"m\.lua:\d+ in postprocess: {T} \(model 'm', frame 0\)"),
    Hostile("loop_in_preprocess", "pre", "local i = 0\nwhile true do i = i + 1 end", "ScriptTimeoutError",
            rf"m\.lua:\d+ in preprocess: {T} \(model 'm', frame 0\)"),
    Hostile("loop_in_main_chunk", "chunk", "repeat until false", "ScriptTimeoutError",
            rf"m\.lua:1 in main chunk: {T} \(model 'm'\)"),
    Hostile("loop_in_fusion", "fusion", "while true do end", "ScriptTimeoutError",
            r"p\.lua:\d+ in fusion: time limit of 200 ms exceeded \(model 'pipeline', frame 0\)"),
    Hostile("pcall_swallows_the_timeout", "post",
            "while true do pcall(function() while true do end end) end", "ScriptTimeoutError", T),
    Hostile("xpcall_handler_loops", "post",
            "xpcall(function() while true do end end, function() while true do end end)",
            "ScriptTimeoutError", T),
    Hostile("loop_in_coroutine_wrap", "post", "coroutine.wrap(function() while true do end end)()",
            "ScriptTimeoutError", T),
    Hostile("coroutine_resume_swallows_the_timeout", "post",
            "while true do coroutine.resume(coroutine.create(function() while true do end end)) end",
            "ScriptTimeoutError", T),
    Hostile("loop_in_tostring_metamethod", "post",
            "return { s = string.format('%s', setmetatable({}, {__tostring = function() while true do end end})) }",
            "ScriptTimeoutError", T),
    Hostile("loop_in_close_metamethod", "post",
            "local x <close> = setmetatable({}, {__close = function() while true do end end})",
            "ScriptTimeoutError", T),
    Hostile("loop_in_sort_comparator", "post",
            "local t = {3, 2, 1} table.sort(t, function(a, b) while true do end end)", "ScriptTimeoutError", T),
    Hostile("loop_in_gsub_callback", "post",
            "string.gsub('abc', '%w', function() while true do end end)", "ScriptTimeoutError", T),
    # recursion
    Hostile("nested_coroutine_wrap_recursion", "post",
            "local function f(n) if n == 0 then return 0 end\n"
            "return coroutine.wrap(function() return f(n - 1) end)() end\nf(200000)",
            "ScriptError", r"C stack overflow"),
    Hostile("coroutine_recursion_without_end", "post",
            "local function f() return coroutine.wrap(f)() end f()", "ScriptError", r"C stack overflow"),
    Hostile("tostring_calls_itself", "post",
            "local t = setmetatable({}, {__tostring = function(self) return tostring(self) end})\n"
            "return { s = tostring(t) }", "ScriptError", r"(C stack overflow|stack overflow)"),
    Hostile("plain_recursion", "post", "local function f() return 1 + f() end f()",
            "ScriptError|ScriptMemoryError|ScriptTimeoutError", r"(stack overflow|memory limit|time limit)"),
    # error objects
    Hostile("error_object_with_looping_tostring", "post",
            "error(setmetatable({}, {__tostring = function() while true do end end}))", "ScriptError",
            r"in postprocess: \(error object is a table value\)"),
    Hostile("error_with_nil", "post", "error(nil)", "ScriptError", r"error object is nil value"),
    # memory
    Hostile("string_rep_bomb", "post", "local s = string.rep('x', 1e9)", "ScriptMemoryError", M),
    Hostile("table_growth", "post", "local t = {} while true do t[#t + 1] = {string.rep('x', 1e6)} end",
            "ScriptMemoryError", M),
    Hostile("string_doubling", "post", "local s = 'x' while true do s = s .. s end", "ScriptMemoryError", M),
    Hostile("global_growth_in_main_chunk", "chunk", "G = {} for i = 1, 1e9 do G[i] = string.rep('y', 1e6) .. i end",
            "ScriptMemoryError", M),
    Hostile("tensors_kept_in_globals", "post",
            "KEEP = {} for i = 1, 100 do KEEP[i] = vp.zeros({1024, 1024}, 'float32') end",
            "ScriptMemoryError", rf"{M} \(arrays held by the script"),
    Hostile("crop_batch_of_a_huge_count", "post",
            "local b = vp.crop_batch(ctx.image, vp.zeros({100000, 4}), 256, 256)", "ScriptError",
            r"m\.lua:\d+ in postprocess: vp\.crop_batch: 100000 crops of 256 x 256 x 3 float32 would take "
            r"75000\.0 MiB, more than the 1024 MiB a batch may hold"),
    Hostile("crop_batch_over_the_memory_limit", "post",
            "local b = vp.crop_batch(ctx.image, vp.add(vp.zeros({1000, 4}), vp.from_table({0, 0, 4, 4})), 64, 64)",
            "ScriptMemoryError", rf"{M} \(arrays held by the script"),
    Hostile("map_points_with_a_transform_per_crop_too_few", "post",
            "local p = vp.map_points(vp.zeros({3, 5, 2}), vp.zeros({2, 4}))", "ScriptError",
            r"vp\.map_points: 2 transforms for 3 rows of points"),
    # patterns whose matching would run for minutes inside one C call
    Hostile("backtracking_find", "post", "string.find(string.rep('a', 30000), 'a*a*b')", "ScriptError",
            r"string\.find: pattern 'a\*a\*b' has 2 repetition item\(s\)"),
    Hostile("backtracking_match_method", "post", "local s = ('a'):rep(20000) return { s:match('.-.-.-b') }",
            "ScriptError", r"string\.match: pattern"),
    # metatable tricks and escapes
    Hostile("gc_metamethod", "post", "setmetatable({}, {__gc = function() while true do end end})",
            "ScriptError", r"setmetatable: __gc metamethods are not allowed"),
    Hostile("collector_stopped", "post", "collectgarbage('stop')", "ScriptError",
            r"collectgarbage: option 'stop' is not allowed"),
    Hostile("handle_metatable", "post", "getmetatable(vp.zeros({1})).__gc = nil", "ScriptError",
            r"attempt to index a boolean value"),
    Hostile("string_metatable", "post", "getmetatable('').__index = function() while true do end end",
            "ScriptError", r"attempt to index a boolean value"),
    Hostile("rawset_on_ctx", "post", "rawset(ctx, 'frame_id', 99)", "ScriptError",
            r"ctx is read-only \(tried to set frame_id\)"),
    Hostile("rawset_on_vp", "post", "rawset(vp, 'resize', print)", "ScriptError",
            r"vp is read-only \(tried to set resize\)"),
    Hostile("globals_metatable", "chunk", "setmetatable(_G, {__index = function() while true do end end})",
            "ScriptError", r"m\.lua:1 in main chunk: cannot change a protected metatable"),
    Hostile("global_debug_reserved", "chunk",
            "debug = setmetatable({}, {__index = function() while true do end end})",
            "ScriptError", r"m\.lua:1 in main chunk: the global name debug is reserved by the engine"),
    Hostile("global_debug_rawset", "chunk", "rawset(_G, 'debug', {})",
            "ScriptError", r"the global name debug is reserved by the engine"),
    Hostile("engine_functions_overwritten", "chunk",
            "type = 'ssd' setmetatable = nil xpcall = nil error = nil tostring = nil collectgarbage = nil",
            "", r"'m': \{'y'"),
    Hostile("engine_functions_overwritten_then_error", "script",
            "type = 'ssd' setmetatable = nil xpcall = nil error = nil tostring = nil\n"
            f"function preprocess(ctx) {_FEED} end\n"
            "function postprocess(o, ctx) local t = nil return t.x end",
            "ScriptError",
            r"^m\.lua:3 in postprocess: attempt to index a nil value \(local 't'\) \(model 'm', frame 0\)"),
    # results
    Hostile("shared_subtables", "post", "local t = {} for i = 1, 40 do t = {t, t} end return t",
            "ScriptResultError", r"more than 1000000 values"),
    Hostile("cyclic_result", "post", "local t = {} t.self = t return t", "ScriptResultError",
            r"nested deeper than 64 levels"),
    Hostile("key_collision", "post", "return {[1] = 'a', ['1'] = 'b'}", "ScriptResultError",
            r"two keys with the same text '1'"),
    Hostile("sparse_list", "post", "return { boxes = {[1] = 1, [3] = 3} }", "ScriptResultError",
            r"a list with holes .*index 2 missing.* \(at value\.boxes\)"),
    Hostile("table_key", "post", "return { [{}] = 1 }", "ScriptResultError",
            r"a table key that is a Lua table"),
    Hostile("host_method_in_result", "post", "return { at = ctx.image.at }", "ScriptResultError",
            r"a host object \(method\) cannot leave Lua"),
    Hostile("caught_exception_in_result", "post",
            "local ok, e = pcall(function() return ctx.image:dim(99) end) return { e = e }",
            "ScriptResultError", r"a host object \(\w+\) cannot leave Lua"),
    Hostile("function_in_result", "post", "return { f = print }", "ScriptResultError",
            r"a Lua function cannot leave Lua"),
    Hostile("invalid_utf8_string", "post", "return { s = '\\xff\\xfe' }", "ScriptResultError",
            r"not valid UTF-8"),
    Hostile("huge_shared_string", "post",
            "local s = string.rep('x', 1e6) local t = {} for i = 1, 100 do t[i] = s end return t",
            "ScriptResultError", r"more than 67108864 bytes"),
    Hostile("result_metamethods_never_run", "post",
            "return setmetatable({}, {__index = function() while true do end end})", "", r"'m': \[\]"),
    # binary chunks
    Hostile("binary_chunk_script", "binary", "", "ScriptError",
            r"m\.lua is a precompiled \(binary\) Lua chunk; only Lua source text is accepted"),
    Hostile("binary_chunk_require", "post", "require('evil')", "ScriptError",
            r"require 'evil': evil\.lua is a precompiled \(binary\) Lua chunk"),
]

_FEED = 'return vp.from_table({{1, 2, 3}}, "float32")'


def _model_script(entry: Hostile) -> bytes:
    if entry.where == "binary":
        return b"\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08xV\x00\x00\x00"
    if entry.where == "script":
        return entry.code.encode()
    pre = f"function preprocess(ctx)\n{entry.code if entry.where == 'pre' else _FEED}\nend\n"
    post = f"function postprocess(outputs, ctx)\n{entry.code if entry.where == 'post' else 'return {y = 1}'}\nend\n"
    chunk = f"{entry.code}\n" if entry.where == "chunk" else ""
    return (chunk + pre + post).encode()


def _config(entry: Hostile) -> str:
    fusion = ""
    if entry.where == "fusion":
        fusion = f"script_timeout_ms = 200,\n  fusion = function(results)\n{entry.code}\nend,"
    return (f'return {{\n  mode = "single",\n  {fusion}\n  models = {{ {{ name = "m", path = "scale.onnx", '
            f'script = "m.lua", script_timeout_ms = {TIMEOUT_MS}, script_memory_mb = {MEMORY_MB} }} }},\n}}\n')


def _run_child(folder: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    try:
        done = subprocess.run([sys.executable, str(CHILD), str(folder / "p.lua")], capture_output=True,
                              text=True, timeout=120, env=env, cwd=folder)
    except subprocess.TimeoutExpired:
        return {"returncode": "still running after 120 s", "outcome": {}, "stderr": ""}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    outcome = json.loads(lines[-1]) if lines else {}
    return {"returncode": done.returncode, "outcome": outcome, "stderr": done.stderr[-2000:]}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run every corpus entry in its own child process (a few at a time)."""
    root = tmp_path_factory.mktemp("hostile")
    model = make_scale_model(root / "scale.onnx")
    folders = {}
    for entry in CORPUS:
        folder = root / entry.name
        folder.mkdir()
        (folder / "scale.onnx").symlink_to(model)
        (folder / "m.lua").write_bytes(_model_script(entry))
        (folder / "evil.lua").write_bytes(b"\x1bLuaT\x00\x19\x93")
        (folder / "p.lua").write_text(_config(entry), encoding="utf-8")
        folders[entry.name] = folder
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(_run_child, folder) for name, folder in folders.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("entry", CORPUS, ids=[entry.name for entry in CORPUS])
def test_hostile_script_ends_with_a_named_error_never_a_signal(
    outcomes: dict[str, dict[str, Any]], entry: Hostile
) -> None:
    got = outcomes[entry.name]
    assert got["returncode"] == 0, f"child ended with {got['returncode']}: {got['stderr']}"
    outcome = got["outcome"]
    if entry.error:
        assert outcome.get("kind") == "error", outcome
        assert re.fullmatch(entry.error, outcome["type"]), outcome
        assert_matches(entry.match, outcome["message"])
    else:
        assert outcome.get("kind") == "ok", outcome
        assert_matches(entry.match, outcome["value"]["results"])


def assert_matches(pattern: str, text: str) -> None:
    """``re.search`` with a readable failure."""
    assert re.search(pattern, text), f"{pattern!r} not in {text!r}"
