"""Write image bags from frames: the ``make-bag`` command, test fixtures and benchmarks.

Writes rosbag2 bags (``sqlite3`` or ``mcap`` storage) and ROS 1 bags with ``sensor_msgs/Image``
(raw) or ``sensor_msgs/CompressedImage`` (JPEG / PNG) topics, using rosbags only.

Example::

    from ros_vision_pipe.frames import iter_frames
    write_image_bag(tmp_path / "bikes", iter_frames("sample:bikes", limit=30),
                    [ImageTopicSpec("/camera/image_raw"),
                     ImageTopicSpec("/camera/image_raw/compressed", compressed=True)])
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from ros_vision_pipe.frames import Frame
from ros_vision_pipe.messages.image_encoding import encode_raw
from ros_vision_pipe.replay.errors import OutputBagError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"


class Storage(enum.Enum):
    """Container format of a bag written by this package."""

    SQLITE3 = "sqlite3"  # rosbag2, one .db3 file
    MCAP = "mcap"  # rosbag2, one .mcap file
    ROS1 = "ros1"  # a ROS 1 .bag file (reading is what ROS 1 users need; written for tests)

    @classmethod
    def parse(cls, value: str) -> Storage:
        """The storage called ``value`` (``sqlite3``, ``mcap`` or ``ros1``).

        Raises:
            ValueError: ``value`` names no storage.
        """
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"unknown storage {value!r}; expected one of {[s.value for s in cls]}") from None


@dataclass(frozen=True)
class ImageTopicSpec:
    """One image topic of a bag to write.

    Attributes:
        topic: Topic name.
        compressed: Write ``CompressedImage`` instead of ``Image``.
        codec: ``jpeg`` or ``png`` (compressed topics).
        encoding: ROS encoding of raw images; the frame is converted to it (``bgr8``, ``rgb8``, ``mono8``).
        frame_id: ``header.frame_id`` of every message.
    """

    topic: str
    compressed: bool = False
    codec: str = "jpeg"
    encoding: str = "bgr8"
    frame_id: str = "camera"


#: Maps a frame's index and timestamp to (log time ns, header stamp ns); the default is
#: ``start + timestamp`` for both. Tests use it to write loops, jumps and out-of-order stamps.
TimeMap = Callable[[int, float], tuple[int, int]]

#: Log time of the first message of bags written with the default time map (2024-01-01).
DEFAULT_START_NS = 1_704_067_200 * 1_000_000_000


def default_time_map(index: int, timestamp: float) -> tuple[int, int]:
    """Log time and header stamp both ``DEFAULT_START_NS + timestamp``."""
    ns = DEFAULT_START_NS + int(round(timestamp * 1e9))
    return ns, ns


def _convert(image: np.ndarray, source: str, target: str) -> np.ndarray:
    import cv2

    if source == target:
        return image
    codes = {
        ("rgb8", "bgr8"): cv2.COLOR_RGB2BGR, ("bgr8", "rgb8"): cv2.COLOR_BGR2RGB,
        ("rgb8", "mono8"): cv2.COLOR_RGB2GRAY, ("bgr8", "mono8"): cv2.COLOR_BGR2GRAY,
    }
    code = codes.get((source, target))
    if code is None:
        raise OutputBagError(f"cannot convert a {source!r} frame to {target!r}")
    converted = cv2.cvtColor(image, code)
    return converted[:, :, None] if converted.ndim == 2 else converted


def _image_message(types: Any, header: Any, frame: Frame, spec: ImageTopicSpec) -> Any:
    import cv2

    if spec.compressed:
        bgr = _convert(frame.image, frame.encoding, "bgr8")
        ok, encoded = cv2.imencode(f".{'jpg' if spec.codec == 'jpeg' else spec.codec}", bgr)
        if not ok:
            raise OutputBagError(f"cannot encode frame {frame.index} as {spec.codec!r} for {spec.topic!r}")
        return types[COMPRESSED_IMAGE](header=header, format=f"bgr8; {spec.codec} compressed bgr8",
                                       data=np.asarray(encoded, dtype=np.uint8).reshape(-1))
    image = _convert(frame.image, frame.encoding, spec.encoding)
    height, width, step, data = encode_raw(image, spec.encoding)
    return types[IMAGE](header=header, height=height, width=width, encoding=spec.encoding,
                        is_bigendian=0, step=step, data=np.frombuffer(data, dtype=np.uint8))


def _header(types: Any, stamp_ns: int, frame_id: str, ros1: bool, seq: int) -> Any:
    time_type = types["builtin_interfaces/msg/Time"]
    stamp = time_type(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    if ros1:
        return types["std_msgs/msg/Header"](seq=seq, stamp=stamp, frame_id=frame_id)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def bag_path(path: Path, storage: Storage) -> Path:
    """Where a bag of ``storage`` named ``path`` lives (``.bag`` added for ROS 1)."""
    return path.with_suffix(".bag") if storage is Storage.ROS1 and path.suffix != ".bag" else path


def write_image_bag(
    path: Path | str,
    frames: Iterable[Frame],
    topics: Sequence[ImageTopicSpec],
    *,
    storage: Storage = Storage.SQLITE3,
    time_map: TimeMap = default_time_map,
    typestore: Typestore | None = None,
) -> Path:
    """Write every frame to every topic of ``topics``; return the bag's path.

    Args:
        path: Output bag (a rosbag2 folder; a ``.bag`` file for ROS 1). Must not exist.
        frames: The frames (e.g. ``iter_frames("sample:bikes", limit=30)``).
        topics: The topics each frame is written to.
        storage: sqlite3, mcap or ros1.
        time_map: Log time and header stamp of each frame.
        typestore: Store with ``sensor_msgs`` (a ROS 2 Kilted / ROS 1 Noetic store by default).

    Raises:
        OutputBagError: The bag exists already, or a frame cannot be encoded.

    Whatever stops the writing (a bad source, an encoding error, Ctrl-C) removes the partial
    bag, so that the corrected command can write it.
    """
    target = bag_path(Path(path), storage)
    if target.exists():
        raise OutputBagError(f"{target}: output bag exists already, not overwriting")
    ros1 = storage is Storage.ROS1
    store = typestore or get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_KILTED)
    types = store.types
    writer: Any
    if ros1:
        from rosbags.rosbag1 import Writer as Writer1

        writer = Writer1(target)
        serialize = store.serialize_ros1
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.MCAP if storage is Storage.MCAP else StoragePlugin.SQLITE3
        writer = Writer(target, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        serialize = store.serialize_cdr
    complete = False
    try:
        writer.open()
        connections = [writer.add_connection(t.topic, COMPRESSED_IMAGE if t.compressed else IMAGE,
                                             typestore=store) for t in topics]
        for frame in frames:
            log_ns, stamp_ns = time_map(frame.index, frame.timestamp)
            for spec, connection in zip(topics, connections, strict=True):
                header = _header(types, stamp_ns, spec.frame_id, ros1, frame.index)
                message = _image_message(types, header, frame, spec)
                writer.write(connection, log_ns, serialize(message, connection.msgtype))
        complete = True
    finally:
        try:
            writer.close()
        finally:
            if not complete:
                _remove_partial(target)
    return target


def _remove_partial(target: Path) -> None:
    """Remove a bag whose writing failed (a rosbag2 folder or a ROS 1 file)."""
    import shutil

    if target.is_dir():
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.unlink(missing_ok=True)


__all__ = [
    "COMPRESSED_IMAGE",
    "DEFAULT_START_NS",
    "IMAGE",
    "ImageTopicSpec",
    "Storage",
    "TimeMap",
    "bag_path",
    "default_time_map",
    "write_image_bag",
]
