"""Image messages out of rosbag2 (sqlite3, MCAP) and ROS 1 bags, in recording order, with rosbags.

``ImageBagReader`` opens one bag (a rosbag2 folder, a bare ``.mcap``/``.db3`` file, or one or
more ROS 1 ``.bag`` files), checks the requested topics, and yields ``BagImage`` records (still
serialized) in log-time order; ``decode`` turns one into a ``BagFrame`` (header + engine image).

Damage is reported, never hidden:

* an MCAP or ROS 1 file that was not closed (no summary / no index) is read record by record
  (``salvage.py``) up to the damage;
* when reading stops early, ``messages`` raises ``CorruptBagError`` naming the file, the
  number of messages read and the last good one, after yielding everything before it;
* a single message that does not deserialize raises ``CorruptMessageError`` from ``decode``
  (the caller counts it and goes on).

Example::

    with ImageBagReader([Path("run_42")], topics=["/camera/image_raw"]) as bag:
        for message in bag.messages():
            frame = bag.decode(message)
            pipeline.run(frame.image, source=frame.topic, encoding=frame.encoding)
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore

from ros_vision_pipe.messages.image_encoding import DecodedImage, decode_compressed, decode_raw
from ros_vision_pipe.replay.bag_source import StorageFailure, describe_paths, open_source
from ros_vision_pipe.replay.errors import (
    CorruptBagError,
    TopicNotFoundError,
    TopicTypeError,
)


class ImageKind(enum.Enum):
    """The two image message types replay reads."""

    RAW = "sensor_msgs/msg/Image"
    COMPRESSED = "sensor_msgs/msg/CompressedImage"


_KINDS = {kind.value: kind for kind in ImageKind}

#: The ROS 2 store used to (de)serialize ROS 2 images and convert ROS 1 ones.
_ROS2 = get_typestore(Stores.ROS2_KILTED)


class CorruptMessageError(CorruptBagError):
    """One message of the bag cannot be deserialized (the bag itself stays readable)."""


@dataclass(frozen=True)
class Stamp:
    """A ROS time (``builtin_interfaces/Time``).

    Attributes:
        sec: Seconds.
        nanosec: Nanoseconds, 0 to 999,999,999.
    """

    sec: int
    nanosec: int

    @property
    def nanoseconds(self) -> int:
        """The stamp in nanoseconds."""
        return self.sec * 1_000_000_000 + self.nanosec

    @property
    def seconds(self) -> float:
        """The stamp in seconds."""
        return self.sec + self.nanosec * 1e-9

    @classmethod
    def from_ns(cls, nanoseconds: int) -> Stamp:
        """The stamp of ``nanoseconds``."""
        return cls(nanoseconds // 1_000_000_000, nanoseconds % 1_000_000_000)


@dataclass(frozen=True)
class ImageTopic:
    """An image topic of a bag.

    Attributes:
        name: Topic name.
        kind: Raw or compressed.
        count: Messages on the topic (None when unknown: a salvaged file before its scan).
    """

    name: str
    kind: ImageKind
    count: int | None


@dataclass(frozen=True)
class BagImage:
    """One image message as stored, not deserialized yet.

    Attributes:
        topic: Topic name.
        kind: Raw or compressed.
        index: Position among the topic's messages, 0-based (the replay frame index).
        sequence: Position among all the messages read, 0-based.
        log_time_ns: Recording time, nanoseconds.
        data: The serialized message.
        ros1: ``data`` is a ROS 1 serialization (else CDR).
    """

    topic: str
    kind: ImageKind
    index: int
    sequence: int
    log_time_ns: int
    data: bytes | memoryview
    ros1: bool


@dataclass(frozen=True, eq=False)
class BagFrame:
    """A decoded image message, ready for ``Pipeline.run`` (compared by identity).

    Attributes:
        source: The stored message.
        stamp: ``header.stamp``.
        frame_id: ``header.frame_id``.
        image: H x W x C uint8 image (a read-only view of the message for 8-bit raw images).
        encoding: Engine encoding of ``image``.
        message: The deserialized message (rosbags dataclass).
    """

    source: BagImage
    stamp: Stamp
    frame_id: str
    image: np.ndarray
    encoding: str
    message: Any

    @property
    def topic(self) -> str:
        """Topic the frame was recorded on."""
        return self.source.topic

    @property
    def index(self) -> int:
        """Position among the topic's frames, 0-based."""
        return self.source.index


