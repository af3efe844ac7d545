"""ROS image payloads -> engine images, without ROS (ros_vision_pipe.image_encoding)."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest

from ros_vision_pipe.engine.errors import InputError
from ros_vision_pipe.image_encoding import (
    RAW_LAYOUTS,
    ImageDecodeError,
    decode_compressed,
    decode_raw,
    encode_raw,
)

RNG = np.random.default_rng(7)
COLOR = RNG.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)


def as_message_buffer(rows: np.ndarray, step: int) -> array.array:
    """Rows of bytes laid out with ``step`` bytes per row (padding = 0xEE), as rclpy delivers them."""
    height = rows.shape[0]
    raw = rows.reshape(height, -1).view(np.uint8)
    padded = np.full((height, step), 0xEE, dtype=np.uint8)
    padded[:, : raw.shape[1]] = raw
    return array.array("B", padded.tobytes())


@pytest.mark.parametrize(
    ("encoding", "channels", "engine_encoding"),
    [("rgb8", 3, "rgb8"), ("bgr8", 3, "bgr8"), ("mono8", 1, "mono8"), ("rgba8", 4, "rgba8"),
     ("bgra8", 4, "bgra8"), ("8UC1", 1, "mono8"), ("8UC3", 3, "bgr8"), ("8UC4", 4, "bgra8")],
)
def test_8_bit_encodings_decode_to_a_view_of_the_message_buffer(encoding, channels, engine_encoding) -> None:
    pixels = COLOR[:, :, :channels]
    data = as_message_buffer(pixels, 7 * channels)
    decoded = decode_raw(5, 7, encoding, 0, 7 * channels, data)
    assert decoded.encoding == engine_encoding
    assert decoded.image.shape == (5, 7, channels) and decoded.image.dtype == np.uint8
    np.testing.assert_array_equal(decoded.image, pixels)
    assert not decoded.copied
    assert np.shares_memory(decoded.image, np.frombuffer(data, dtype=np.uint8))
    assert not decoded.image.flags.writeable


def test_row_padding_is_skipped_without_copying() -> None:
    pixels = COLOR[:, :, :3]
    data = as_message_buffer(pixels, 32)  # 21 bytes of pixels + 11 of padding per row
    decoded = decode_raw(5, 7, "bgr8", 0, 32, data)
    np.testing.assert_array_equal(decoded.image, pixels)
    assert decoded.image.strides == (32, 3, 1)
    assert np.shares_memory(decoded.image, np.frombuffer(data, dtype=np.uint8))


@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
@pytest.mark.parametrize("bigendian", [0, 1])
def test_16_bit_mono_is_scaled_to_8_bits_in_either_byte_order(encoding, bigendian) -> None:
    wide = RNG.integers(0, 65536, size=(4, 6, 1), dtype=np.uint16)
    raw = wide.astype(">u2" if bigendian else "<u2")
    data = as_message_buffer(raw, 16)  # 12 bytes of pixels + 4 of padding
    decoded = decode_raw(4, 6, encoding, bigendian, 16, data)
    assert decoded.encoding == "mono8" and decoded.copied
    np.testing.assert_array_equal(decoded.image, (wide >> 8).astype(np.uint8))


def test_16_bit_colour_keeps_its_channel_order() -> None:
    wide = RNG.integers(0, 65536, size=(2, 3, 3), dtype=np.uint16)
    decoded = decode_raw(2, 3, "rgb16", 1, 18, wide.astype(">u2").tobytes())
    assert decoded.encoding == "rgb8"
    np.testing.assert_array_equal(decoded.image, (wide >> 8).astype(np.uint8))


def test_every_declared_layout_decodes() -> None:
    for encoding, layout in RAW_LAYOUTS.items():
        step = 3 * layout.channels * layout.bytes_per_channel
        decoded = decode_raw(2, 3, encoding, 0, step, bytes(2 * step))
        assert decoded.image.shape == (2, 3, layout.channels), encoding


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((2, 3, "bgr8", 0, 8, bytes(16)), r"step is shorter than a row of 9 B \(encoding 'bgr8', 3x2 px, step 8 B"),
        ((2, 3, "bgr8", 0, 9, bytes(17)), r"data size is not step \* height = 18 B \(encoding 'bgr8', 3x2 px, "
                                          r"step 9 B, data 17 B\)"),
        ((2, 3, "bgr8", 0, 9, bytes(19)), r"data size is not step \* height = 18 B"),
        ((0, 3, "bgr8", 0, 9, b""), r"empty image \(encoding 'bgr8', 3x0 px"),
        ((2, 0, "mono8", 0, 0, b""), r"empty image \(encoding 'mono8', 0x2 px"),
        ((2, 3, "yuv422", 0, 6, bytes(12)), r"unsupported image encoding \(encoding 'yuv422', 3x2 px.*expected one of"),
        ((2, 3, "32FC1", 0, 12, bytes(24)), r"unsupported image encoding \(encoding '32FC1'"),
        ((2, 3, "mono16", 0, 7, bytes(14)), r"step is not a multiple of the 2-byte channel \(encoding 'mono16'"),
    ],
)
def test_inconsistent_raw_images_are_rejected_with_encoding_and_sizes(args, match) -> None:
    with pytest.raises(ImageDecodeError, match=match):
        decode_raw(*args)


def test_decode_errors_are_engine_input_errors() -> None:
    assert issubclass(ImageDecodeError, InputError)


def test_jpeg_decodes_to_bgr8() -> None:
    ok, jpeg = cv2.imencode(".jpg", np.full((16, 24, 3), (10, 120, 240), np.uint8))
    assert ok
    decoded = decode_compressed("bgr8; jpeg compressed bgr8", jpeg.tobytes())
    assert decoded.encoding == "bgr8" and decoded.image.shape == (16, 24, 3)
    assert np.abs(decoded.image.astype(int) - (10, 120, 240)).max() <= 3


@pytest.mark.parametrize(
    ("image", "encoding", "expected"),
    [
        (np.arange(12, dtype=np.uint8).reshape(3, 4), "mono8", np.arange(12, dtype=np.uint8).reshape(3, 4, 1)),
        (np.full((3, 4), 0x1234, np.uint16), "mono8", np.full((3, 4, 1), 0x12, np.uint8)),
        (COLOR, "bgra8", COLOR),
    ],
)
def test_png_decodes_losslessly_to_mono8_or_bgra8(image, encoding, expected) -> None:
    ok, png = cv2.imencode(".png", image)
    assert ok
    decoded = decode_compressed("png", png.tobytes())
    assert decoded.encoding == encoding
    np.testing.assert_array_equal(decoded.image, expected)


@pytest.mark.parametrize(
    ("fmt", "data", "match"),
    [
        ("jpeg", b"", r"empty compressed image \(format 'jpeg', data 0 B\)"),
        ("jpeg", b"\xff\xd8\xff\xe0 this is not a jpeg", r"corrupt or undecodable compressed image \(format 'jpeg', "
                                                          r"data 23 B\)"),
        ("png", b"\x89PNG\r\n\x1a\n" + bytes(40),
         r"corrupt or undecodable compressed image \(format 'png', data 48 B\)"),
        ("16UC1; compressedDepth png", b"\x00" * 20, r"unsupported compressed format .*compressedDepth"),
    ],
)
def test_bad_compressed_images_are_rejected_naming_the_format(fmt, data, match) -> None:
    with pytest.raises(ImageDecodeError, match=match):
        decode_compressed(fmt, data)


def test_encode_raw_round_trips_through_decode_raw() -> None:
    height, width, step, data = encode_raw(COLOR[:, :, :3], "rgb8")
    assert (height, width, step) == (5, 7, 21)
    np.testing.assert_array_equal(decode_raw(height, width, "rgb8", 0, step, data).image, COLOR[:, :, :3])
    with pytest.raises(ImageDecodeError, match=r"cannot encode a uint8 image of shape \(5, 7, 4\) as 'rgb8'"):
        encode_raw(COLOR, "rgb8")
