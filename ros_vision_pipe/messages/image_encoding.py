"""ROS image payloads -> numpy images the engine accepts, without ROS and without cv_bridge.

Two entry points, both ROS-free so that the node and bag replay share them:

* ``decode_raw(height, width, encoding, is_bigendian, step, data, image_format)`` takes the fields
  of a ``sensor_msgs/Image``. Every encoding of ``RAW_LAYOUTS`` is accepted; what comes out depends
  on the input's ``ImageFormat`` (docs/ros.md has the table):

  - ``ImageFormat.EIGHT_BIT`` (default): an H x W x C uint8 colour or mono image. 8-bit
    encodings are a view of ``data`` (no copy, row padding handled with strides); 16-bit ones are
    scaled (``value >> 8``, a copy); ``yuv422``/``uyvy``, ``yuv422_yuy2``/``yuyv`` and the eight
    bayer encodings are converted to ``bgr8`` with the OpenCV calls cv_bridge makes
    (pixel-identical to ``cv_bridge.imgmsg_to_cv2(msg, "bgr8")``). Data that is not an image
    (``32FC1``, ``8UC2``, ``16SC1``...) is refused, naming ``native``.
  - ``ImageFormat.NATIVE``: the data keeps its type: ``32FC1`` depth in metres as float32,
    ``16UC1`` depth in millimetres as uint16 (unscaled), ``8UC2``, ``64FC1``... as H x W x C
    arrays of their dtype (a view when the byte order is the machine's); 8-bit encodings as above;
    16-bit bayer demosaiced to ``bgr16``.

* ``decode_compressed(format, data)`` decodes a ``sensor_msgs/CompressedImage`` (JPEG, PNG,
  anything OpenCV reads) into ``bgr8``, ``bgra8`` or ``mono8``.

Every inconsistency (step shorter than a row, data size != step * height, empty image,
unsupported encoding, undecodable bytes) raises ``ImageDecodeError``, an ``InputError`` whose
message names the encoding and the sizes.

Example::

    decoded = decode_raw(msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data)
    pipeline.run(decoded.image, encoding=decoded.encoding)
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from enum import Enum
from typing import Literal, Union

import numpy as np

from ros_vision_pipe.engine.errors import InputError

#: What a message's ``data`` field may be: rclpy gives ``array.array('B')``, rosbags an ndarray.
BufferLike = Union[bytes, bytearray, memoryview, "array.array[int]", np.ndarray]


class ImageDecodeError(InputError):
    """An image message cannot be turned into an engine image."""


class ImageFormat(Enum):
    """What an input's images become (the node's ``image_format`` parameter, per input).

    Attributes:
        EIGHT_BIT: H x W x C uint8 colour/mono images (``rgb8``, ``bgr8``, ``mono8``, ``rgba8``,
            ``bgra8``); 16-bit data scaled to 8 bits; non-image data refused.
        NATIVE: Data keeps its type and channel count (depth, thermal, flow, raw 16-bit).
    """

    EIGHT_BIT = "8bit"
    NATIVE = "native"


class Kind(Enum):
    """How an encoding is turned into an engine image."""

    PLAIN = "plain"  # channels stored as they are (a view or a byte swap)
    YUV422 = "yuv422"  # 2 bytes per pixel, converted with cv2.cvtColor
    BAYER = "bayer"  # 1 channel mosaic, demosaiced with cv2.cvtColor


@dataclass(frozen=True)
class RawLayout:
    """How one ROS encoding lays out a pixel.

    Attributes:
        channels: Channels per pixel in the message (2 for yuv422, 1 for bayer).
        bytes_per_channel: 1, 2, 4 or 8.
        engine_encoding: Encoding of the image handed to the engine in ``ImageFormat.EIGHT_BIT``
            ("" when the data is not an image and needs ``NATIVE``).
        dtype: numpy type of one channel (``"u1"``, ``"u2"``, ``"i2"``, ``"f4"``...).
        native_encoding: Encoding handed to the engine in ``ImageFormat.NATIVE``.
        kind: Stored as is, yuv422 or bayer.
        cv_code: Name of the ``cv2.COLOR_*`` conversion to BGR (the code cv_bridge uses), or "".
    """

    channels: int
    bytes_per_channel: int
    engine_encoding: str
    dtype: str = "u1"
    native_encoding: str = ""
    kind: Kind = Kind.PLAIN
    cv_code: str = ""

    def output_encoding(self, image_format: ImageFormat) -> str:
        """The engine encoding of a decoded image in ``image_format`` ("" if refused)."""
        if image_format is ImageFormat.NATIVE:
            return self.native_encoding or self.engine_encoding
        return self.engine_encoding


def _generic_layouts() -> dict[str, RawLayout]:
    """cv_bridge's generic ``(8U|8S|16U|16S|32S|32F|64F)C<n>`` encodings, n = 1..4."""
    depths = {"8U": "u1", "8S": "i1", "16U": "u2", "16S": "i2", "32S": "i4", "32F": "f4", "64F": "f8"}
    eight_bit = {"8UC1": "mono8", "8UC3": "bgr8", "8UC4": "bgra8", "16UC1": "mono8"}
    native = {"8UC1": "mono8", "8UC3": "bgr8", "8UC4": "bgra8"}  # OpenCV's channel order, as cv_bridge assumes
    out = {}
    for depth, dtype in depths.items():
        for channels in (1, 2, 3, 4):
            name = f"{depth}C{channels}"
            out[name] = RawLayout(channels, np.dtype(dtype).itemsize, eight_bit.get(name, ""), dtype,
                                  native.get(name, name))
    return out


