"""The ``backend`` option of a model: parsed and validated with the configuration (no server needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ros_vision_pipe.engine.config import load_config
from ros_vision_pipe.engine.errors import ConfigError
from ros_vision_pipe.engine.remote.backend_spec import Fallback, SharedMemory, Transport


def config_with(write: Callable[[str, str], Path], scale_model: Path, backend: str) -> Path:
    write("scale.lua", "function preprocess(ctx) return nil end\nfunction postprocess(o, ctx) return {} end\n")
    return write("pipeline.lua", f"""
        return {{ mode = "single", models = {{
          {{ name = "scale", path = "{scale_model}", script = "scale.lua", backend = {backend} }} }} }}
    """)


def test_a_kserve_backend_table_becomes_the_model_specs_remote_backend(write, scale_model) -> None:
    path = config_with(write, scale_model, '{ kind = "kserve", url = "grpc://gpu-box:8001", model = "scaler", '
                                           'version = 2, timeout_ms = 200, fallback = "local", max_in_flight = 3 }')
    backend = load_config(path).spec.models[0].backend
    assert backend is not None
    assert (backend.url, backend.model, backend.version, backend.timeout_ms) == ("grpc://gpu-box:8001", "scaler", "2", 200)
    assert backend.transport is Transport.GRPC and backend.address == "gpu-box:8001"
    assert backend.fallback is Fallback.LOCAL and backend.max_in_flight == 3
    assert backend.shared_memory is SharedMemory.AUTO


def test_a_model_without_backend_or_with_kind_local_stays_local(write, scale_model) -> None:
    assert load_config(config_with(write, scale_model, '{ kind = "local" }')).spec.models[0].backend is None
    assert load_config(config_with(write, scale_model, "nil")).spec.models[0].backend is None


@pytest.mark.parametrize(("backend", "message"), [
    ('{ kind = "triton", url = "grpc://h:1", model = "m" }', r"backend.kind must be 'local' or 'kserve', got 'triton'"),
    ('{ kind = "kserve", url = "grpc://h", model = "m" }', r"backend.url must be 'grpc://host:port'.*got 'grpc://h'"),
    ('{ kind = "kserve", url = "https://h:1", model = "m" }', r"backend.url must be .*got 'https://h:1'"),
    ('{ kind = "kserve", url = "grpc://h:1" }', r"backend.model must be the served model's name, got None"),
    ('{ kind = "kserve", url = "grpc://h:1", model = "m", timeout_ms = 0 }', r"backend.timeout_ms must be an integer >= 1, got 0"),
    ('{ kind = "kserve", url = "grpc://h:1", model = "m", fallback = "cloud" }', r"backend.fallback must be one of \['none', 'local'\], got 'cloud'"),
    ('{ kind = "kserve", url = "grpc://h:1", model = "m", retries = 3 }', r"unknown backend option\(s\) \['retries'\]"),
    ('{ kind = "kserve", url = "grpc://h:1", model = "m", version = true }', r"backend.version must be a version string"),
    ('"grpc://h:1"', r"backend must be a table"),
    ('{ kind = "kserve", url = "http://h:1", http_url = "http://h:2", model = "m" }',
     r"backend.http_url must be 'http://host:port' next to a 'grpc://' url, got 'http://h:2'"),
    ('{ kind = "kserve", url = "grpc://h:1", http_url = "grpc://h:2", model = "m" }', r"backend.http_url must be"),
])
def test_a_bad_backend_option_is_rejected_naming_file_model_and_value(write, scale_model, backend, message) -> None:
    with pytest.raises(ConfigError, match=r"pipeline.lua: model 'scale': " + message):
        load_config(config_with(write, scale_model, backend))
