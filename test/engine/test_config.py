"""Pipeline configuration files: validation errors name the file, the model and the bad value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ros_vision_pipe.engine.config import load_config
from ros_vision_pipe.engine.errors import ConfigError, ModelLoadError, ScriptError
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import Mode, OverflowPolicy

SCRIPT = """
function preprocess(ctx) return vp.from_table({{1, 2, 3}}, "float32") end
function postprocess(outputs, ctx) return { y = outputs.y:at(1, 1) } end
"""

Writer = Callable[[str, str], Path]


def model_entry(name: str, extra: str = "") -> str:
    return f'{{ name = "{name}", path = "scale.onnx", script = "m.lua"{extra} }}'


def test_config_reads_mode_models_and_resolves_paths_relative_to_the_file(
    write: Writer, scale_model: Path
) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "serial", models = {{ {model_entry("a")}, {model_entry("b")} }} }}')
    spec = load_config(path).spec
    assert spec.mode is Mode.SERIAL
    assert [m.name for m in spec.models] == ["a", "b"]
    assert spec.models[0].model_path == scale_model
    assert spec.models[0].providers == ("CPUExecutionProvider",)


def test_config_may_set_globals_instead_of_returning_a_table(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'mode = "single"\nmodels = {{ {model_entry("a")} }}\n')
    assert load_config(path).spec.mode is Mode.SINGLE


def test_config_rejects_an_unknown_mode_naming_file_and_value(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "paralel", models = {{ {model_entry("a")} }} }}')
    with pytest.raises(ConfigError, match=r"p\.lua: unknown mode 'paralel'; expected one of"):
        load_config(path)


def test_config_rejects_duplicate_model_names(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "serial", models = {{ {model_entry("a")}, {model_entry("a")} }} }}')
    with pytest.raises(ConfigError, match=r"p\.lua: duplicate model name\(s\) \['a'\]"):
        load_config(path)


def test_config_rejects_a_misspelt_model_option_naming_the_model(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "single", models = {{ {model_entry("det", ", intra_threads = 2")} }} }}')
    with pytest.raises(ConfigError, match=r"p\.lua: model 'det': unknown option\(s\) \['intra_threads'\]"):
        load_config(path)


def test_config_rejects_a_bad_option_value_naming_it(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "parallel_async", models = {{ {model_entry("det", ", frame_interval = 0")} }} }}')
    with pytest.raises(ConfigError, match=r"model 'det': frame_interval must be an integer >= 1, got 0"):
        load_config(path)


def test_config_rejects_async_options_in_a_synchronous_mode(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "serial", models = {{ {model_entry("det", ", frame_interval = 5")} }} }}')
    with pytest.raises(ConfigError, match="frame_interval applies to parallel_async only"):
        load_config(path)


def test_config_reads_async_queue_policy(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write(
        "p.lua",
        f'return {{ mode = "parallel_async", models = {{ {model_entry("a")}, '
        f'{model_entry("b", ", frame_interval = 10, max_queue_size = 1, drop_on_overflow = false")} }} }}',
    )
    spec = load_config(path).spec
    assert spec.models[1].frame_interval == 10
    assert spec.models[1].overflow is OverflowPolicy.BLOCK


def test_single_mode_takes_exactly_one_model(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "single", models = {{ {model_entry("a")}, {model_entry("b")} }} }}')
    with pytest.raises(ConfigError, match="mode 'single' takes exactly one model, got 2"):
        load_config(path)


def test_aggregator_is_rejected_outside_parallel_async(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write(
        "p.lua",
        f'return {{ mode = "serial", models = {{ {model_entry("a")} }}, aggregator = function(r) return r end }}',
    )
    with pytest.raises(ConfigError, match="aggregator applies to parallel_async only"):
        load_config(path)


def test_unknown_top_level_key_is_rejected(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", f'return {{ mode = "single", modles = {{}}, models = {{ {model_entry("a")} }} }}')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['modles'\]"):
        load_config(path)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pipeline configuration not found: .*nope.lua"):
        load_config(tmp_path / "nope.lua")


def test_config_with_lua_syntax_error_names_file_and_line(write: Writer) -> None:
    path = write("p.lua", 'return { mode = "single",\n models = = {} }')
    with pytest.raises(ScriptError, match=r"p\.lua:2: .*model 'pipeline'"):
        load_config(path)


def test_missing_onnx_file_names_the_model_and_path(write: Writer) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", 'return { mode = "single", models = { { name = "det", path = "gone.onnx", script = "m.lua" } } }')
    with pytest.raises(ModelLoadError, match=r"ONNX file not found: .*gone\.onnx.* \(model 'det'\)"):
        Pipeline.from_config(path)


def test_corrupt_onnx_file_names_the_model_and_path(write: Writer) -> None:
    write("m.lua", SCRIPT)
    write("bad.onnx", "this is not a protobuf")
    path = write("p.lua", 'return { mode = "single", models = { { name = "det", path = "bad.onnx", script = "m.lua" } } }')
    with pytest.raises(ModelLoadError, match=r"cannot load ONNX model \(model 'det', file '.*bad\.onnx'\)"):
        Pipeline.from_config(path)


def test_unavailable_execution_provider_is_named(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    entry = model_entry("det", ', providers = { "tensorrt" }')
    path = write("p.lua", f'return {{ mode = "single", models = {{ {entry} }} }}')
    with pytest.raises(ModelLoadError, match=r"TensorrtExecutionProvider.*not available \(model 'det'"):
        Pipeline.from_config(path)


def test_script_without_postprocess_is_rejected(write: Writer, scale_model: Path) -> None:
    write("m.lua", "function preprocess(ctx) return nil end")
    path = write("p.lua", f'return {{ mode = "single", models = {{ {model_entry("det")} }} }}')
    with pytest.raises(ScriptError, match=r"m\.lua does not define a global function postprocess"):
        Pipeline.from_config(path)
