"""The batched input of a per-box model in one ``vp`` call: ``crop_batch``.

A per-box model (a pose, face-landmark or re-identification model after a detector) wants
every box of the detector cropped, resized and normalised into one float tensor, and the
crop transforms to map its outputs back. ``crop_batch`` does this crop by crop into one
preallocated float32 batch, without the uint8 batch and the float temporaries that
``crop_boxes`` + ``normalize`` (+ ``to_chw``) make (the batch itself is a reused one when an
earlier call's batch is no longer referenced: ``buffers.py``), and returns the transforms as
one [N, 4] tensor that ``map_points`` / ``map_boxes`` take whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import as_image, as_opts, describe, fail
from ros_vision_pipe.engine.vision.buffers import REUSED_BUFFERS
from ros_vision_pipe.engine.vision.image import CropWindows, boxes_xyxy, image_size
from ros_vision_pipe.engine.vision.tensor import Normalization

#: Largest batch ``crop_batch`` builds, bytes (a script's memory limit is checked afterwards;
#: this refuses a count or size that could not be allocated at all before trying).
MAX_BATCH_BYTES = 1 << 30

#: Layouts of the batch ``crop_batch`` returns.
LAYOUTS = ("nhwc", "nchw")

_OPTIONS = ("scale", "square", "pad_value", "interp", "normalize", "layout")
_NORMALIZE_OPTIONS = ("scale", "mean", "std")


def crop_batch(img: Any, boxes: Any, w: Any, h: Any,
               opts: Any = None) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Crop, resize and normalise every box into one float32 batch, with the crops' transforms.

    The crops are those of ``crop_boxes`` (same options, same pixels); each is normalised as
    ``normalize`` does, ``(x * scale - mean) / std``, straight into its place in the batch.
    ``boxes`` may be a detector's detection list as it is (``ctx.results.person.detections``).
    The transforms come back as one [N, 4] tensor of rows ``x0, y0, sx, sy``
    (``x_original = x0 + x_crop * sx``), for ``vp.map_points`` / ``vp.map_boxes`` to map all the
    crops' outputs back in one call.

    Lua::

        local people = ctx.results.person.detections
        local batch, tf = vp.crop_batch(vp.image(ctx, "rgb8"), people, 256, 256,
                                        { scale = 1.25, square = true, normalize = { scale = 1 / 255 } })
        -- batch: float32 [N, 256, 256, 3]; tf: [N, 4]
        -- in postprocess: local kps = vp.map_points(landmarks, tf)   -- landmarks [N, K, D]

    Args:
        img: H x W x C uint8 image.
        boxes: A list of detections or of box tables, or an [N, 4] x1, y1, x2, y2 tensor.
        w: Crop width, pixels.
        h: Crop height, pixels.
        opts: ``{scale = 1.0, square = false, pad_value = 0, interp = "linear",
            normalize = {scale = 1, mean = 0, std = 1}, layout = "nhwc"}``: the crop options
            of ``crop_boxes``; ``normalize``'s mean and std are numbers or one per channel;
            layout "nhwc" ([N, h, w, C]) or "nchw" ([N, C, h, w]).

    Returns:
        ``(batch, transforms)``: float32 [N, h, w, C] (or [N, C, h, w]) and float64 [N, 4]
        (both with N = 0 for an empty list).

    Raises:
        VisionOpError: bad image, boxes, size or options, a box of zero width or height, or
            a batch larger than ``MAX_BATCH_BYTES``.
    """
    op = "crop_batch"
    width, height = image_size(w, h, op)
    image = as_image(img, op)
    channels = image.shape[2]
    options = as_opts(opts, op, _OPTIONS)
    window = CropWindows.from_options(options, channels, op)
    layout = options.get("layout", "nhwc")
    if not isinstance(layout, str) or layout not in LAYOUTS:
        raise fail(op, f"opts.layout must be one of {list(LAYOUTS)}, got {describe(layout)}")
    channels_first = layout == "nchw"
    normalize = options.get("normalize")
    if normalize is not None and normalize != [] and not isinstance(normalize, Mapping):
        raise fail(op, f"opts.normalize must be a table {{scale =, mean =, std =}}, got {describe(normalize)}")
    normalization = Normalization.from_options(
        as_opts(normalize, op, _NORMALIZE_OPTIONS), channels,
        (channels, 1, 1) if channels_first else (channels,), op, "opts.normalize")
    xyxy = boxes_xyxy(boxes, op)
    size = len(xyxy) * height * width * channels * 4
    if size > MAX_BATCH_BYTES:
        raise fail(op, f"{len(xyxy)} crops of {width} x {height} x {channels} float32 would take "
                       f"{size / 2**20:.1f} MiB, more than the {MAX_BATCH_BYTES >> 20} MiB a batch may hold")
    transforms = window.place(xyxy, width, height, op)
    shape = (channels, height, width) if channels_first else (height, width, channels)
    batch = REUSED_BUFFERS.take((len(xyxy), *shape), np.float32)
    for index in range(len(xyxy)):
        crop = window.warp(image, transforms[index], width, height)
        normalization.apply(crop.transpose(2, 0, 1) if channels_first else crop, batch[index])
    return batch, transforms

