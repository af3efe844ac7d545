"""The vectorised operations behind the Lua host module ``vp`` (pure numpy + OpenCV).

Lua scripts never loop over pixels: they call these ops, which take and return
ndarrays (tensor handles in Lua), lists, dicts, numbers and strings. Indices and
axes are 1-based as in Lua. Every op raises :class:`VisionOpError` (a
``ValueError``) whose message starts with the op's Lua name.

``VP_FUNCTIONS`` maps each Lua name to its function; the Lua bridge installs them
as ``vp.<name>``. See ``docs/lua_api.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from ros_vision_pipe.engine.vision import boxes, image, tensor, text
from ros_vision_pipe.engine.vision._args import MAX_TABLE_ELEMENTS, VisionOpError
from ros_vision_pipe.engine.vision.formats import CropTransform, Detection, Keypoint, LetterboxInfo

#: Lua name -> operation, as installed in the ``vp`` module.
VP_FUNCTIONS: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {
        # image.py
        "convert_color": image.convert_color,
        "resize": image.resize,
        "letterbox": image.letterbox,
        "crop": image.crop,
        "crop_boxes": image.crop_boxes,
        # tensor.py
        "normalize": tensor.normalize,
        "astype": tensor.astype,
        "to_chw": tensor.to_chw,
        "to_hwc": tensor.to_hwc,
        "transpose": tensor.transpose,
        "reshape": tensor.reshape,
        "squeeze": tensor.squeeze,
        "expand_dims": tensor.expand_dims,
        "stack": tensor.stack,
        "concat": tensor.concat,
        "slice": tensor.slice_,
        "take": tensor.take,
        "softmax": tensor.softmax,
        "sigmoid": tensor.sigmoid,
        "exp": tensor.exp,
        "argmax": tensor.argmax,
        "max": tensor.max_,
        "topk": tensor.topk,
        "where_above": tensor.where_above,
        "gather_nd": tensor.gather_nd,
        "totable": tensor.totable,
        "zeros": tensor.zeros,
        "from_table": tensor.from_table,
        "scale": tensor.scale,
        "add": tensor.add,
        "mul": tensor.mul,
        "clip": tensor.clip,
        # boxes.py
        "boxes": boxes.boxes,
        "box_convert": boxes.box_convert,
        "nms": boxes.nms,
        "scale_boxes": boxes.scale_boxes,
        "clip_boxes": boxes.clip_boxes,
        "map_boxes": boxes.map_boxes,
        "map_points": boxes.map_points,
        "iou": boxes.iou,
        "detections": boxes.detections,
        "heatmap_peaks": boxes.heatmap_peaks,
        # text.py
        "text_regions": text.text_regions,
        "crop_quads": text.crop_quads,
        "rotate180": text.rotate180,
        "ctc_decode": text.ctc_decode,
    }
)

__all__ = [
    "MAX_TABLE_ELEMENTS",
    "VP_FUNCTIONS",
    "CropTransform",
    "Detection",
    "Keypoint",
    "LetterboxInfo",
    "VisionOpError",
]
