"""Fixtures shared by the whole suite: tiny real ONNX models and config writers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from support import make_scale_model


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
