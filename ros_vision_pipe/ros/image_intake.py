"""Reading the node's camera messages from their serialized bytes, and taking the waiting ones.

The node subscribes with ``raw=True`` and takes each message serialized, into a buffer of the
intake's own (``serialized_take.py``: one copy of the pixels) or, where that is not available, as
rclpy's bytes; either is read in place, so the pixels stay where they were taken (rclpy's own
conversion copies them twice more: docs/performance.md, "Second round"). A ``sensor_msgs/Image``
is read by ``_read_image`` (its layout is fixed: a few ``struct`` reads); anything else,
``CompressedImage`` included, by rosbags through a ``memoryview`` (slicing the bytes would copy
them). A payload that is no
``sensor_msgs/Image`` / ``CompressedImage`` (any DDS peer can send one) becomes a frame whose
decoding fails with ``ImageDecodeError``, rejected and counted like any bad image.
"""

from __future__ import annotations

import struct
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
from ros_vision_pipe.ros.serialized_take import SerializedTaker

#: rosbags' ROS 2 types, which read the serialized images.
_CDR = get_typestore(BASE_STORE)


#: A serialized message: rclpy's bytes, or a view of it in a ``SerializedTaker``'s buffer.
Serialized = bytes | memoryview


class RawFrame(NamedTuple):
    """One message read: its header, the size of its pixel data, and how to decode it."""

    header: Header
    size: int
    decode: Callable[[], DecodedImage]


def _fail(error: ImageDecodeError) -> NoReturn:
    raise error


_UINT32 = {b"\x00": struct.Struct(">I"), b"\x01": struct.Struct("<I")}
_STAMP = {b"\x00": struct.Struct(">iI"), b"\x01": struct.Struct("<iI")}


class _ImageFields(NamedTuple):
    sec: int
    nanosec: int
    frame_id: str
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


def _read_image(raw: Serialized) -> _ImageFields | None:
    """The fields of a serialized ``sensor_msgs/Image`` (plain CDR, either byte order), its pixels a
    view of ``raw``; None for anything else (rosbags then reads it and names the problem).

    The layout is fixed: stamp (int32, uint32), frame_id (string), height, width (uint32), encoding
    (string), is_bigendian (uint8), step (uint32), data (uint32 length + bytes); every uint32 is
    aligned to 4 bytes from the end of the 4-byte encapsulation header.
    """
    view = memoryview(raw)
    if len(view) < 12 or view[0] != 0 or view[1] > 1:
        return None
    kind = bytes(view[1:2])
    uint32 = _UINT32[kind].unpack_from
    try:
        sec, nanosec = _STAMP[kind].unpack_from(view, 4)
        offset, strings = 12, []
        for _ in range(2):  # frame_id, then (after height and width) encoding
            length = uint32(view, offset)[0]
            end = offset + 4 + length
            if length == 0 or end > len(view) or view[end - 1] != 0:
                return None
            strings.append(str(view[offset + 4:end - 1], "utf-8"))
            offset = end
            if len(strings) == 1:
                offset = (offset + 3) & ~3
                height, width = uint32(view, offset)[0], uint32(view, offset + 4)[0]
                offset += 8
        is_bigendian = view[offset]
        offset = (offset + 4) & ~3  # the uint32 after the uint8
        step, size = uint32(view, offset)[0], uint32(view, offset + 4)[0]
    except (struct.error, IndexError, UnicodeDecodeError):
        return None
    start = offset + 8
    if start + size != len(view):
        return None
    return _ImageFields(sec, nanosec, strings[0], height, width, strings[1], is_bigendian, step,
                        view[start:])


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

    def read(self, raw: Serialized) -> RawFrame:
        """The header, pixel size and decoding of a serialized message (never raises: a payload that
        cannot be read decodes to an ``ImageDecodeError`` naming the type and the reason)."""
        fields = None if self.compressed else _read_image(raw)
        if fields is not None:  # the common case, read here in a few microseconds
            header = Header(frame_id=fields.frame_id)  # its default stamp filled in: one Time made, not two
            header.stamp.sec, header.stamp.nanosec = fields.sec, fields.nanosec
            return RawFrame(header, len(fields.data), lambda: decode_raw(
                fields.height, fields.width, fields.encoding, fields.is_bigendian, fields.step, fields.data,
                self.image_format))
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


def take_waiting(subscription: Any, taker: SerializedTaker | None = None) -> Serialized | None:
    """The next message waiting in ``subscription`` (serialized), taken by ``taker`` into a buffer it
    reuses, or as rclpy's executor takes it; None when none is waiting or the subscription was
    destroyed meanwhile.

    Only from a callback of the subscription's own (mutually exclusive) group: the executor does
    not take from it meanwhile.
    """
    try:
        with subscription.handle:
            if taker is not None:
                return taker.take(subscription)
            taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    except InvalidHandle:  # destroyed meanwhile (deactivate)
        return None
    return None if taken is None else taken[0]


__all__ = ["ImageReader", "RawFrame", "Serialized", "take_waiting"]
