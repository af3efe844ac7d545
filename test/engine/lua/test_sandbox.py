"""The Lua sandbox: every escape to the host is closed, require stays in the config folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ros_vision_pipe.engine.errors import ScriptError
from ros_vision_pipe.engine.lua.handles import Tensor
from ros_vision_pipe.engine.lua.sandbox import LuaScript


def load(tmp_path: Path, source: str, name: str = "probe.lua") -> LuaScript:
    path = tmp_path / name
    path.write_text(source, encoding="utf-8")
    return LuaScript(path, owner="probe", search_dir=tmp_path)


def run(script: LuaScript, code: str, *args: object) -> object:
    function = script.runtime.eval(f"function(...) {code} end")
    return script.call(function, "probe", *args)


@pytest.mark.parametrize(
    "name",
    ["python", "io", "debug", "package", "load", "loadstring", "loadfile", "dofile", "jit",
     "module", "getfenv", "setfenv", "newproxy"],
)
def test_sandbox_removes_global_that_reaches_the_host(tmp_path: Path, name: str) -> None:
    script = load(tmp_path, "")
    assert run(script, f"return {name} == nil") is True


def test_sandbox_keeps_only_clock_and_time_of_os(tmp_path: Path) -> None:
    script = load(tmp_path, "")
    assert run(script, "return os.execute == nil and os.remove == nil and os.getenv == nil") is True
    assert isinstance(run(script, "return os.clock()"), float)


def test_sandbox_blocks_string_dump_bytecode_loading(tmp_path: Path) -> None:
    script = load(tmp_path, "")
    assert run(script, "return string.dump == nil") is True


def test_require_cannot_load_ffi_or_os_modules(tmp_path: Path) -> None:
    script = load(tmp_path, "")
    with pytest.raises(ScriptError, match="require: module 'ffi' not found"):
        run(script, "return require('ffi')")


def test_require_cannot_leave_the_config_folder(tmp_path: Path) -> None:
    (tmp_path.parent / "outside.lua").write_text("return 1", encoding="utf-8")
    script = load(tmp_path, "")
    with pytest.raises(ScriptError, match="invalid module name '../outside'"):
        run(script, "return require('../outside')")
    with pytest.raises(ScriptError, match="invalid module name '/etc/passwd'"):
        run(script, "return require('/etc/passwd')")


def test_require_loads_a_module_next_to_the_config_once(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "util.lua").write_text(
        "COUNT = (COUNT or 0) + 1\nreturn { twice = function(x) return 2 * x end }", encoding="utf-8"
    )
    script = load(tmp_path, "")
    assert run(script, "return require('common.util').twice(21)") == 42
    assert run(script, "require('common.util'); return COUNT") == 1


def test_tensor_handle_exposes_no_private_attribute(tmp_path: Path) -> None:
    script = load(tmp_path, "")
    tensor = Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ScriptError, match="cannot access attribute '__class__'"):
        run(script, "local t = ...; return t.__class__", tensor)


def test_tensor_handle_hides_the_ndarray_and_its_file_methods(tmp_path: Path) -> None:
    script = load(tmp_path, "")
    tensor = Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(ScriptError, match="cannot access attribute 'array'"):
        run(script, "local t = ...; return t.array.tofile", tensor)


def test_tensor_handle_gives_shape_and_one_based_elements(tmp_path: Path) -> None:
    script = load(tmp_path, "")
    tensor = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert run(script, "local t = ...; local a, b = t:shape(); return a, b, t:at(2, 3), t.ndim, t.dtype", tensor) == (
        2, 3, 5.0, 2, "float32")


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"Lua syntax error: broken\.lua:2: .*near '='.*model 'probe'"):
        load(tmp_path, "local a = 1\nlocal b = = 2\n", name="broken.lua")


def test_runtime_error_names_file_line_function_model_and_frame(tmp_path: Path) -> None:
    script = load(tmp_path, "function f(x)\n  local t = nil\n  return t.field\nend\n", name="det.lua")
    function = script.global_function("f")
    with pytest.raises(
        ScriptError,
        match=r"^det\.lua:3 in postprocess: attempt to index a nil value \(local 't'\) \(model 'probe', frame 37\)",
    ):
        script.call(function, "postprocess", 1, frame_id=37)
