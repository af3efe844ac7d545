"""The ROS-free conversion code lives in ros_vision_pipe.messages; replay imports no rclpy; one of each helper."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from ros_vision_pipe.engine.records import ResultStatus
from ros_vision_pipe.engine.vision.boxes import pairwise_iou
from ros_vision_pipe.messages import result_mapping
from ros_vision_pipe.messages.result_mapping import STATUS_BY_CODE, STATUS_CODES, status_name


def test_the_old_module_paths_are_the_same_modules() -> None:
    import ros_vision_pipe.image_encoding
    import ros_vision_pipe.messages.image_encoding
    import ros_vision_pipe.replay.typestore
    import ros_vision_pipe.result_mapping
    from ros_vision_pipe.messages import typestore

    assert ros_vision_pipe.result_mapping is result_mapping
    assert ros_vision_pipe.image_encoding is ros_vision_pipe.messages.image_encoding
    assert ros_vision_pipe.replay.typestore is typestore


def test_replay_and_the_message_conversions_import_no_rclpy() -> None:
    code = ("import sys\n"
            "import ros_vision_pipe.messages.image_encoding, ros_vision_pipe.messages.result_mapping\n"
            "import ros_vision_pipe.messages.typestore, ros_vision_pipe.messages.vision_msgs_mapping\n"
            "import ros_vision_pipe.replay.cli, ros_vision_pipe.replay.bag_replay, ros_vision_pipe.replay.compare\n"
            "import ros_vision_pipe.replay.realtime, ros_vision_pipe.replay.offline, ros_vision_pipe.replay.result_bag\n"
            "print(sorted(m for m in sys.modules if m.startswith(('rclpy', 'ros_vision_pipe.ros'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_one_status_vocabulary_maps_codes_both_ways() -> None:
    assert {STATUS_BY_CODE[code]: code for code in STATUS_BY_CODE} == STATUS_CODES
    assert [status_name(code) for code in (0, 1, 2, 3)] == ["ok", "skipped", "error", "reused"]
    assert status_name(9) == "9" and STATUS_BY_CODE[2] is ResultStatus.ERROR


def test_the_one_iou_handles_empty_sets_and_disjoint_boxes() -> None:
    a = np.array([[0, 0, 2, 2], [10, 10, 11, 11]], np.float32)
    b = np.array([[1, 1, 3, 3]], np.float64)
    assert pairwise_iou(a, b).round(4).tolist() == [[round(1 / 7, 4)], [0.0]]
    assert pairwise_iou(a, np.zeros((0, 4))).shape == (2, 0)
    assert pairwise_iou(np.zeros((0, 4)), b).shape == (0, 1)
