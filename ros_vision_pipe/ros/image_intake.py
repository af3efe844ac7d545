"""Reading the node's camera messages from their serialized bytes, and taking the waiting ones.

The node subscribes with ``raw=True``: rclpy hands over the serialized message and rosbags reads
it in place, through a ``memoryview``, so the pixels stay in the buffer rclpy took (slicing the
bytes would copy them, and rclpy's own conversion copies them twice: docs/performance.md,
"Second round"). A payload that is no ``sensor_msgs/Image`` / ``CompressedImage`` (any DDS peer
can send one) becomes a frame whose decoding fails with ``ImageDecodeError``, rejected and counted
like any bad image.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple, NoReturn

from builtin_interfaces.msg import Time
from rclpy.exceptions import InvalidHandle
from rosbags.typesys import get_typestore
from std_msgs.msg import Header

from ros_vision_pipe.messages.image_encoding import (
    DecodedImage,
    ImageDecodeError,
    ImageFormat,
    decode_compressed,
    decode_raw,
)
from ros_vision_pipe.messages.typestore import BASE_STORE

#: rosbags' ROS 2 types, which read the serialized images.
_CDR = get_typestore(BASE_STORE)


class RawFrame(NamedTuple):
    """One message read: its header, the size of its pixel data, and how to decode it."""

    header: Header
    size: int
    decode: Callable[[], DecodedImage]


def _fail(error: ImageDecodeError) -> NoReturn:
    raise error


class ImageReader:
    """Reads the messages of one input: ``sensor_msgs/Image`` (decoded to ``image_format``) or,
    for a ``.../compressed`` topic, ``sensor_msgs/CompressedImage``. Built once per subscription.

    Args:
        compressed: The input carries ``CompressedImage``.
        image_format: What a raw image becomes (``ImageFormat``).
    """

    def __init__(self, compressed: bool, image_format: ImageFormat) -> None:
        """Read ``CompressedImage`` when ``compressed``, else ``Image`` as ``image_format``."""
        self.compressed = compressed
        self.image_format = image_format
        self._name = "sensor_msgs/CompressedImage" if compressed else "sensor_msgs/Image"
        self._type = self._name.replace("/", "/msg/")

    def read(self, raw: bytes) -> RawFrame:
        """The header, pixel size and decoding of a serialized message (never raises: a payload that
        cannot be read decodes to an ``ImageDecodeError`` naming the type and the reason)."""
        try:
            msg: Any = _CDR.deserialize_cdr(memoryview(raw), self._type)
        except Exception as error:  # rosbags raises several types on bytes that are not this type
            problem = ImageDecodeError(f"cannot read the {self._name}: {type(error).__name__}: {error}")
            return RawFrame(Header(), len(raw), partial(_fail, problem))
        header = Header(stamp=Time(sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec),
                        frame_id=msg.header.frame_id)
        if self.compressed:
            return RawFrame(header, len(msg.data), lambda: decode_compressed(msg.format, msg.data))
        return RawFrame(header, len(msg.data), lambda: decode_raw(
            msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data, self.image_format))


def take_waiting(subscription: Any) -> bytes | None:
    """The next message waiting in ``subscription`` (serialized), taken as rclpy's executor takes it;
    None when none is waiting or the subscription was destroyed meanwhile.

    Only from a callback of the subscription's own (mutually exclusive) group: the executor does
    not take from it meanwhile.
    """
    try:
        with subscription.handle:
            taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    except InvalidHandle:  # destroyed meanwhile (deactivate)
        return None
    return None if taken is None else taken[0]


__all__ = ["ImageReader", "RawFrame", "take_waiting"]
