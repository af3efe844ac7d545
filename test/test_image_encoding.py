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
    ImageFormat,
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


def test_every_declared_layout_decodes_in_native_format() -> None:
    for encoding, layout in RAW_LAYOUTS.items():
        step = 4 * layout.channels * layout.bytes_per_channel
        decoded = decode_raw(2, 4, encoding, 0, step, bytes(2 * step), ImageFormat.NATIVE)
        channels = 3 if layout.cv_code else layout.channels
        assert decoded.image.shape == (2, 4, channels), encoding
        assert decoded.encoding == layout.output_encoding(ImageFormat.NATIVE), encoding


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((2, 3, "bgr8", 0, 8, bytes(16)), r"step is shorter than a row of 9 B \(encoding 'bgr8', 3x2 px, step 8 B"),
        ((2, 3, "bgr8", 0, 9, bytes(17)), r"data size is not step \* height = 18 B \(encoding 'bgr8', 3x2 px, "
                                          r"step 9 B, data 17 B\)"),
        ((2, 3, "bgr8", 0, 9, bytes(19)), r"data size is not step \* height = 18 B"),
        ((0, 3, "bgr8", 0, 9, b""), r"empty image \(encoding 'bgr8', 3x0 px"),
        ((2, 0, "mono8", 0, 0, b""), r"empty image \(encoding 'mono8', 0x2 px"),
        ((2, 3, "yuv420", 0, 6, bytes(12)), r"unsupported image encoding \(encoding 'yuv420', 3x2 px.*expected one of"),
        ((2, 3, "yuv422", 0, 6, bytes(12)), r"yuv422 needs an even width \(encoding 'yuv422', 3x2 px"),
        ((2, 3, "32FC1", 0, 12, bytes(24)), r"encoding '32FC1' is not an 8-bit image \(encoding '32FC1', 3x2 px.*"
                                            r"set the input's image_format to 'native'.*float32 tensor"),
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


# -- camera encodings: yuv422 and bayer, as cv_bridge converts them ---------------------------------


@pytest.fixture(scope="module")
def photo_bgr() -> np.ndarray:
    """A real photo (scikit-image's astronaut, 512 x 512), BGR, cut to 480 x 640 odd-free sizes."""
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)[:480, :510])


