"""Another robot node, run as its own process: prints each FusedResult it receives as a JSON line.

Usage: ``python listener.py TOPIC COUNT`` (exits after COUNT messages, or on SIGINT/SIGTERM).
"""

from __future__ import annotations

import json
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_vision_pipe.msg import FusedResult


def summary(msg: FusedResult) -> dict[str, object]:
    """The fields the test checks."""
    return {
        "frame_index": msg.frame_index,
        "frame_id": msg.header.frame_id,
        "stamp": [msg.header.stamp.sec, msg.header.stamp.nanosec],
        "source": msg.source,
        "results": [
            {"model": r.model, "status": r.status,
             "boxes": [[d.x_min, d.y_min, d.x_max, d.y_max, d.score] for d in r.detections]}
            for r in msg.results
        ],
    }


def main() -> int:
    """Subscribe, print, exit after COUNT messages."""
    topic, count = sys.argv[1], int(sys.argv[2])
    received: list[int] = []
    with rclpy.init():
        node = rclpy.create_node("another_robot_node")

        def on_result(msg: FusedResult) -> None:
            print(json.dumps(summary(msg)), flush=True)
            received.append(msg.frame_index)

        node.create_subscription(FusedResult, topic, on_result,
                                 QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        try:
            while len(received) < count:
                rclpy.spin_once(node, timeout_sec=0.1)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        node.destroy_node()
    return 0


if __name__ == "__main__":
    sys.exit(main())
