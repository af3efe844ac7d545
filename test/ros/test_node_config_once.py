"""The node executes its pipeline configuration once at start (names, models and pipeline from one run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rclpy.parameter import Parameter

from ros_vision_pipe.engine import config as config_module
from ros_vision_pipe.engine import reload as reload_module
from ros_vision_pipe.ros.node import PipelineNode


def test_starting_the_node_executes_the_configuration_once(
    context: Any, person_pose_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Path] = []
    original = config_module.load_config

    def counting(path: Any) -> Any:
        loads.append(Path(path))
        return original(path)

    monkeypatch.setattr(config_module, "load_config", counting)
    monkeypatch.setattr(reload_module, "load_config", counting)
    node = PipelineNode(context=context, parameter_overrides=[Parameter("config_file", value=str(person_pose_config))])
    try:
        assert node.model_names == ("person", "pose")
        assert loads == [person_pose_config]
    finally:
        node.destroy_node()
