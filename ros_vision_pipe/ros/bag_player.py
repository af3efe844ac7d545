"""Live replay over DDS: publish a bag's image topics at recorded timing, with rclpy.

For integration tests and for users without rosbag2 tooling; real ROS users can equally run
``ros2 bag play`` (see ``docs/replay.md``). rclpy is imported by this module only.

ROS 2 bags are published as stored (``Publisher.publish`` of the serialized CDR bytes: no
deserialization, exactly the recorded message); ROS 1 bags are converted to ROS 2 messages.
Timing follows ``Timeline`` (recorded deltas / ``rate``; loops and jumps clamped), so a bag
whose clock loops or jumps plays on.

Example (in-process, own context, as the tests do)::

    with BagPlayer(PlayOptions(bags=(Path("run_42"),), wait_for_subscribers=1), context=ctx) as player:
        report = player.play()
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ros_vision_pipe.replay.bag_reader import ImageBagReader, ImageKind
from ros_vision_pipe.replay.errors import PlayerError, ReplayError, ReplayOptionsError
from ros_vision_pipe.replay.progress import NoProgress, Progress
from ros_vision_pipe.replay.timeline import Clock, Pacer, Timeline, TimingAnomalies

try:
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
except ImportError as _error:  # pragma: no cover - exercised without ROS
    raise PlayerError(
        f"live replay needs rclpy and sensor_msgs (source tools/ros_env.sh or a ROS 2 setup): {_error}") from _error

NODE_NAME = "bag_player"


@dataclass(frozen=True)
class PlayOptions:
    """What to publish and how.

    Attributes:
        bags: A rosbag2 folder / ``.mcap`` / ``.db3`` file, or one or more ROS 1 ``.bag`` files.
        topics: Image topics to publish; every image topic of the bag when None.
        remap: ``(bag topic, published topic)`` pairs.
        rate: Speed factor (1.0 = recorded rate).
        max_gap_s: Longest recorded gap waited for, seconds.
        reliable: Publish RELIABLE (matches both reliable and best-effort subscribers) or BEST_EFFORT.
        depth: History depth of the publishers.
        wait_for_subscribers: Before the first message, wait until every topic has this many subscribers.
        subscriber_timeout_s: Longest wait for them, seconds.
        start_delay_s: Extra wait after the subscribers matched (lets them finish discovery).
        max_messages: Stop after this many messages (all topics together).
    """

    bags: tuple[Path, ...]
    topics: tuple[str, ...] | None = None
    remap: tuple[tuple[str, str], ...] = ()
    rate: float = 1.0
    max_gap_s: float = 1.0
    reliable: bool = True
    depth: int = 10
    wait_for_subscribers: int = 0
    subscriber_timeout_s: float = 10.0
    start_delay_s: float = 0.0
    max_messages: int | None = None

    def validated(self) -> PlayOptions:
        """These options, checked once.

        Raises:
            ReplayOptionsError: Naming the option and the value.
        """
        if not self.bags:
            raise ReplayOptionsError("no input bag given")
        if not self.rate > 0:
            raise ReplayOptionsError(f"rate must be > 0, got {self.rate!r}")
        if not self.max_gap_s > 0:
            raise ReplayOptionsError(f"max_gap_s must be > 0, got {self.max_gap_s!r}")
        if self.depth < 1:
            raise ReplayOptionsError(f"depth must be >= 1, got {self.depth!r}")
        if self.wait_for_subscribers < 0:
            raise ReplayOptionsError(f"wait_for_subscribers must be >= 0, got {self.wait_for_subscribers!r}")
        for source, target in self.remap:
            if not source.startswith("/") or not target.startswith("/"):
                raise ReplayOptionsError(f"remap needs absolute topics, got {source!r} -> {target!r}")
        return self


@dataclass(frozen=True)
class PlayReport:
    """What the player published.

    Attributes:
        published: Published topic -> messages.
        wall_s: Seconds from the first to the last message.
        max_lateness_s: Largest delay of a message behind its schedule.
        timing: Loops, jumps and out-of-order stamps met.
        skipped: Messages not published (a ROS 1 message that did not convert), with the reason.
    """

    published: dict[str, int]
    wall_s: float
    max_lateness_s: float
    timing: TimingAnomalies
    skipped: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Messages published on all topics."""
        return sum(self.published.values())


