"""Camera-size images over Fast DDS on one machine: what a subscriber receives, by QoS and profile.

Runs a camera stand-in (test/ros/camera_publisher.py) and a counting subscriber as two processes
for each (image size, publisher QoS, subscriber QoS, Fast DDS profile) and prints a table of
frames received / published. "profile" = config/fastdds_large_data.xml in both processes
(FASTDDS_DEFAULT_PROFILES_FILE), "default" = Fast DDS's built-in transports. docs/ros.md has the
numbers and the choice of the node's default QoS made from them.

    source tools/ros_env.sh && python bench/large_images.py [--seconds 2] [--fps 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "config" / "fastdds_large_data.xml"
PUBLISHER = REPO / "test" / "ros" / "camera_publisher.py"
COUNTER = r"""
import sys, time
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
topic, seconds, reliability = sys.argv[1], float(sys.argv[2]), sys.argv[3]
count = 0
def on_image(msg):
    global count
    count += 1
with rclpy.init():
    node = rclpy.create_node("bench_counter")
    policy = ReliabilityPolicy.RELIABLE if reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
    node.create_subscription(Image, topic, on_image, QoSProfile(depth=5, reliability=policy))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
print(count, flush=True)
"""
SIZES = {"VGA 640x480": (640, 480), "720p 1280x720": (1280, 720), "1080p 1920x1080": (1920, 1080)}
QOS = [("best_effort", "best_effort"), ("reliable", "best_effort"), ("reliable", "reliable")]


def environment(profile: bool) -> dict[str, str]:
    """This shell's environment with or without the large-data profile."""
    env = dict(os.environ)
    env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
    env.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    if profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(PROFILE)
    return env


def measure(width: int, height: int, pub: str, sub: str, profile: bool, seconds: float, fps: float) -> tuple[int, int]:
    """(received, published) for one configuration."""
    env = environment(profile)
    topic = f"/bench_cam_{width}"
    counter = subprocess.Popen([sys.executable, "-c", COUNTER, topic, str(seconds + 6), sub], env=env,
                               stdout=subprocess.PIPE, text=True)
    publisher = subprocess.run([sys.executable, str(PUBLISHER), topic, str(width), str(height), str(fps),
                                str(seconds), pub], env=env, capture_output=True, text=True, timeout=60)
    out, _ = counter.communicate(timeout=60)
    published = int(publisher.stdout.split()[-1])
    return int(out.split()[-1]), published


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    print("| image (bgr8) | publisher | subscriber | default transports | large-data profile |")
    print("|---|---|---|---|---|")
    for name, (width, height) in SIZES.items():
        for pub, sub in QOS:
            cells = []
            for profile in (False, True):
                received, published = measure(width, height, pub, sub, profile, args.seconds, args.fps)
                cells.append(f"{received}/{published} ({100 * received / max(published, 1):.0f} %)")
            print(f"| {name} | {pub} | {sub} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    main()