class ImageBagReader:
    """Reads the image topics of one bag in recording order.

    Args:
        paths: A rosbag2 folder or a bare ``.mcap``/``.db3`` file, or one or more ROS 1 ``.bag`` files.
        topics: Topics to read; every ``Image``/``CompressedImage`` topic of the bag when None.

    Raises:
        BagOpenError: A path does not exist, or is neither a readable bag nor a salvageable file.
        TopicNotFoundError: A requested topic is not in the bag (or the bag has no image topic).
        TopicTypeError: A requested topic carries another message type.
    """

    def __init__(self, paths: Sequence[Path | str] | Path | str, topics: Sequence[str] | None = None) -> None:
        """Open the bag and check ``topics``."""
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        self.name = describe_paths(self.paths)
        self._source = open_source(self.paths)
        try:
            self.topics = self._select(topics)
        except BaseException:
            self._source.close()
            raise
        self._kinds = {topic.name: topic.kind for topic in self.topics}
        store = get_typestore(Stores.ROS1_NOETIC) if self._source.ros1 else _ROS2
        self._deserialize = store.deserialize_ros1 if self._source.ros1 else store.deserialize_cdr
        self.messages_read = 0
        self._closed = False

    def _select(self, requested: Sequence[str] | None) -> tuple[ImageTopic, ...]:
        available = self._source.topics()
        images = {name: (kind, count) for name, (msgtype, count) in available.items()
                  if (kind := _KINDS.get(msgtype)) is not None}
        if requested is None:
            if not images:
                raise TopicNotFoundError(
                    f"{self.name}: no sensor_msgs/Image or CompressedImage topic in the bag; "
                    f"its topics: {sorted(available)!r}")
            return tuple(ImageTopic(name, kind, count) for name, (kind, count) in sorted(images.items()))
        selected = []
        for name in dict.fromkeys(requested):
            if name not in available:
                raise TopicNotFoundError(
                    f"{self.name}: no topic {name!r}; image topics in the bag: {sorted(images)!r}")
            if name not in images:
                raise TopicTypeError(
                    f"{self.name}: topic {name!r} carries {available[name][0]!r}, expected "
                    f"sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage")
            kind, count = images[name]
            selected.append(ImageTopic(name, kind, count))
        return tuple(selected)

    @property
    def ros1(self) -> bool:
        """Whether messages are ROS 1 serialized (a ROS 1 bag)."""
        return self._source.ros1

    @property
    def salvaged(self) -> bool:
        """Whether the bag is read record by record because its index or footer is missing."""
        return self._source.salvaged

    @property
    def total(self) -> int | None:
        """Messages on the selected topics (None when a count is unknown)."""
        counts = [topic.count for topic in self.topics]
        return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)

    def messages(self) -> Iterator[BagImage]:
        """The selected topics' messages, in recording order.

        Raises:
            CorruptBagError: Reading stopped early (truncated or damaged storage), after every
                message before the damage was yielded.
        """
        indices: Counter[str] = Counter()
        last: tuple[str, int] | None = None
        try:
            for topic, log_time, data in self._source.records(set(self._kinds)):
                index = indices[topic]
                indices[topic] += 1
                yield BagImage(topic, self._kinds[topic], index, self.messages_read, log_time, data, self.ros1)
                self.messages_read += 1
                last = (topic, log_time)
        except StorageFailure as failure:
            after = f"last good message: {last[0]!r} at log time {last[1]} ns" if last else "no message was readable"
            raise CorruptBagError(
                f"{self.name}: bag is unreadable after {self.messages_read} image message(s) ({after}): "
                f"{failure}") from failure.__cause__

    def deserialize(self, message: BagImage) -> Any:
        """The message as a rosbags dataclass (ROS 1 or ROS 2 ``sensor_msgs``).

        Raises:
            CorruptMessageError: The message does not deserialize as its type.
        """
        try:
            msg: Any = self._deserialize(message.data, message.kind.value)
            int(msg.header.stamp.sec), int(msg.header.stamp.nanosec)
        except Exception as error:  # rosbags SerdeError, struct.error, IndexError on cut buffers
            raise CorruptMessageError(
                f"{self.name}: message {message.index} of {message.topic!r} (log time {message.log_time_ns} ns) "
                f"does not deserialize as {message.kind.value}: {type(error).__name__}: {error}") from error
        return msg

    def ros2_cdr(self, message: BagImage, deserialized: Any | None = None) -> bytes | memoryview:
        """``message`` as ROS 2 CDR: the stored bytes, or a ROS 1 message converted (its ``seq`` dropped).

        Raises:
            CorruptMessageError: A ROS 1 message does not deserialize.
        """
        if not message.ros1:
            return message.data
        msg = self.deserialize(message) if deserialized is None else deserialized
        types = _ROS2.types
        header = types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec),
            frame_id=msg.header.frame_id)
        if message.kind is ImageKind.RAW:
            converted = types[ImageKind.RAW.value](
                header=header, height=msg.height, width=msg.width, encoding=msg.encoding,
                is_bigendian=msg.is_bigendian, step=msg.step, data=np.asarray(msg.data, dtype=np.uint8))
        else:
            converted = types[ImageKind.COMPRESSED.value](header=header, format=msg.format,
                                                          data=np.asarray(msg.data, dtype=np.uint8))
        return _ROS2.serialize_cdr(converted, message.kind.value)

    def decode(self, message: BagImage) -> BagFrame:
        """Deserialize ``message`` and decode its image.

        Raises:
            CorruptMessageError: The message does not deserialize as its type.
            ImageDecodeError: The image is invalid or of an unsupported encoding.
        """
        msg = self.deserialize(message)
        header = msg.header
        stamp = Stamp(int(header.stamp.sec), int(header.stamp.nanosec))
        if message.kind is ImageKind.RAW:
            decoded: DecodedImage = decode_raw(msg.height, msg.width, msg.encoding, msg.is_bigendian,
                                               msg.step, msg.data)
        else:
            decoded = decode_compressed(msg.format, msg.data)
        return BagFrame(message, stamp, str(header.frame_id), decoded.image, decoded.encoding, msg)

    def close(self) -> None:
        """Close the bag's files (idempotent)."""
        if not self._closed:
            self._closed = True
            self._source.close()

    def __enter__(self) -> ImageBagReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def one_topic_per_camera(topics: Sequence[ImageTopic]) -> tuple[tuple[ImageTopic, ...], tuple[ImageTopic, ...]]:
    """The topics to replay by default: one per camera, and those left out.

    A camera often records ``X`` (raw) and ``X/compressed`` (JPEG of the same frames); replaying
    both would run every frame twice. The raw topic is kept (lossless); ``X/compressed`` is kept
    only where there is no ``X``.

    Returns:
        (kept, left out), each in the order of ``topics``.
    """
    names = {topic.name for topic in topics}
    kept = tuple(t for t in topics if not (t.name.endswith("/compressed") and t.name.removesuffix("/compressed")
                                           in names))
    return kept, tuple(t for t in topics if t not in kept)


__all__ = [
    "BagFrame",
    "BagImage",
    "CorruptMessageError",
    "ImageBagReader",
    "ImageKind",
    "ImageTopic",
    "Stamp",
    "one_topic_per_camera",
]