_BAYER_CODES = {"rggb": "COLOR_BayerBG2BGR", "bggr": "COLOR_BayerRG2BGR",
                "gbrg": "COLOR_BayerGR2BGR", "grbg": "COLOR_BayerGB2BGR"}  # cv_bridge's getConversionCodes

#: ROS ``sensor_msgs/image_encodings`` names this module decodes.
RAW_LAYOUTS: dict[str, RawLayout] = {
    "rgb8": RawLayout(3, 1, "rgb8"),
    "bgr8": RawLayout(3, 1, "bgr8"),
    "rgba8": RawLayout(4, 1, "rgba8"),
    "bgra8": RawLayout(4, 1, "bgra8"),
    "mono8": RawLayout(1, 1, "mono8"),
    "mono16": RawLayout(1, 2, "mono8", "u2", "mono16"),
    "rgb16": RawLayout(3, 2, "rgb8", "u2", "rgb16"),
    "bgr16": RawLayout(3, 2, "bgr8", "u2", "bgr16"),
    "rgba16": RawLayout(4, 2, "rgba8", "u2", "rgba16"),
    "bgra16": RawLayout(4, 2, "bgra8", "u2", "bgra16"),
    **_generic_layouts(),
    "yuv422": RawLayout(2, 1, "bgr8", kind=Kind.YUV422, cv_code="COLOR_YUV2BGR_UYVY"),
    "uyvy": RawLayout(2, 1, "bgr8", kind=Kind.YUV422, cv_code="COLOR_YUV2BGR_UYVY"),
    "yuv422_yuy2": RawLayout(2, 1, "bgr8", kind=Kind.YUV422, cv_code="COLOR_YUV2BGR_YUY2"),
    "yuyv": RawLayout(2, 1, "bgr8", kind=Kind.YUV422, cv_code="COLOR_YUV2BGR_YUY2"),
    **{f"bayer_{order}8": RawLayout(1, 1, "bgr8", kind=Kind.BAYER, cv_code=code)
       for order, code in _BAYER_CODES.items()},
    **{f"bayer_{order}16": RawLayout(1, 2, "bgr8", "u2", "bgr16", Kind.BAYER, code)
       for order, code in _BAYER_CODES.items()},
}


