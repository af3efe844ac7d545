"""A camera stand-in run as its own process: publishes bgr8 frames of a given size at a given rate.

Usage: ``python camera_publisher.py TOPIC WIDTH HEIGHT FPS SECONDS best_effort|reliable``.
Its DDS settings come from its environment (``FASTDDS_DEFAULT_PROFILES_FILE`` or not), as a camera
driver's do. Prints ``published N`` at the end; exits 0 (also on SIGINT/SIGTERM).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image


def main() -> int:
    """Publish frames for SECONDS seconds, once a subscriber is matched."""
    topic, width, height, fps, seconds, reliability = sys.argv[1:7]
    width, height, fps, seconds = int(width), int(height), float(fps), float(seconds)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    count = 0
    with rclpy.init():
        node = rclpy.create_node("camera_stand_in")
        publisher = node.create_publisher(Image, topic, qos)
        frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        message = Image(height=height, width=width, encoding="bgr8", step=width * 3)
        message.data = frame.tobytes()
        try:
            deadline = time.monotonic() + 30.0
            while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                message.header.stamp = node.get_clock().now().to_msg()
                message.header.frame_id = f"frame_{count}"
                publisher.publish(message)
                count += 1
                time.sleep(1.0 / fps)
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        print(f"published {count}", flush=True)
        node.destroy_node()
    return 0


if __name__ == "__main__":
    sys.exit(main())
