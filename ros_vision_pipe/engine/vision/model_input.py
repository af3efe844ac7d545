"""The input of a whole-image model in one ``vp`` call: ``model_input``.

Most detectors and classifiers want the camera image resized to their input size, in their colour
order, maybe normalised to float32, channels last or first, with a leading batch axis of one: in
``vp`` calls, ``vp.expand_dims(vp.resize(vp.image(ctx, "rgb8"), 300, 300), 1)`` and more. Each
call crosses from Lua into Python and back, which costs more than the work itself on a small input
(docs/performance.md, "Third round"); ``model_input`` does the chain in one call, with the same
result, value for value (tested against the chain).

A conversion that only reorders channels (``rgb8`` <-> ``bgr8``, ``rgba8`` <-> ``bgra8``) is made
after the resize, on the smaller image: resizing works on each channel alone, so the values are the
same. Every other conversion (to or from ``mono8``, adding or dropping alpha) is made first, as the
chain would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import as_bool, as_image, as_opts, describe, fail
from ros_vision_pipe.engine.vision.crop_batch import MAX_BATCH_BYTES
from ros_vision_pipe.engine.vision.image import (
    _COLOR_CODES,
    ENCODING_CHANNELS,
    _interp,
    _with_channels,
    convert_color,
    image_size,
)
from ros_vision_pipe.engine.vision.tensor import Normalization

#: Layouts ``model_input`` makes.
LAYOUTS = ("nhwc", "nchw")

_OPTIONS = ("src", "dst", "interp", "normalize", "layout", "batch")
_NORMALIZE_OPTIONS = ("scale", "mean", "std")
#: Conversions that only reorder the channels: made after the resize.
_CHANNEL_SWAPS = frozenset({("rgb8", "bgr8"), ("bgr8", "rgb8"), ("rgba8", "bgra8"), ("bgra8", "rgba8")})


def model_input(img: Any, w: Any, h: Any, opts: Any = None) -> NDArray[Any]:
    """Resize ``img`` to ``w`` x ``h``, convert its colours, normalise and lay it out as a model input.

    The same values as the chain (``src``/``dst`` given, ``normalize`` given, ``layout = "nchw"``)::

        vp.expand_dims(vp.to_chw(vp.normalize(vp.resize(vp.convert_color(img, src, dst), w, h, interp),
                                              normalize)), 1)

    Lua::

        -- SSD: uint8 RGB, [1, 300, 300, 3]
        return vp.model_input(ctx.image, 300, 300, { src = ctx.encoding, dst = "rgb8" })
        -- ImageNet classifier: float32 RGB normalised, [1, 3, 224, 224]
        return vp.model_input(ctx.image, 224, 224, { src = ctx.encoding, dst = "rgb8", layout = "nchw",
          normalize = { scale = 1 / 255, mean = { 0.485, 0.456, 0.406 }, std = { 0.229, 0.224, 0.225 } } })

    Args:
        img: H x W x C uint8 image.
        w: Input width, pixels (> 0).
        h: Input height, pixels (> 0).
        opts: ``{src = nil, dst = nil, interp = "linear", normalize = nil, layout = "nhwc",
            batch = true}``: ``src`` and ``dst`` (together) the encodings of ``img`` and of the input
            (as ``vp.convert_color``); ``interp`` as ``vp.resize``; ``normalize`` as
            ``vp.normalize``'s options (``scale``, ``mean``, ``std``, per channel or scalar; the input
            is then float32); ``layout`` "nhwc" or "nchw"; ``batch`` adds the leading axis of one.

    Returns:
        [1, h, w, C] (``nhwc``) or [1, C, h, w] (``nchw``) uint8, or float32 with ``normalize``;
        without the leading 1 when ``batch`` is false.

    Raises:
        VisionOpError: a bad size, option, encoding, interpolation or normalisation, or an image
            whose channels do not match ``src``.
    """
    op = "model_input"
    recipe = InputRecipe.from_options(w, h, opts, op)
    return recipe.make(as_image(img, op), recipe.src)


class InputRecipe:
    """``model_input``'s size and options, checked once: what a built-in preprocess step
    (``vp.steps.model_input``) applies to every frame, with the frame's encoding as ``src``.

    Attributes:
        width, height: Input size, pixels.
        src: Encoding of the images (None: given to ``make``, or no conversion when ``dst`` is None).
        dst: Encoding of the input (None: the image's, unconverted).
        op: The op named in errors.
    """

    __slots__ = ("width", "height", "src", "dst", "_flag", "_layout", "_batch", "_normalize", "_normalizations",
                 "op")

    def __init__(self, width: int, height: int, src: str | None, dst: str | None, flag: int, layout: str,
                 batch: bool, normalize: Mapping[str, Any] | None, op: str) -> None:
        """Options already checked (``from_options``)."""
        self.width, self.height, self.src, self.dst = width, height, src, dst
        self._flag, self._layout, self._batch, self._normalize = flag, layout, batch, normalize
        self._normalizations: dict[int, Normalization] = {}
        self.op = op

    @classmethod
    def from_options(cls, w: Any, h: Any, opts: Any, op: str, *, src_per_image: bool = False) -> InputRecipe:
        """Check ``model_input``'s size and options; with ``src_per_image``, ``opts.src`` is not
        taken (each image's encoding is given to ``make``) and ``dst`` alone converts.

        Raises:
            VisionOpError: a bad size, option, encoding, interpolation, layout or normalisation.
        """
        width, height = image_size(w, h, op)
        options = as_opts(opts, op, _OPTIONS[1:] if src_per_image else _OPTIONS)
        src, dst = options.get("src"), options.get("dst")
        if not src_per_image and (src is None) != (dst is None):
            raise fail(op, f"opts.src and opts.dst go together, got src = {describe(src)}, dst = {describe(dst)}")
        for name, encoding in (("src", src), ("dst", dst)):
            if encoding is not None and (not isinstance(encoding, str) or encoding not in ENCODING_CHANNELS):
                raise fail(op, f"opts.{name} must be one of {sorted(ENCODING_CHANNELS)}, got {describe(encoding)}")
        flag = _interp(options.get("interp", "linear"), op)
        layout = options.get("layout", "nhwc")
        if not isinstance(layout, str) or layout not in LAYOUTS:
            raise fail(op, f"opts.layout must be one of {list(LAYOUTS)}, got {describe(layout)}")
        batch = as_bool(options.get("batch", True), op, "opts.batch")
        normalize = options.get("normalize")
        if normalize is not None and normalize != [] and not isinstance(normalize, Mapping):
            raise fail(op, f"opts.normalize must be a table {{scale =, mean =, std =}}, got {describe(normalize)}")
        recipe = cls(width, height, src, dst, flag, layout, batch,
                     None if normalize is None else as_opts(normalize, op, _NORMALIZE_OPTIONS), op)
        if recipe.max_bytes > MAX_BATCH_BYTES:  # refused before anything is allocated
            channels = "" if dst is not None else "up to "
            raise fail(op, f"a {width} x {height} x {channels}{recipe._channels_bound} "
                           f"{'float32' if normalize is not None else 'uint8'} input would take "
                           f"{recipe.max_bytes / 2**20:.1f} MiB, more than the {MAX_BATCH_BYTES >> 20} MiB "
                           f"an input may hold")
        if dst is not None:  # the input's channels are known: its normalisation is checked now
            recipe._normalization(ENCODING_CHANNELS[dst])
        return recipe

    @property
    def _channels_bound(self) -> int:
        return ENCODING_CHANNELS[self.dst] if self.dst is not None else 4

    @property
    def max_bytes(self) -> int:
        """The most bytes one input takes (4 channels when the image's own count is kept)."""
        itemsize = 4 if self._normalize is not None else 1
        return self.width * self.height * self._channels_bound * itemsize

    def _normalization(self, channels: int) -> Normalization | None:
        if self._normalize is None:
            return None
        normalization = self._normalizations.get(channels)
        if normalization is None:
            normalization = Normalization.from_options(self._normalize, channels, (channels,), self.op,
                                                       "opts.normalize")
            self._normalizations[channels] = normalization
        return normalization

    def make(self, image: NDArray[Any], src: str | None) -> NDArray[Any]:
        """The input made from ``image`` (H x W x C uint8, ``as_image``) in encoding ``src``.

        Raises:
            VisionOpError: ``src`` is not an image encoding, or ``image``'s channels do not match it.
        """
        op, dst = self.op, self.dst
        swap = None
        if dst is not None:
            if not isinstance(src, str) or src not in ENCODING_CHANNELS:
                raise fail(op, f"opts.src must be one of {sorted(ENCODING_CHANNELS)}, got {describe(src)}")
            if image.shape[2] != ENCODING_CHANNELS[src]:
                raise fail(op, f"img has {image.shape[2]} channels but opts.src {src!r} needs {ENCODING_CHANNELS[src]}")
            if (src, dst) in _CHANNEL_SWAPS:
                swap = _COLOR_CODES[(src, dst)]
            elif src != dst:
                image = convert_color(image, src, dst)
        normalization = self._normalization(image.shape[2])
        result: NDArray[Any] = _with_channels(cv2.resize(image, (self.width, self.height), interpolation=self._flag), 3)
        if swap is not None:
            result = cv2.cvtColor(result, swap)
        if normalization is not None:
            normalized = np.empty(result.shape, np.float32)
            normalization.apply(result, normalized)
            result = normalized
        if self._layout == "nchw":
            result = np.ascontiguousarray(result.transpose(2, 0, 1))
        return result[None] if self._batch else result


__all__ = ["LAYOUTS", "InputRecipe", "model_input"]
