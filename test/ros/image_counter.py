"""A camera-frame receiver run as its own process, with the node's Fast DDS default.

Usage: ``python image_counter.py TOPIC best_effort|reliable``. Before ``rclpy.init`` it calls the
node's ``use_large_data_profile()`` (what ``pipeline_node``'s ``main()`` does), so its transports
are the node's defaults for the environment it was given. Counts ``sensor_msgs/Image`` frames
until its stdin closes, then prints ``received N profile PATH`` (PATH: the profile in force, or
``-``) and exits 0.
"""

from __future__ import annotations

import os
import sys
import threading

import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from ros_vision_pipe.ros.node import use_large_data_profile


def main() -> int:
    """Count frames on TOPIC until stdin closes."""
    topic, reliability = sys.argv[1:3]
    use_large_data_profile()
    received: set[str] = set()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    with rclpy.init():
        node = rclpy.create_node("image_counter")
        node.create_subscription(Image, topic, lambda msg: received.add(msg.header.frame_id), qos)
        while not stop.is_set():
            rclpy.spin_once(node, timeout_sec=0.05)
        node.destroy_node()
    print(f"received {len(received)} profile {os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE') or '-'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
