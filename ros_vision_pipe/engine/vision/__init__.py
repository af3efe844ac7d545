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

from ros_vision_pipe.engine.vision import (
    boxes,
    crop_batch,
    detections,
    elementwise,
    image,
    layout,
    model_input,
    reductions,
    tensor,
    text,
)
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
        # crop_batch.py
        "crop_batch": crop_batch.crop_batch,
        # model_input.py
        "model_input": model_input.model_input,
        # tensor.py
        "normalize": tensor.normalize,
        "astype": tensor.astype,
        "totable": tensor.totable,
        "zeros": tensor.zeros,
        "from_table": tensor.from_table,
        # layout.py
        "to_chw": layout.to_chw,
        "to_hwc": layout.to_hwc,
        "transpose": layout.transpose,
        "reshape": layout.reshape,
        "squeeze": layout.squeeze,
        "expand_dims": layout.expand_dims,
        "stack": layout.stack,
        "concat": layout.concat,
        "slice": layout.slice_,
        "take": layout.take,
        "gather_nd": layout.gather_nd,
        # reductions.py
        "softmax": reductions.softmax,
        "argmax": reductions.argmax,
        "max": reductions.max_,
        "topk": reductions.topk,
        "where_above": reductions.where_above,
        # elementwise.py
        "sigmoid": elementwise.sigmoid,
        "exp": elementwise.exp,
        "scale": elementwise.scale,
        "add": elementwise.add,
        "mul": elementwise.mul,
        "clip": elementwise.clip,
        # boxes.py
        "boxes": boxes.boxes,
        "box_convert": boxes.box_convert,
        "nms": boxes.nms,
        "scale_boxes": boxes.scale_boxes,
        "clip_boxes": boxes.clip_boxes,
        "map_boxes": boxes.map_boxes,
        "map_points": boxes.map_points,
        "iou": boxes.iou,
        # detections.py
        "detections": detections.detections,
        "select_detections": detections.select_detections,
        "heatmap_peaks": detections.heatmap_peaks,
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
