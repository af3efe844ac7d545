"""Image operations of ``vp``: colour conversion, resize, letterbox and crops.

Images are H x W x C uint8 arrays (C = 1, 3 or 4); every op returns a new array
and never writes into its input. Geometry uses continuous pixel coordinates:
x right, y down, origin at the top-left corner of the top-left pixel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    as_array,
    as_bool,
    as_float,
    as_image,
    as_int,
    as_opts,
    describe,
    fail,
)
from ros_vision_pipe.engine.vision.formats import CropTransform, LetterboxInfo, box_corners

#: Image encodings and their channel counts (the ROS ``sensor_msgs/Image`` names).
ENCODING_CHANNELS: Mapping[str, int] = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}

#: Interpolation names accepted by ``resize`` and ``crop_boxes``.
INTERPOLATIONS: Mapping[str, int] = {
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST_EXACT,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
}

_COLOR_CODES: Mapping[tuple[str, str], int] = {
    ("rgb8", "bgr8"): cv2.COLOR_RGB2BGR,
    ("rgb8", "mono8"): cv2.COLOR_RGB2GRAY,
    ("rgb8", "rgba8"): cv2.COLOR_RGB2RGBA,
    ("rgb8", "bgra8"): cv2.COLOR_RGB2BGRA,
    ("bgr8", "rgb8"): cv2.COLOR_BGR2RGB,
    ("bgr8", "mono8"): cv2.COLOR_BGR2GRAY,
    ("bgr8", "rgba8"): cv2.COLOR_BGR2RGBA,
    ("bgr8", "bgra8"): cv2.COLOR_BGR2BGRA,
    ("mono8", "rgb8"): cv2.COLOR_GRAY2RGB,
    ("mono8", "bgr8"): cv2.COLOR_GRAY2BGR,
    ("mono8", "rgba8"): cv2.COLOR_GRAY2RGBA,
    ("mono8", "bgra8"): cv2.COLOR_GRAY2BGRA,
    ("rgba8", "rgb8"): cv2.COLOR_RGBA2RGB,
    ("rgba8", "bgr8"): cv2.COLOR_RGBA2BGR,
    ("rgba8", "mono8"): cv2.COLOR_RGBA2GRAY,
    ("rgba8", "bgra8"): cv2.COLOR_RGBA2BGRA,
    ("bgra8", "rgb8"): cv2.COLOR_BGRA2RGB,
    ("bgra8", "bgr8"): cv2.COLOR_BGRA2BGR,
    ("bgra8", "mono8"): cv2.COLOR_BGRA2GRAY,
    ("bgra8", "rgba8"): cv2.COLOR_BGRA2RGBA,
}

#: Interpolation names accepted by ``crop_boxes`` (an affine warp: no "area").
WARP_INTERPOLATIONS: Mapping[str, int] = {
    "linear": cv2.INTER_LINEAR,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}

_CROP_BOXES_OPTIONS = ("scale", "square", "pad_value", "interp")


def _with_channels(array: NDArray[Any], ndim: int) -> NDArray[Any]:
    """Restore the trailing channel axis OpenCV drops from single-channel results."""
    return array[:, :, np.newaxis] if array.ndim == 2 and ndim == 3 else array


def _interp(value: Any, op: str, names: Mapping[str, int] = INTERPOLATIONS) -> int:
    if isinstance(value, str) and value in names:
        return names[value]
    raise fail(op, f"interp must be one of {sorted(names)}, got {describe(value)}")


def _pad_color(value: Any, channels: int, op: str) -> tuple[float, ...]:
    """Return a pad value (number or per-channel list) as an OpenCV border colour."""
    if isinstance(value, list):
        if len(value) != channels:
            raise fail(op, f"pad_value must have {channels} entries (one per channel), got {describe(value)}")
        values = [as_float(item, op, "pad_value") for item in value]
    else:
        values = [as_float(value, op, "pad_value")] * channels
    for item in values:
        if not 0 <= item <= 255:
            raise fail(op, f"pad_value must be in 0..255, got {describe(value)}")
    return tuple(values)


def boxes_xyxy(value: Any, op: str) -> NDArray[np.float64]:
    """Return boxes given as an [N, 4] tensor/table or a list of box/detection tables as [N, 4]."""
    if isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        return np.array(
            [box_corners(item, op, f"boxes[{index}]") for index, item in enumerate(value, start=1)],
            dtype=np.float64,
        )
    if isinstance(value, list) and not value:
        return np.zeros((0, 4), dtype=np.float64)
    array = as_array(value, op, "boxes", dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise fail(op, f"boxes must be an [N, 4] tensor of x1, y1, x2, y2, got {describe(value)}")
    if not np.all(np.isfinite(array)):
        raise fail(op, f"boxes must be finite, got {describe(value)}")
    return array


def convert_color(img: Any, src: str, dst: str) -> NDArray[np.uint8]:
    """Convert an image between the encodings rgb8, bgr8, mono8, rgba8 and bgra8.

    mono8 -> colour replicates the grey channel; colour -> mono8 uses the ITU-R
    BT.601 luma weights; adding alpha sets it to 255. ``src == dst`` returns ``img``.

    Lua::

        local bgr = vp.convert_color(img, "rgb8", "bgr8")

    Args:
        img: H x W x C uint8 image, C matching ``src``.
        src: Encoding of ``img``.
        dst: Wanted encoding.

    Returns:
        H x W x C' uint8 image in ``dst``.

    Raises:
        VisionOpError: unknown encoding, or channel count not matching ``src``.
    """
    op = "convert_color"
    for name, encoding in (("src", src), ("dst", dst)):
        if not isinstance(encoding, str) or encoding not in ENCODING_CHANNELS:
            raise fail(op, f"{name} must be one of {sorted(ENCODING_CHANNELS)}, got {describe(encoding)}")
    image = as_image(img, op)
    if image.shape[2] != ENCODING_CHANNELS[src]:
        raise fail(op, f"img has {image.shape[2]} channels but src {src!r} needs {ENCODING_CHANNELS[src]}")
    if src == dst:
        return image
    return _with_channels(cv2.cvtColor(image, _COLOR_CODES[(src, dst)]), 3)


def resize(img: Any, w: Any, h: Any, interp: str = "linear") -> NDArray[Any]:
    """Resize an image (or a float map) to ``w`` x ``h`` pixels, ignoring aspect ratio.

    Also accepts H x W or H x W x C float32 maps (e.g. heatmaps, masks). The
    crop transform of a resize from W x H is ``{x0=0, y0=0, sx=W/w, sy=H/h}``.

    Lua::

        local small = vp.resize(img, 320, 240)            -- bilinear
        local mask = vp.resize(prob, 640, 480, "nearest")

    Args:
        img: H x W [x C] uint8 or float array.
        w: Output width, pixels (> 0).
        h: Output height, pixels (> 0).
        interp: "linear", "nearest", "area" (best for shrinking) or "cubic".

    Returns:
        The resized array, same dtype and rank as ``img``.

    Raises:
        VisionOpError: bad size, interpolation or array.
    """
    op = "resize"
    width, height = image_size(w, h, op)
    flag = _interp(interp, op)
    array = as_array(img, op, "img")
    if array.ndim not in (2, 3) or array.shape[0] == 0 or array.shape[1] == 0:
        raise fail(op, f"img must be a non-empty H x W or H x W x C array, got {describe(array)}")
    if array.dtype not in (np.uint8, np.float32, np.float64):
        array = array.astype(np.float32)
    return _with_channels(cv2.resize(array, (width, height), interpolation=flag), array.ndim)


def image_size(w: Any, h: Any, op: str) -> tuple[int, int]:
    """Width and height of an op's output image (integers > 0).

    Raises:
        VisionOpError: not an integer, or not > 0.
    """
    width = as_int(w, op, "width")
    height = as_int(h, op, "height")
    if width <= 0:
        raise fail(op, f"width must be > 0, got {width!r}")
    if height <= 0:
        raise fail(op, f"height must be > 0, got {height!r}")
    return width, height


def letterbox(img: Any, w: Any, h: Any, pad_value: Any = 114) -> tuple[NDArray[np.uint8], dict[str, Any]]:
    """Resize keeping the aspect ratio to fit ``w`` x ``h``, centred, padding the rest.

    ``info`` maps letterboxed coordinates back: ``x_original = (x - pad_x) / scale``;
    pass it to ``vp.map_boxes`` / ``vp.map_points``.

    Lua::

        local t, info = vp.letterbox(img, 640, 640)
        -- ... model ...
        local boxes = vp.map_boxes(model_boxes, info)

    Args:
        img: H x W x C uint8 image.
        w: Output width, pixels (> 0).
        h: Output height, pixels (> 0).
        pad_value: Padding value, a number or one per channel (0..255).

    Returns:
        ``(tensor, info)``: the h x w x C uint8 image and
        ``{scale, pad_x, pad_y, src_w, src_h}``.

    Raises:
        VisionOpError: bad image, size or pad value.
    """
    op = "letterbox"
    width, height = image_size(w, h, op)
    image = as_image(img, op)
    color = _pad_color(pad_value, image.shape[2], op)
    src_h, src_w = image.shape[:2]
    scale = min(width / src_w, height / src_h)
    new_w = min(width, max(1, round(src_w * scale)))
    new_h = min(height, max(1, round(src_h * scale)))
    pad_x = (width - new_w) // 2
    pad_y = (height - new_h) // 2
    flag = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = _with_channels(cv2.resize(image, (new_w, new_h), interpolation=flag), 3)
    out = np.empty((height, width, image.shape[2]), dtype=np.uint8)
    out[...] = np.asarray(color, dtype=np.float64).round().astype(np.uint8)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    info = LetterboxInfo(scale=scale, pad_x=float(pad_x), pad_y=float(pad_y), src_w=src_w, src_h=src_h)
    return out, info.to_lua()


def crop(img: Any, box: Any) -> NDArray[np.uint8]:
    """Cut the pixels covered by ``box`` out of an image; parts outside the image are 0.

    The crop covers pixel columns ``floor(x1) .. ceil(x2) - 1`` (rows likewise), so
    crop pixel (0, 0) is original pixel ``(floor(y1), floor(x1))``; the crop's
    transform is ``{x0 = floor(x1), y0 = floor(y1), sx = 1, sy = 1}``.

    Lua::

        local patch = vp.crop(img, {x1 = 10, y1 = 20, x2 = 110, y2 = 220})
        local patch2 = vp.crop(img, det.box)

    Args:
        img: H x W x C uint8 image.
        box: ``{x1=, y1=, x2=, y2=}``, a detection table, or ``{x1, y1, x2, y2}``.

    Returns:
        The crop, ``ceil(y2) - floor(y1)`` x ``ceil(x2) - floor(x1)`` x C uint8.

    Raises:
        VisionOpError: bad image, or a box with ``x2 <= x1`` or ``y2 <= y1``.
    """
    op = "crop"
    image = as_image(img, op)
    x1, y1, x2, y2 = box_corners(box, op)
    if x2 <= x1 or y2 <= y1:
        raise fail(op, f"box must have x2 > x1 and y2 > y1, got {describe(box)}")
    left, top, right, bottom = math.floor(x1), math.floor(y1), math.ceil(x2), math.ceil(y2)
    height, width = image.shape[:2]
    out = np.zeros((bottom - top, right - left, image.shape[2]), dtype=np.uint8)
    src_x1, src_y1 = max(left, 0), max(top, 0)
    src_x2, src_y2 = min(right, width), min(bottom, height)
    if src_x2 > src_x1 and src_y2 > src_y1:
        out[src_y1 - top : src_y2 - top, src_x1 - left : src_x2 - left] = image[src_y1:src_y2, src_x1:src_x2]
    return out


def crop_boxes(
    img: Any, boxes: Any, w: Any, h: Any, opts: Any = None
) -> tuple[NDArray[np.uint8], list[dict[str, float]]]:
    """Crop and resize every box to ``w`` x ``h``, e.g. person boxes for a pose model.

    Each box is first made square around its centre (``square``), then scaled by
    ``scale`` around its centre, then resampled to ``w`` x ``h`` (stretched if the
    aspect ratios differ). Areas outside the image are padded, never shifted, so
    ``x_original = x0 + x_crop * sx`` holds for every crop pixel.

    Lua::

        local batch, tf = vp.crop_boxes(img, person_boxes, 256, 256, {scale = 1.25, square = true})
        -- batch: [N, 256, 256, 3]; tf[i] = {x0=, y0=, sx=, sy=} for crop i
        local kps = vp.map_points(crop_kps, tf[1])

    Args:
        img: H x W x C uint8 image.
        boxes: [N, 4] x1, y1, x2, y2 (tensor or table), or a list of box/detection tables.
        w: Crop width, pixels.
        h: Crop height, pixels.
        opts: ``{scale = 1.0, square = false, pad_value = 0, interp = "linear"}``
            (interp: "linear", "nearest" or "cubic").

    Returns:
        ``(batch, transforms)``: [N, h, w, C] uint8 and a list of N ``{x0, y0, sx, sy}``.

    Raises:
        VisionOpError: bad image, size, options, or a box of zero width or height.
    """
    op = "crop_boxes"
    width, height = image_size(w, h, op)
    image = as_image(img, op)
    options = as_opts(opts, op, _CROP_BOXES_OPTIONS)
    window = CropWindows.from_options(options, image.shape[2], op)
    transforms = window.place(boxes_xyxy(boxes, op), width, height, op)
    batch = np.empty((len(transforms), height, width, image.shape[2]), dtype=np.uint8)
    rows: list[dict[str, float]] = []
    for index, (x0, y0, sx, sy) in enumerate(transforms.tolist()):
        batch[index] = window.warp(image, transforms[index], width, height)
        rows.append(CropTransform(x0=x0, y0=y0, sx=sx, sy=sy).to_lua())
    return batch, rows


@dataclass(frozen=True)
class CropWindows:
    """How ``crop_boxes`` and ``crop_batch`` turn boxes into crop windows and resample them.

    Attributes:
        scale: Factor applied to each (squared) box around its centre.
        square: Make each box square (its longer side) before scaling.
        border: OpenCV border colour of the areas outside the image.
        interp: OpenCV interpolation flag.
    """

    scale: float
    square: bool
    border: float | tuple[float, ...]
    interp: int

    @classmethod
    def from_options(cls, options: Mapping[str, Any], channels: int, op: str) -> CropWindows:
        """Read ``scale``, ``square``, ``pad_value`` and ``interp`` of an options table.

        Raises:
            VisionOpError: a bad option value.
        """
        scale = as_float(options.get("scale", 1.0), op, "opts.scale")
        if scale <= 0:
            raise fail(op, f"opts.scale must be > 0, got {scale!r}")
        square = as_bool(options.get("square", False), op, "opts.square")
        color = _pad_color(options.get("pad_value", 0), channels, op)
        flag = _interp(options.get("interp", "linear"), op, WARP_INTERPOLATIONS)
        return cls(scale=scale, square=square, border=color if channels > 1 else color[0], interp=flag)

    def place(self, xyxy: NDArray[np.float64], width: int, height: int, op: str) -> NDArray[np.float64]:
        """The crop transform of each box, [N, 4] float64 rows ``x0, y0, sx, sy``.

        Raises:
            VisionOpError: a box of zero or negative width or height.
        """
        centre_x = (xyxy[:, 0] + xyxy[:, 2]) / 2
        centre_y = (xyxy[:, 1] + xyxy[:, 3]) / 2
        box_w = xyxy[:, 2] - xyxy[:, 0]
        box_h = xyxy[:, 3] - xyxy[:, 1]
        bad = np.flatnonzero((box_w <= 0) | (box_h <= 0))
        if bad.size:
            index = int(bad[0])
            raise fail(op, f"box {index + 1} has zero or negative size, got {xyxy[index].tolist()!r}")
        if self.square:
            box_w = box_h = np.maximum(box_w, box_h)
        box_w, box_h = box_w * self.scale, box_h * self.scale
        return np.stack([centre_x - box_w / 2, centre_y - box_h / 2, box_w / width, box_h / height], axis=-1)

    def warp(self, image: NDArray[np.uint8], transform: NDArray[np.float64], width: int,
             height: int) -> NDArray[np.uint8]:
        """Resample one crop window (``x0, y0, sx, sy``) of ``image`` to ``height x width x C``."""
        x0, y0, sx, sy = transform
        # Output pixel centre (u + 0.5) maps to x0 + (u + 0.5) * sx, i.e. pixel index - 0.5.
        matrix = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]])
        warped = cv2.warpAffine(
            image,
            matrix,
            (width, height),
            flags=self.interp | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=self.border,
        )
        return _with_channels(warped, 3)