class BagPlayer:
    """Publishes a bag's image topics at recorded timing from a node of its own.

    Args:
        options: What to play.
        context: rclpy context (initialised); the global one when None.
        clock: Time source of the pacing (the system clock by default).
        progress: Told about every message.

    Raises:
        ReplayOptionsError: An option is invalid.
        BagOpenError, TopicNotFoundError, TopicTypeError: The bag or a topic cannot be used.
    """

    def __init__(self, options: PlayOptions, *, context: Context | None = None, clock: Clock | None = None,
                 progress: Progress | None = None) -> None:
        """Open the bag and create the node and one publisher per topic."""
        self.options = options.validated()
        self._clock = clock
        self._progress = progress or NoProgress()
        self.bag = ImageBagReader(self.options.bags, self.options.topics)
        try:
            self.node: Node = rclpy.create_node(NODE_NAME, context=context)
        except BaseException:
            self.bag.close()
            raise
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=self.options.depth,
            reliability=ReliabilityPolicy.RELIABLE if self.options.reliable else ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE)
        remap = dict(self.options.remap)
        self.topics = {topic.name: remap.get(topic.name, topic.name) for topic in self.bag.topics}
        self._publishers: dict[str, Any] = {
            topic.name: self.node.create_publisher(
                Image if topic.kind is ImageKind.RAW else CompressedImage, self.topics[topic.name], qos)
            for topic in self.bag.topics
        }

    def wait_for_subscribers(self) -> None:
        """Wait until every topic has ``wait_for_subscribers`` subscribers.

        Raises:
            PlayerError: They did not come within ``subscriber_timeout_s`` (names the topics).
        """
        wanted = self.options.wait_for_subscribers
        if wanted <= 0:
            return
        deadline = time.monotonic() + self.options.subscriber_timeout_s
        while True:
            missing = {self.topics[name]: publisher.get_subscription_count()
                       for name, publisher in self._publishers.items()
                       if publisher.get_subscription_count() < wanted}
            if not missing:
                break
            if time.monotonic() >= deadline:
                raise PlayerError(
                    f"{self.bag.name}: waited {self.options.subscriber_timeout_s:g} s for {wanted} subscriber(s); "
                    f"subscribers now: {missing!r}")
            time.sleep(0.05)
        if self.options.start_delay_s > 0:
            time.sleep(self.options.start_delay_s)

    def play(self) -> PlayReport:
        """Publish every message at its time; return what was published.

        Raises:
            PlayerError: No subscriber came (see ``wait_for_subscribers``).
            CorruptBagError: The bag became unreadable (after publishing what was readable).
        """
        self.wait_for_subscribers()
        timeline = Timeline(self.options.rate, self.options.max_gap_s)
        pacer = Pacer(self._clock)
        published: Counter[str] = Counter()
        skipped: list[str] = []
        lateness = 0.0
        start: float | None = None
        for message in self.bag.messages():
            if self.options.max_messages is not None and published.total() >= self.options.max_messages:
                break
            try:
                data = bytes(self.bag.ros2_cdr(message))
            except ReplayError as error:
                skipped.append(str(error))
                continue
            lateness = max(lateness, pacer.wait(timeline.schedule(message.log_time_ns)))
            start = time.monotonic() if start is None else start
            self._publishers[message.topic].publish(data)
            published[self.topics[message.topic]] += 1
            self._progress.update(1)
        return PlayReport(dict(published), 0.0 if start is None else time.monotonic() - start, lateness,
                          timeline.anomalies(), tuple(skipped))

    def close(self) -> None:
        """Destroy the node and close the bag (idempotent)."""
        if self._publishers:
            self._publishers = {}
            self.node.destroy_node()
        self.bag.close()
        self._progress.close()

    def __enter__(self) -> BagPlayer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def play_main(options: PlayOptions, ros_args: Sequence[str] | None = None, *,
              progress: Progress | None = None) -> PlayReport | None:
    """Run a player in the standard ``main`` shape: init, play, shut down on Ctrl-C.

    Returns:
        The report, or None when interrupted.
    """
    from rclpy.executors import ExternalShutdownException

    with rclpy.init(args=["bag_player", *(ros_args or [])]):
        try:
            with BagPlayer(options, progress=progress) as player:
                return player.play()
        except (KeyboardInterrupt, ExternalShutdownException):
            print("interrupted", file=sys.stderr)
            return None


__all__ = ["NODE_NAME", "BagPlayer", "PlayOptions", "PlayReport", "play_main"]
