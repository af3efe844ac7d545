"""FrameContext: the per-frame record every model reads and writes (docs/execution-modes.md, Context)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ros_vision_pipe.engine.errors import InputError

#: Image encodings the engine accepts, with their channel count.
ENCODING_CHANNELS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}
#: Typed encodings (depth, thermal, raw 16-bit...): H x W x C arrays of their own dtype.
TYPED_ENCODINGS: dict[str, tuple[np.dtype[Any], int]] = {
    "mono16": (np.dtype(np.uint16), 1), "rgb16": (np.dtype(np.uint16), 3), "bgr16": (np.dtype(np.uint16), 3),
    "rgba16": (np.dtype(np.uint16), 4), "bgra16": (np.dtype(np.uint16), 4),
    **{f"{depth}C{n}": (np.dtype(dtype), n)
       for depth, dtype in {"8U": np.uint8, "8S": np.int8, "16U": np.uint16, "16S": np.int16,
                            "32S": np.int32, "32F": np.float32, "64F": np.float64}.items()
       for n in (1, 2, 3, 4)},
}


def encoding_layout(encoding: str) -> tuple[np.dtype[Any], int] | None:
    """(dtype, channels) of an engine encoding, or None if the engine does not accept it."""
    if encoding in ENCODING_CHANNELS:
        return np.dtype(np.uint8), ENCODING_CHANNELS[encoding]
    return TYPED_ENCODINGS.get(encoding)


def validate_image(image: Any, encoding: str, *, source: str, frame_id: int) -> np.ndarray:
    """Check that ``image`` is an H x W x C array matching ``encoding``.

    Args:
        image: The candidate image.
        encoding: One of ``ENCODING_CHANNELS`` (uint8 colour/mono) or ``TYPED_ENCODINGS``
            (``32FC1`` depth in metres, ``16UC1`` depth in millimetres, ``mono16``...).
        source: Source name, for the error message.
        frame_id: Frame index, for the error message.

    Returns:
        The image, unchanged.

    Raises:
        InputError: The image is not an ndarray, not of the encoding's dtype, not 3-D, empty,
            or its channel count does not match the encoding.
    """
    where = f"(source {source!r}, frame {frame_id})"
    layout = encoding_layout(encoding)
    if layout is None:
        raise InputError(
            f"unsupported image encoding {encoding!r} {where}; expected one of "
            f"{sorted(ENCODING_CHANNELS)} or a typed one ({', '.join(sorted(TYPED_ENCODINGS))})"
        )
    dtype, expected_channels = layout
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy.ndarray, got {type(image).__name__} {where}")
    if image.dtype != dtype or image.ndim != 3:
        raise InputError(
            f"image must be H x W x C {dtype}, got {image.dtype} with shape {image.shape} {where}"
        )
    height, width, channels = image.shape
    if height == 0 or width == 0:
        raise InputError(f"image is empty: shape {image.shape} {where}")
    if channels != expected_channels:
        raise InputError(
            f"image has {channels} channels but encoding {encoding!r} needs "
            f"{expected_channels} {where}"
        )
    return image


@dataclass
class FrameContext:
    """One frame travelling through the pipeline.

    Created by the pipeline for each frame of each source, filled model by model
    (``results``), and released when the frame's result has been produced.
    Lua scripts see it read-only; a model only writes its own result, through the
    value its ``postprocess`` returns.

    Attributes:
        frame_id: Frame index within its source (int64).
        timestamp: Capture time, seconds.
        image: H x W x C image (read-only view): uint8 for ``rgb8``, ``bgr8``, ``mono8``, ``rgba8``,
            ``bgra8``; the dtype of a typed encoding otherwise (``32FC1`` float32 metres...).
        encoding: Encoding of ``image`` (``ENCODING_CHANNELS`` or ``TYPED_ENCODINGS``).
        source: Video path, camera id or topic the frame came from.
        results: Model name -> result, filled in model order.
    """

    frame_id: int
    image: np.ndarray
    encoding: str = "rgb8"
    source: str = "default"
    timestamp: float = field(default_factory=time.time)
    results: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        frame_id: int,
        image: Any,
        *,
        encoding: str = "rgb8",
        source: str = "default",
        timestamp: float | None = None,
    ) -> FrameContext:
        """Validate the image and build a context around a read-only view of it."""
        checked = validate_image(image, encoding, source=source, frame_id=frame_id)
        return cls.from_checked(frame_id, checked, encoding=encoding, source=source, timestamp=timestamp)

    @classmethod
    def from_checked(
        cls,
        frame_id: int,
        checked: np.ndarray,
        *,
        encoding: str = "rgb8",
        source: str = "default",
        timestamp: float | None = None,
    ) -> FrameContext:
        """Build a context around a read-only view of an image ``validate_image`` returned."""
        view = checked.view()
        view.flags.writeable = False
        return cls(
            frame_id=int(frame_id),
            image=view,
            encoding=encoding,
            source=source,
            timestamp=time.time() if timestamp is None else float(timestamp),
        )

    @property
    def original_size(self) -> tuple[int, int]:
        """(width, height) of the image as it entered the pipeline."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def metadata(self) -> dict[str, Any]:
        """Spec 3.1 metadata: ``source`` and ``original_size`` (w, h)."""
        return {"source": self.source, "original_size": self.original_size}
