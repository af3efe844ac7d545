"""Save the node's annotated ``debug_image`` of one real frame as a PNG (the screenshot of docs/ros.md).

Runs the real ``PipelineNode`` in this process on ``config/person_pose.lua`` (person -> pose, with
its skeleton), publishes frame 105 of the bundled cyclist clip over DDS, and writes the first
``/vision_pipeline/debug_image`` it receives:

    source tools/ros_env.sh && python tools/debug_image_screenshot.py [docs/images/debug_image.png]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ros_vision_pipe.frames import iter_frames  # noqa: E402
from ros_vision_pipe.ros.executors import MultiThreadedExecutor  # noqa: E402
from ros_vision_pipe.ros.node import PipelineNode  # noqa: E402

FRAME = 105


def main() -> int:
    """Run the node, send one frame, save its debug image."""
    out = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "images" / "debug_image.png")
    image = [f.image for f in iter_frames("sample:bikes", FRAME + 1)][FRAME]
    context = Context()
    rclpy.init(context=context)
    try:
        node = PipelineNode(context=context, parameter_overrides=[
            Parameter("config_file", value=str(REPO / "config" / "person_pose.lua")),
            Parameter("image_topics", value=["/camera/image_raw"]), Parameter("qos.reliable", value=True)])
        driver = rclpy.create_node("screenshot", context=context)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        received: list[Image] = []
        driver.create_subscription(Image, "/vision_pipeline/debug_image", received.append, qos)
        publisher = driver.create_publisher(Image, "/camera/image_raw", qos)
        executor = MultiThreadedExecutor(num_threads=node.executor_threads + 1, context=context)
        executor.add_node(node)
        executor.add_node(driver)
        import threading

        thread = threading.Thread(target=executor.spin, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while (publisher.get_subscription_count() == 0 or node.debug_image.publisher.get_subscription_count() == 0):
            if time.monotonic() > deadline:
                raise RuntimeError("no match")
            time.sleep(0.05)
        message = Image(height=image.shape[0], width=image.shape[1], encoding="bgr8", step=image.shape[1] * 3)
        message.header.frame_id = f"bikes_{FRAME}"
        message.data = image.tobytes()
        publisher.publish(message)
        while not received:
            if time.monotonic() > deadline:
                raise RuntimeError("no debug image")
            time.sleep(0.05)
        drawn = np.frombuffer(bytes(received[0].data), np.uint8).reshape(received[0].height, received[0].width, 3)
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), drawn)
        print(f"wrote {out} ({received[0].width}x{received[0].height}, header {received[0].header.frame_id!r})")
        node.close()
        executor.shutdown()
        node.destroy_node()
        driver.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
