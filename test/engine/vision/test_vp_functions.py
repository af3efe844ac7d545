"""Tests of the ``vp`` registry: every op registered, documented and failing as a ``ValueError``."""

from __future__ import annotations

from ros_vision_pipe.engine.vision import VisionOpError


def test_every_vp_function_is_registered_documented_and_has_a_lua_example() -> None:
    from pathlib import Path

    from ros_vision_pipe.engine.vision import VP_FUNCTIONS

    doc = (Path(__file__).resolve().parents[3] / "docs" / "lua_api.md").read_text(encoding="utf-8")
    for name, function in VP_FUNCTIONS.items():
        assert f"vp.{name}(" in doc, name
        assert "Lua::" in (function.__doc__ or ""), name


def test_vision_op_errors_are_value_errors_for_the_bridge() -> None:
    assert issubclass(VisionOpError, ValueError)