def _pack_yuv422(bgr: np.ndarray, order: str) -> np.ndarray:
    """H x W x 2 yuv422 bytes as a camera sends them (OpenCV's BT.601 encoder), in byte ``order``."""
    packed = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_UYVY if order == "uyvy" else cv2.COLOR_BGR2YUV_YUY2)
    luma = 1 if order == "uyvy" else 0  # U Y V Y ... / Y U Y V ...
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(int)
    assert np.abs(packed[:, :, luma].astype(int) - (16 + gray * 219 // 255)).mean() < 3
    return packed


def _mosaic(bgr: np.ndarray, pattern: str) -> np.ndarray:
    """A one-channel bayer mosaic of ``bgr`` with ``pattern`` (e.g. "rggb": R at (0, 0))."""
    index = {"r": 2, "g": 1, "b": 0}
    out = np.empty(bgr.shape[:2], bgr.dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = bgr[dy::2, dx::2, index[pattern[k]]]
    return out


@pytest.mark.parametrize(("encoding", "order", "code"), [
    ("yuv422", "uyvy", cv2.COLOR_YUV2BGR_UYVY), ("uyvy", "uyvy", cv2.COLOR_YUV2BGR_UYVY),
    ("yuv422_yuy2", "yuyv", cv2.COLOR_YUV2BGR_YUY2), ("yuyv", "yuyv", cv2.COLOR_YUV2BGR_YUY2),
])
def test_yuv422_decodes_to_bgr8_exactly_as_cv_bridge_converts_it(photo_bgr, encoding, order, code) -> None:
    packed = _pack_yuv422(photo_bgr, order)
    height, width = packed.shape[:2]
    step = width * 2 + 6
    decoded = decode_raw(height, width, encoding, 0, step, as_message_buffer(packed, step))
    assert decoded.encoding == "bgr8" and decoded.image.shape == photo_bgr.shape and decoded.copied
    # cv_bridge: toCvCopy(msg, "bgr8") = cv::cvtColor(CV_8UC2 mat, COLOR_YUV2BGR_UYVY / _YUY2)
    np.testing.assert_array_equal(decoded.image, cv2.cvtColor(packed, code))
    assert np.abs(decoded.image.astype(int) - photo_bgr).mean() < 4  # the photo, not a channel mix-up


BAYER = [("rggb", cv2.COLOR_BayerBG2BGR), ("bggr", cv2.COLOR_BayerRG2BGR),
         ("gbrg", cv2.COLOR_BayerGR2BGR), ("grbg", cv2.COLOR_BayerGB2BGR)]


@pytest.mark.parametrize(("pattern", "code"), BAYER)
def test_8_bit_bayer_decodes_to_bgr8_exactly_as_cv_bridge_converts_it(photo_bgr, pattern, code) -> None:
    mosaic = _mosaic(photo_bgr, pattern)
    height, width = mosaic.shape
    decoded = decode_raw(height, width, f"bayer_{pattern}8", 0, width, as_message_buffer(mosaic, width))
    assert decoded.encoding == "bgr8" and decoded.image.dtype == np.uint8
    np.testing.assert_array_equal(decoded.image, cv2.cvtColor(mosaic, code))
    assert np.abs(decoded.image.astype(int) - photo_bgr).mean() < 8  # demosaiced with the right pattern


@pytest.mark.parametrize(("pattern", "code"), BAYER)
@pytest.mark.parametrize("bigendian", [0, 1])
def test_16_bit_bayer_is_demosaiced_then_scaled_as_cv_bridge_does(photo_bgr, pattern, code, bigendian) -> None:
    wide = photo_bgr.astype(np.uint16) * 257 + RNG.integers(0, 257, photo_bgr.shape, dtype=np.uint16)
    mosaic = _mosaic(wide, pattern)
    height, width = mosaic.shape
    data = as_message_buffer(mosaic.astype(">u2" if bigendian else "<u2"), width * 2)
    decoded = decode_raw(height, width, f"bayer_{pattern}16", bigendian, width * 2, data)
    # cv_bridge: cvtColor(CV_16UC1, code) then convertTo(CV_8U, 255 / 65535.) (SAME_FORMAT step)
    reference = cv2.convertScaleAbs(cv2.cvtColor(mosaic, code), alpha=255.0 / 65535.0)
    assert decoded.encoding == "bgr8"
    np.testing.assert_array_equal(decoded.image, reference)
    assert np.abs(decoded.image.astype(int) - photo_bgr).mean() < 8
    native = decode_raw(height, width, f"bayer_{pattern}16", bigendian, width * 2, data, ImageFormat.NATIVE)
    assert native.encoding == "bgr16"
    np.testing.assert_array_equal(native.image, cv2.cvtColor(mosaic, code))


# -- typed data: depth and other non-8-bit images in native format ---------------------------------


def test_32fc1_depth_in_metres_is_a_float32_view_of_the_message() -> None:
    depth = RNG.uniform(0.2, 8.0, size=(4, 6, 1)).astype(np.float32)
    depth[0, 0, 0] = np.nan  # no return
    data = as_message_buffer(depth, 32)
    decoded = decode_raw(4, 6, "32FC1", 0, 32, data, ImageFormat.NATIVE)
    assert decoded.encoding == "32FC1" and decoded.image.dtype == np.float32 and not decoded.copied
    np.testing.assert_array_equal(decoded.image, depth)
    assert np.shares_memory(decoded.image, np.frombuffer(data, dtype=np.uint8))
    assert not decoded.image.flags.writeable


@pytest.mark.parametrize("bigendian", [0, 1])
def test_16uc1_depth_in_millimetres_stays_unscaled(bigendian) -> None:
    depth = RNG.integers(0, 10_000, size=(3, 5, 1), dtype=np.uint16)
    data = as_message_buffer(depth.astype(">u2" if bigendian else "<u2"), 10)
    decoded = decode_raw(3, 5, "16UC1", bigendian, 10, data, ImageFormat.NATIVE)
    assert decoded.encoding == "16UC1" and decoded.image.dtype == np.uint16
    assert decoded.copied == bool(bigendian)
    np.testing.assert_array_equal(decoded.image, depth)
    assert decode_raw(3, 5, "16UC1", bigendian, 10, data).encoding == "mono8"  # the 8-bit default


@pytest.mark.parametrize(("encoding", "dtype", "channels"), [
    ("8UC2", np.uint8, 2), ("8SC1", np.int8, 1), ("16SC1", np.int16, 1), ("32SC1", np.int32, 1),
    ("64FC1", np.float64, 1), ("32FC2", np.float32, 2), ("16UC3", np.uint16, 3), ("mono16", np.uint16, 1),
    ("bgr16", np.uint16, 3), ("rgba16", np.uint16, 4),
])
def test_typed_encodings_keep_their_dtype_and_channels_in_native_format(encoding, dtype, channels) -> None:
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else np.finfo(dtype)
    values = RNG.uniform(max(info.min, -1e6), min(info.max, 1e6), size=(3, 4, channels)).astype(dtype)
    itemsize = np.dtype(dtype).itemsize
    data = as_message_buffer(values, 4 * channels * itemsize)
    decoded = decode_raw(3, 4, encoding, 0, 4 * channels * itemsize, data, ImageFormat.NATIVE)
    assert decoded.encoding == encoding and decoded.image.dtype == dtype
    np.testing.assert_array_equal(decoded.image, values)
