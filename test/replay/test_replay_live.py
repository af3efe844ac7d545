"""Live replay over real DDS: the bag player, and the node fed by it (skipped without rclpy or messages)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy is not installed (source tools/ros_env.sh)")
pytest.importorskip("ros_vision_pipe.msg", reason="messages not built (bash tools/setup_env.sh)")

import rclpy  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from replay_support import COMPRESSED_TOPIC, PERSON_POSE, RAW_TOPIC, read_messages, stamp_ns  # noqa: E402
from ros_support import Spinner, wait_for  # noqa: E402

from ros_vision_pipe.frames import Frame  # noqa: E402
from ros_vision_pipe.replay.bag_replay import replay_bag  # noqa: E402
from ros_vision_pipe.replay.errors import PlayerError  # noqa: E402
from ros_vision_pipe.replay.image_bag import Storage  # noqa: E402
from ros_vision_pipe.replay.options import ReplayOptions  # noqa: E402
from ros_vision_pipe.ros.bag_player import BagPlayer, PlayOptions  # noqa: E402

#: A DDS domain of this test run's own (not the one of test/ros), derived from the pid.
DOMAIN_ID = 120 + os.getpid() % 100


@pytest.fixture
def context() -> Iterator[Context]:
    """An initialised rclpy Context of its own, shut down after the test."""
    ctx = Context()
    rclpy.init(context=ctx, domain_id=DOMAIN_ID)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)


class Inbox:
    """A node collecting every message of some topics (spun by ``ros_support.Spinner``)."""

    def __init__(self, context: Context) -> None:
        self.node = rclpy.create_node("replay_probe", context=context)
        self.messages: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def listen(self, message_type: Any, topic: str) -> list[Any]:
        inbox = self.messages.setdefault(topic, [])

        def store(msg: Any) -> None:
            with self._lock:
                inbox.append(msg)

        self.node.create_subscription(message_type, topic, store,
                                      QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        return inbox


def detections(result: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """(status, boxes, keypoints) of a ModelResult."""
    boxes = np.array([[d.x_min, d.y_min, d.x_max, d.y_max] for d in result.detections], np.float64).reshape(-1, 4)
    keypoints = np.array([[k.x, k.y] for d in result.detections for k in d.keypoints], np.float64).reshape(-1, 2)
    return int(result.status), boxes, keypoints


@pytest.fixture
def roomy_person_pose(tmp_path: Path) -> Path:
    """config/person_pose.lua (serial person -> pose) with room for every frame of the clip in the node."""
    config = PERSON_POSE.parent
    path = tmp_path / "person_pose_roomy.lua"
    path.write_text(
        "return { mode = 'serial', max_pending_frames = 64, models = {\n"
        f"  {{ name = 'person', path = {str(config.parent / 'models' / 'ssdlite_person.onnx')!r},"
        f" script = {str(config / 'scripts' / 'ssd_person.lua')!r} }},\n"
        f"  {{ name = 'pose', path = {str(config.parent / 'models' / 'pose_landmark_full.onnx')!r},"
        f" script = {str(config / 'scripts' / 'pose.lua')!r} }},\n"
        "} }\n", encoding="utf-8")
    return path


def test_live_replay_into_the_node_gives_the_offline_lossless_detections_for_every_frame(
        context: Context, make_bag: Callable[..., Path], roomy_person_pose: Path, tmp_path: Path) -> None:
    from ros_vision_pipe.msg import FusedResult

    from ros_vision_pipe.ros.node import PipelineNode

    bag = make_bag(Storage.MCAP, compressed=False)
    replay_bag(ReplayOptions(config=roomy_person_pose, bags=(bag,), output=tmp_path / "offline"))
    offline = {stamp_ns(m.header): m for _, _, m in read_messages(tmp_path / "offline", "/vision_pipeline/fused")}

    node = PipelineNode(context=context, parameter_overrides=[
        Parameter("config_file", value=str(roomy_person_pose)),  # max_pending_frames = 64: never refuses
        Parameter("image_topics", value=[RAW_TOPIC]),
        Parameter("qos.reliable", value=True),
        Parameter("qos.depth", value=50),
    ])
    inbox = Inbox(context)
    live = inbox.listen(FusedResult, "/vision_pipeline/fused")
    spinning = Spinner(context, [node, inbox.node], node.executor_threads + 1)
    try:
        options = PlayOptions(bags=(bag,), wait_for_subscribers=1, subscriber_timeout_s=20.0, start_delay_s=0.5,
                              depth=50)
        with BagPlayer(options, context=context) as player:
            played = player.play()
        assert played.published == {RAW_TOPIC: 30}
        assert wait_for(lambda: len(live) >= 30, timeout=60.0), (
            f"{len(live)} results of 30; node counters: {node.diagnostics.totals()}")
    finally:
        spinning.stop()

    assert sorted(stamp_ns(m.header) for m in live) == sorted(offline)
    for message in live:
        reference = offline[stamp_ns(message.header)]
        assert message.frame_index == reference.frame_index and message.source == RAW_TOPIC
        assert [r.model for r in message.results] == ["person", "pose"]
        for got, expected in zip(message.results, reference.results, strict=True):
            status, boxes, keypoints = detections(got)
            status_ref, boxes_ref, keypoints_ref = detections(expected)
            assert status == status_ref, (got.model, message.frame_index)
            np.testing.assert_allclose(boxes, boxes_ref, atol=1e-2)
            np.testing.assert_allclose(keypoints, keypoints_ref, atol=0.1)
    assert sum(len(r.detections) for m in live for r in m.results if r.model == "pose") > 0


def test_player_publishes_a_ros1_bag_as_ros2_images_on_remapped_topics(
        context: Context, make_bag: Callable[..., Path], clip: list[Frame]) -> None:
    from sensor_msgs.msg import CompressedImage, Image

    bag = make_bag(Storage.ROS1, frames=5)
    inbox = Inbox(context)
    raw = inbox.listen(Image, "/replayed/image_raw")
    jpeg = inbox.listen(CompressedImage, "/replayed/image_raw/compressed")
    spinning = Spinner(context, [inbox.node], 2)
    try:
        remap = ((RAW_TOPIC, "/replayed/image_raw"), (COMPRESSED_TOPIC, "/replayed/image_raw/compressed"))
        options = PlayOptions(bags=(bag,), remap=remap, rate=5.0, wait_for_subscribers=1, start_delay_s=0.3)
        with BagPlayer(options, context=context) as player:
            report = player.play()
        assert report.total == 10
        assert wait_for(lambda: len(raw) == 5 and len(jpeg) == 5, timeout=20.0)
    finally:
        spinning.stop()
    for index, message in enumerate(raw):
        assert np.array_equal(np.asarray(message.data, np.uint8).reshape(272, 640, 3), clip[index].image)
        assert (message.header.stamp.sec, message.header.frame_id) == (1_704_067_200, "camera")
    assert all(m.format.startswith("bgr8; jpeg") for m in jpeg)


def test_player_names_the_topics_without_subscribers_when_none_come(
        context: Context, make_bag: Callable[..., Path]) -> None:
    bag = make_bag(frames=1, compressed=False)
    options = PlayOptions(bags=(bag,), wait_for_subscribers=1, subscriber_timeout_s=0.3)
    with BagPlayer(options, context=context) as player, pytest.raises(
            PlayerError, match=rf"waited 0.3 s for 1 subscriber\(s\); subscribers now: \{{'{RAW_TOPIC}': 0\}}"):
        player.play()
