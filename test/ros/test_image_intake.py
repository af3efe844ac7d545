"""ImageReader: the node's camera messages read in place from their serialized bytes (real rclpy serialization)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from ros_support import image_message
from sensor_msgs.msg import CompressedImage

from ros_vision_pipe.messages.image_encoding import ImageDecodeError, ImageFormat
from ros_vision_pipe.ros.image_intake import ImageReader


def test_a_serialized_image_is_read_in_place_with_its_header_and_pixels(bikes) -> None:
    raw = serialize_message(image_message(bikes[5], "bgr8", "cam_7", 7))
    frame = ImageReader(False, ImageFormat.EIGHT_BIT).read(raw)
    assert (frame.header.frame_id, frame.header.stamp.sec, frame.size) == ("cam_7", 7, bikes[5].nbytes)
    decoded = frame.decode()
    assert decoded.encoding == "bgr8" and np.array_equal(decoded.image, bikes[5])
    assert not decoded.image.flags.writeable  # a view of the bytes rclpy took, not a copy


def test_a_serialized_compressed_image_is_decoded(bikes) -> None:
    ok, png = cv2.imencode(".png", bikes[5])
    assert ok
    msg = CompressedImage(format="png", data=png.tobytes())
    msg.header.frame_id = "cam"
    frame = ImageReader(True, ImageFormat.EIGHT_BIT).read(serialize_message(msg))
    assert frame.header.frame_id == "cam" and np.array_equal(frame.decode().image, bikes[5])


@pytest.mark.parametrize(("compressed", "name"), [(False, "sensor_msgs/Image"), (True, "sensor_msgs/CompressedImage")])
def test_bytes_that_are_not_the_type_decode_to_an_error_naming_it(compressed: bool, name: str) -> None:
    frame = ImageReader(compressed, ImageFormat.EIGHT_BIT).read(b"\x00\x01\x00\x00" + b"\xff" * 40)
    assert frame.size == 44
    with pytest.raises(ImageDecodeError, match=f"cannot read the {name}: "):
        frame.decode()


@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize(("frame_id", "encoding", "shape", "padding"), [
    ("cam_7", "bgr8", (4, 5, 3), 0), ("", "mono8", (3, 7, 1), 1), ("left/optical", "rgba8", (2, 3, 4), 3),
    ("x", "16UC1", (2, 2, 2), 2),
])
def test_the_image_fields_read_in_place_are_the_ones_rosbags_reads(frame_id: str, encoding: str, shape: tuple,
                                                                   padding: int, little_endian: bool) -> None:
    from ros_vision_pipe.ros.image_intake import _CDR, _read_image

    height, width, channels = shape
    step = width * channels + padding
    data = np.arange(height * step, dtype=np.uint8)
    types = _CDR.types
    msg = types["sensor_msgs/msg/Image"](
        header=types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=-3, nanosec=999),
                                            frame_id=frame_id),
        height=height, width=width, encoding=encoding, is_bigendian=int(not little_endian), step=step, data=data)
    raw = bytes(_CDR.serialize_cdr(msg, "sensor_msgs/msg/Image", little_endian=little_endian))
    fields = _read_image(raw)
    assert fields is not None
    read = _CDR.deserialize_cdr(raw, "sensor_msgs/msg/Image")
    assert (fields.sec, fields.nanosec, fields.frame_id, fields.height, fields.width, fields.encoding,
            fields.is_bigendian, fields.step) == (
        read.header.stamp.sec, read.header.stamp.nanosec, read.header.frame_id, read.height, read.width,
        read.encoding, read.is_bigendian, read.step)
    assert bytes(fields.data) == read.data.tobytes()
    for cut in (1, 5, len(raw) // 2, len(raw) - 13):  # truncated: left to rosbags, which names the problem
        assert _read_image(raw[:-cut]) is None


@pytest.mark.parametrize("hostile", ["frame_id_not_utf8", "length_past_the_end", "data_longer_than_said"])
def test_a_hostile_image_payload_is_refused_by_the_fast_reader_and_named_by_rosbags(hostile: str) -> None:
    from ros_vision_pipe.ros.image_intake import _read_image

    good = bytearray(serialize_message(image_message(np.zeros((2, 3, 3), np.uint8), "bgr8", "cam", 1)))
    if hostile == "frame_id_not_utf8":  # frame_id "cam" -> b"\xff\xfe\xfd"
        good[16:19] = b"\xff\xfe\xfd"
    elif hostile == "length_past_the_end":  # frame_id's length says 2**31 bytes
        good[12:16] = (2**31).to_bytes(4, "little")
    else:
        good += b"\x00" * 8
    raw = bytes(good)
    assert _read_image(raw) is None
    frame = ImageReader(False, ImageFormat.EIGHT_BIT).read(raw)
    with pytest.raises(ImageDecodeError, match="cannot read the sensor_msgs/Image: "):
        frame.decode()
