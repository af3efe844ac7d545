"""Fixtures shared by the whole suite: tiny real ONNX models and config writers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "config"
MODELS_DIR = REPO / "models"


def make_scale_model(path: Path, factor: float = 2.0, shape: tuple[object, ...] = ("N", 3)) -> Path:
    """Write a real ONNX model computing ``y = x * factor`` (float32) to ``path``."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [factor])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "scale", [x], [y], initializer=[k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def scale_model(tmp_path: Path) -> Path:
    """A real ONNX model ``y = 2x`` with input ``x`` float32 [N, 3]."""
    return make_scale_model(tmp_path / "scale.onnx")


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a (dedented) text file under tmp_path and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return _write
