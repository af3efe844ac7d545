"""FrameContext: the per-frame record every model reads and writes (spec 3.1)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ros_vision_pipe.engine.errors import InputError

#: Image encodings the engine accepts, with their channel count.
ENCODING_CHANNELS: dict[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


def validate_image(image: Any, encoding: str, *, source: str, frame_id: int) -> np.ndarray:
    """Check that ``image`` is an H x W x C uint8 array matching ``encoding``.

    Args:
        image: The candidate image.
        encoding: One of ``ENCODING_CHANNELS``.
        source: Source name, for the error message.
        frame_id: Frame index, for the error message.

    Returns:
        The image, unchanged.

    Raises:
        InputError: The image is not an ndarray, not uint8, not 3-D, empty, or its
            channel count does not match the encoding.
    """
    where = f"(source {source!r}, frame {frame_id})"
    if encoding not in ENCODING_CHANNELS:
        raise InputError(
            f"unsupported image encoding {encoding!r} {where}; expected one of {sorted(ENCODING_CHANNELS)}"
        )
    if not isinstance(image, np.ndarray):
        raise InputError(f"image must be a numpy.ndarray, got {type(image).__name__} {where}")
    if image.dtype != np.uint8 or image.ndim != 3:
        raise InputError(
            f"image must be H x W x C uint8, got {image.dtype} with shape {image.shape} {where}"
        )
    height, width, channels = image.shape
    if height == 0 or width == 0:
        raise InputError(f"image is empty: shape {image.shape} {where}")
    if channels != ENCODING_CHANNELS[encoding]:
        raise InputError(
            f"image has {channels} channels but encoding {encoding!r} needs "
            f"{ENCODING_CHANNELS[encoding]} {where}"
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
        image: H x W x C uint8 image (read-only view).
        encoding: Colour order of ``image`` (``rgb8``, ``bgr8``, ``mono8``, ``rgba8``, ``bgra8``).
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