@dataclass(frozen=True)
class DecodedImage:
    """An image ready for ``Pipeline.run``/``submit``.

    Attributes:
        image: H x W x C array (uint8 in ``ImageFormat.EIGHT_BIT``); a read-only view of the
            message buffer when ``copied`` is False.
        encoding: Engine encoding of ``image`` (``rgb8``, ``bgr8``, ``mono8``, ``rgba8``, ``bgra8``,
            or a typed one such as ``32FC1``, ``16UC1``, ``mono16``, ``bgr16``).
        copied: Whether the pixels were copied out of the message buffer.
    """

    image: np.ndarray
    encoding: str
    copied: bool


def _describe(encoding: str, height: int, width: int, step: int, size: int) -> str:
    return f"encoding {encoding!r}, {width}x{height} px, step {step} B, data {size} B"


def _readonly(image: np.ndarray) -> np.ndarray:
    if image.flags.writeable:
        image = image.view()
        image.flags.writeable = False
    return image


def _channels_view(buffer: np.ndarray, layout: RawLayout, height: int, width: int, step: int,
                   bigendian: bool) -> tuple[np.ndarray, bool]:
    """H x W x C view of ``buffer`` in the machine's byte order: (array, copied)."""
    size = layout.bytes_per_channel
    order: Literal[">", "<"] = ">" if bigendian else "<"
    dtype = np.dtype(layout.dtype).newbyteorder(order if size > 1 else "|")
    view = np.ndarray(shape=(height, width, layout.channels), dtype=dtype, buffer=buffer,
                      strides=(step, layout.channels * size, size))
    if size > 1 and (order == ">") != (sys.byteorder == "big"):
        return view.astype(dtype.newbyteorder("="), copy=True), True
    return _readonly(view), False


def decode_raw(
    height: int, width: int, encoding: str, is_bigendian: int | bool, step: int, data: BufferLike,
    image_format: ImageFormat = ImageFormat.EIGHT_BIT,
) -> DecodedImage:
    """Turn the fields of a ``sensor_msgs/Image`` into an engine image.

    Args:
        height: Rows.
        width: Columns.
        encoding: ROS encoding name (see ``RAW_LAYOUTS``).
        is_bigendian: Byte order of multi-byte channels (ignored for 8-bit encodings).
        step: Bytes per row, padding included (>= width * bytes per pixel).
        data: The pixel buffer (``array.array('B')``, ``bytes``, ``memoryview``, ndarray...);
            exactly ``step * height`` bytes.
        image_format: What the image becomes (``ImageFormat``; the module docstring has the rules).

    Returns:
        The decoded image; stored-as-is encodings in the machine's byte order share ``data``'s
        memory (read-only).

    Raises:
        ImageDecodeError: Unsupported encoding, data that needs ``ImageFormat.NATIVE``, empty
            image, step shorter than a row, a step that is not a whole number of channels, a data
            size != step * height, or an odd width for yuv422.
    """
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.dtype != np.uint8:
        buffer = buffer.view(np.uint8)
    size = int(buffer.size)

    def what() -> str:  # for the messages: formatted only when one is raised
        return _describe(encoding, height, width, step, size)

    layout = RAW_LAYOUTS.get(encoding)
    if layout is None:
        raise ImageDecodeError(f"unsupported image encoding ({what()}); expected one of {sorted(RAW_LAYOUTS)}")
    target = layout.output_encoding(image_format)
    if not target:
        raise ImageDecodeError(
            f"encoding {encoding!r} is not an 8-bit image ({what()}); set the input's image_format to "
            f"{ImageFormat.NATIVE.value!r} to pass it to the scripts as a {np.dtype(layout.dtype).name} tensor")
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image ({what()})")
    row = width * layout.channels * layout.bytes_per_channel
    if step < row:
        raise ImageDecodeError(f"step is shorter than a row of {row} B ({what()})")
    if step % layout.bytes_per_channel:
        raise ImageDecodeError(f"step is not a multiple of the {layout.bytes_per_channel}-byte channel ({what()})")
    if size != step * height:
        raise ImageDecodeError(f"data size is not step * height = {step * height} B ({what()})")
    if layout.kind is Kind.YUV422 and width % 2:
        raise ImageDecodeError(f"yuv422 needs an even width ({what()})")
    image, copied = _channels_view(buffer, layout, height, width, step, bool(is_bigendian))
    if layout.kind is not Kind.PLAIN:  # cv_bridge: cvtColor(code), then convertTo(8U, 255/65535) if 16-bit
        image = cv2.cvtColor(image if layout.kind is Kind.YUV422 else image[:, :, 0], getattr(cv2, layout.cv_code))
        if image.dtype == np.uint16 and target == "bgr8":
            image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
        return DecodedImage(image, target, copied=True)
    if image.dtype == np.uint16 and image_format is ImageFormat.EIGHT_BIT:
        return DecodedImage((image >> 8).astype(np.uint8), target, copied=True)
    return DecodedImage(image, target, copied=copied)


