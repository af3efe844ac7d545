"""ROS image payloads -> numpy images the engine accepts, without ROS and without cv_bridge.

Two entry points, both ROS-free so that the node and bag replay share them:

* ``decode_raw(height, width, encoding, is_bigendian, step, data)`` takes the fields of a
  ``sensor_msgs/Image`` and returns an H x W x C uint8 view of ``data`` whenever the layout
  allows (8-bit encodings: no copy, row padding handled with strides). 16-bit encodings
  are scaled to 8 bits (``value >> 8``, a copy), honouring ``is_bigendian``.
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
from dataclasses import dataclass
from typing import Union

import numpy as np

from ros_vision_pipe.engine.errors import InputError

#: What a message's ``data`` field may be: rclpy gives ``array.array('B')``, rosbags an ndarray.
BufferLike = Union[bytes, bytearray, memoryview, "array.array[int]", np.ndarray]


class ImageDecodeError(InputError):
    """An image message cannot be turned into an engine image."""


@dataclass(frozen=True)
class RawLayout:
    """How one ROS encoding lays out a pixel.

    Attributes:
        channels: Channels per pixel.
        bytes_per_channel: 1 or 2.
        engine_encoding: Encoding of the decoded image handed to the engine.
    """

    channels: int
    bytes_per_channel: int
    engine_encoding: str


#: ROS ``sensor_msgs/image_encodings`` names this module decodes.
RAW_LAYOUTS: dict[str, RawLayout] = {
    "rgb8": RawLayout(3, 1, "rgb8"),
    "bgr8": RawLayout(3, 1, "bgr8"),
    "rgba8": RawLayout(4, 1, "rgba8"),
    "bgra8": RawLayout(4, 1, "bgra8"),
    "mono8": RawLayout(1, 1, "mono8"),
    "8UC1": RawLayout(1, 1, "mono8"),
    "8UC3": RawLayout(3, 1, "bgr8"),  # OpenCV's channel order, as cv_bridge assumes
    "8UC4": RawLayout(4, 1, "bgra8"),
    "mono16": RawLayout(1, 2, "mono8"),
    "16UC1": RawLayout(1, 2, "mono8"),
    "rgb16": RawLayout(3, 2, "rgb8"),
    "bgr16": RawLayout(3, 2, "bgr8"),
    "rgba16": RawLayout(4, 2, "rgba8"),
    "bgra16": RawLayout(4, 2, "bgra8"),
}


@dataclass(frozen=True)
class DecodedImage:
    """An image ready for ``Pipeline.run``/``submit``.

    Attributes:
        image: H x W x C uint8 array; a view of the message buffer when ``copied`` is False.
        encoding: Engine encoding of ``image`` (``rgb8``, ``bgr8``, ``mono8``, ``rgba8``, ``bgra8``).
        copied: Whether the pixels were copied out of the message buffer.
    """

    image: np.ndarray
    encoding: str
    copied: bool


def _describe(encoding: str, height: int, width: int, step: int, size: int) -> str:
    return f"encoding {encoding!r}, {width}x{height} px, step {step} B, data {size} B"


def decode_raw(
    height: int, width: int, encoding: str, is_bigendian: int | bool, step: int, data: BufferLike
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

    Returns:
        The decoded image; 8-bit encodings share ``data``'s memory (read-only).

    Raises:
        ImageDecodeError: Unsupported encoding, empty image, step shorter than a row,
            a step that is not a whole number of channels, or a data size != step * height.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1)
    if buffer.dtype != np.uint8:
        buffer = buffer.view(np.uint8)
    size = int(buffer.size)
    what = _describe(encoding, height, width, step, size)
    layout = RAW_LAYOUTS.get(encoding)
    if layout is None:
        raise ImageDecodeError(f"unsupported image encoding ({what}); expected one of {sorted(RAW_LAYOUTS)}")
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"empty image ({what})")
    row = width * layout.channels * layout.bytes_per_channel
    if step < row:
        raise ImageDecodeError(f"step is shorter than a row of {row} B ({what})")
    if step % layout.bytes_per_channel:
        raise ImageDecodeError(f"step is not a multiple of the {layout.bytes_per_channel}-byte channel ({what})")
    if size != step * height:
        raise ImageDecodeError(f"data size is not step * height = {step * height} B ({what})")
    if layout.bytes_per_channel == 1:
        image = np.ndarray(
            shape=(height, width, layout.channels),
            dtype=np.uint8,
            buffer=buffer,
            strides=(step, layout.channels, 1),
        )
        if image.flags.writeable:
            image = image.view()
            image.flags.writeable = False
        return DecodedImage(image, layout.engine_encoding, copied=False)
    dtype = np.dtype(">u2" if is_bigendian else "<u2")
    wide = np.ndarray(
        shape=(height, width, layout.channels),
        dtype=dtype,
        buffer=buffer,
        strides=(step, layout.channels * 2, 2),
    )
    return DecodedImage((wide >> 8).astype(np.uint8), layout.engine_encoding, copied=True)


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
