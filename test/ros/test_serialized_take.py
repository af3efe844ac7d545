"""SerializedTaker: images taken by rcl into buffers the intake reuses, on real rclpy subscriptions and DDS."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_support import Probe, image_message
from sensor_msgs.msg import Image

from ros_vision_pipe.ros import serialized_take
from ros_vision_pipe.ros.image_intake import ImageReader, take_waiting
from ros_vision_pipe.ros.params import ImageFormat
from ros_vision_pipe.ros.serialized_take import SerializedTaker

RELIABLE = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)

pytestmark = pytest.mark.skipif(not serialized_take.available(), reason="librcl cannot be called with ctypes here")


def frames(count: int) -> list[np.ndarray]:
    """VGA bgr8 frames, each its own values (so a view overwritten by a later take would show)."""
    return [np.full((480, 640, 3), 10 * (index + 1), np.uint8) for index in range(count)]


def subscriptions(context, topic: str):
    node = rclpy.create_node("taker_under_test", context=context)
    ours = node.create_subscription(Image, topic, lambda _: None, RELIABLE, raw=True)
    theirs = node.create_subscription(Image, topic, lambda _: None, RELIABLE, raw=True)
    return node, ours, theirs


def publish(context, topic: str, images: list[np.ndarray]) -> None:
    publisher = Probe(context).publisher(Image, topic, reliable=True)  # returns once matched
    for index, image in enumerate(images):
        publisher.publish(image_message(image, "bgr8", "cam", 100 + index))


def take_all(take, subscription, count: int) -> list:
    """``count`` messages taken with ``take`` (waiting up to 10 s for them to arrive)."""
    taken: list = []
    deadline = time.monotonic() + 10
    while len(taken) < count and time.monotonic() < deadline:
        raw = take(subscription)
        if raw is None:
            time.sleep(0.005)
        else:
            taken.append(raw)
    assert len(taken) == count
    return taken


def test_a_taken_message_has_the_bytes_rclpy_takes_and_none_waiting_is_none(context) -> None:
    node, ours, theirs = subscriptions(context, "/taker/same")
    taker = SerializedTaker()
    images = frames(3)
    publish(context, "/taker/same", images)
    mine = take_all(lambda s: take_waiting(s, taker), ours, 3)
    rclpys = take_all(take_waiting, theirs, 3)
    assert [bytes(view) for view in mine] == rclpys
    assert all(isinstance(view, memoryview) and view.readonly for view in mine)
    assert take_waiting(ours, taker) is None  # nothing left
    node.destroy_subscription(ours)
    assert take_waiting(ours, taker) is None  # destroyed meanwhile: nothing, no crash


def test_a_buffer_is_taken_into_again_only_once_no_frame_holds_a_view_of_it(context) -> None:
    node, ours, _ = subscriptions(context, "/taker/reuse")
    taker = SerializedTaker()
    reader = ImageReader(False, ImageFormat.EIGHT_BIT)
    images = frames(12)
    publish(context, "/taker/reuse", images)
    held = []  # frames kept (as the node keeps its last frame, and a queued frame its image)
    for index in range(12):
        raw = take_all(lambda s: take_waiting(s, taker), ours, 1)[0]
        decoded = reader.read(raw).decode()
        del raw
        if index % 4 == 0:
            held.append((index, decoded.image))
        del decoded
        # every image held is still the frame it was, whatever was taken since
        assert all(np.array_equal(image, images[i]) for i, image in held), index
    assert taker.buffers <= len(held) + 1 + serialized_take.MAX_IDLE
    held.clear()
    taker.take(ours)  # nothing waiting; the idle buffers beyond MAX_IDLE are freed
    assert taker.buffers <= serialized_take.MAX_IDLE


def test_received_ns_is_when_the_message_reached_this_process(context) -> None:
    node, ours, _ = subscriptions(context, "/taker/when")
    taker = SerializedTaker()
    publisher = Probe(context).publisher(Image, "/taker/when", reliable=True)
    before = time.time_ns()
    publisher.publish(image_message(frames(1)[0], "bgr8", "cam", 1))
    time.sleep(0.5)  # the message waits: it was received well before it is taken
    taken_at = time.time_ns()
    assert take_all(lambda s: take_waiting(s, taker), ours, 1)
    assert before <= taker.received_ns <= taken_at - 100_000_000, (before, taker.received_ns, taken_at)
    node.destroy_node()