def decode_compressed(fmt: str, data: BufferLike) -> DecodedImage:
    """Decode the payload of a ``sensor_msgs/CompressedImage`` with OpenCV.

    Args:
        fmt: The message's ``format`` (``"jpeg"``, ``"png"``, ``"bgr8; jpeg compressed bgr8"``...);
            used in error messages only: OpenCV detects the codec from the bytes.
        data: The compressed bytes.

    Returns:
        A ``bgr8``, ``bgra8`` or ``mono8`` image (16-bit PNGs scaled to 8 bits).

    Raises:
        ImageDecodeError: Empty payload, a ``compressedDepth`` payload, or bytes OpenCV cannot decode.
    """
    import cv2

    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    what = f"format {fmt!r}, data {buffer.size} B"
    if buffer.size == 0:
        raise ImageDecodeError(f"empty compressed image ({what})")
    if "compresseddepth" in fmt.replace(" ", "").lower():
        raise ImageDecodeError(f"unsupported compressed format ({what}): compressedDepth is not decoded")
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageDecodeError(f"corrupt or undecodable compressed image ({what})")
    if image.dtype == np.uint16:
        image = np.right_shift(image, 8).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ImageDecodeError(f"compressed image decodes to {image.dtype}, expected 8 or 16 bits ({what})")
    if image.ndim == 2:
        image = image[:, :, None]
    encoding = {1: "mono8", 3: "bgr8", 4: "bgra8"}.get(image.shape[2])
    if encoding is None:
        raise ImageDecodeError(f"compressed image has {image.shape[2]} channels ({what})")
    return DecodedImage(image, encoding, copied=True)


def encode_raw(image: np.ndarray, encoding: str) -> tuple[int, int, int, bytes]:
    """The inverse of ``decode_raw`` for 8-bit images: ``(height, width, step, data)``.

    Used by publishers (camera stand-ins, tests, benchmarks) to fill a ``sensor_msgs/Image``.

    Raises:
        ImageDecodeError: ``image`` is not H x W (x C) uint8 matching ``encoding``.
    """
    layout = RAW_LAYOUTS.get(encoding)
    array = image[:, :, None] if image.ndim == 2 else image
    if layout is None or layout.bytes_per_channel != 1 or array.dtype != np.uint8 or array.ndim != 3 \
            or array.shape[2] != layout.channels:
        raise ImageDecodeError(
            f"cannot encode a {image.dtype} image of shape {image.shape} as {encoding!r}"
        )
    height, width, channels = array.shape
    return height, width, width * channels, np.ascontiguousarray(array).tobytes()


__all__ = [
    "RAW_LAYOUTS",
    "BufferLike",
    "DecodedImage",
    "ImageDecodeError",
    "RawLayout",
    "decode_compressed",
    "decode_raw",
    "encode_raw",
]
