"""Fixtures of the remote-model tests: a real MLServer (KServe v2) on 127.0.0.1, remote config variants."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kserve_server import MLServerProcess, ServedModel, server_available
from support import CONFIG_DIR, MODELS_DIR, make_scale_model

from ros_vision_pipe.frames import Frame, iter_frames

if not server_available() or importlib.util.find_spec("tritonclient") is None:
    pytest.skip("the KServe test server venv (.venv-kserve, tools/setup_env.sh) or tritonclient is missing",
                allow_module_level=True)

#: Frames of the cyclist clip with and without people (indices into the first 106 frames).
CLIP_FRAMES = (0, 30, 31, 32, 60, 100, 104, 105)


@pytest.fixture(scope="session")
def scale_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small real ONNX models: ``scale`` (y = 2x, [N, 3]) and ``scale4`` (same, [N, 4])."""
    folder = tmp_path_factory.mktemp("scale_models")
    return {"scale": make_scale_model(folder / "scale.onnx"),
            "scale4": make_scale_model(folder / "scale4.onnx", shape=("N", 4))}


def served_models(scale_files: dict[str, Path]) -> list[ServedModel]:
    return [
        ServedModel("ssdlite_person", MODELS_DIR / "ssdlite_person.onnx", version="1"),
        ServedModel("scale", scale_files["scale"], version="1"),
        ServedModel("slow_scale", scale_files["scale"], version="1", delay_ms=300),
    ]


@pytest.fixture(scope="session")
def kserve_server(tmp_path_factory: pytest.TempPathFactory, scale_files: dict[str, Path]) -> Iterator[MLServerProcess]:
    """One MLServer for the session (nobody kills it), serving the person detector and the scale models."""
    server = MLServerProcess(tmp_path_factory.mktemp("mlserver"), served_models(scale_files))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_server(tmp_path: Path, scale_files: dict[str, Path]) -> Iterator[MLServerProcess]:
    """An MLServer of the test's own (started), which the test may kill and restart."""
    server = MLServerProcess(tmp_path / "mlserver", served_models(scale_files))
    server.start()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def clip() -> list[Frame]:
    """The frames ``CLIP_FRAMES`` of the cyclist clip."""
    frames = list(iter_frames("sample:bikes", limit=max(CLIP_FRAMES) + 1))
    return [frames[i] for i in CLIP_FRAMES]


@pytest.fixture
def remote_variant(tmp_path: Path) -> Callable[[str, str], Path]:
    """``remote_variant(config_name, backend)``: the example config with its person model on ``backend``.

    The variant is written next to links to config/scripts and models/, so its relative paths resolve.
    """
    (tmp_path / "models").symlink_to(MODELS_DIR)
    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "scripts").symlink_to(CONFIG_DIR / "scripts")

    def write(name: str, backend: str) -> Path:
        text = (CONFIG_DIR / name).read_text()
        text, count = re.subn(r'(script = "scripts/ssd_person.lua")', rf"\1, backend = {backend}", text)
        assert count == 1, f"{name} has no person model to make remote"
        path = tmp_path / "config" / f"remote_{name}"
        path.write_text(text)
        return path

    return write
