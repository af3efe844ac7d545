"""Box geometry ops of ``vp``: formats, IoU, NMS, scaling, clipping and mapping back.

Covers box formats, non-maximum suppression, and mapping boxes and points back to
the original image.

Boxes are [N, 4] tensors (most ops accept any [..., 4]) in continuous pixel
coordinates, ``x1, y1, x2, y2`` unless a format says otherwise. Results are float32
(float64 kept). Indices given to or returned by Lua are 1-based.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    FloatArray,
    as_array,
    as_boxes,
    as_boxes_2d,
    as_float,
    as_float_array,
    as_int,
    as_per_box,
    describe,
    fail,
)
from ros_vision_pipe.engine.vision.formats import transform_from_lua

#: Box formats known to ``box_convert``.
BOX_FORMATS = ("xyxy", "xywh", "cxcywh", "yxyx")


def boxes(detections: Any) -> FloatArray:
    """The boxes of a detection list (or of box tables) as an [N, 4] x1, y1, x2, y2 tensor.

    The usual first step of a per-crop model reading a detector's result.

    Lua::

        local people = ctx.results.person.detections
        local crops, tf = vp.crop_boxes(img, vp.boxes(people), 256, 256, {scale = 1.25, square = true})

    Args:
        detections: A list of detections (``{box = {x1=, y1=, x2=, y2=}, ...}``), of box tables,
            or an [N, 4] tensor.

    Returns:
        [N, 4] float32 boxes ([0, 4] for an empty list).

    Raises:
        VisionOpError: an entry without a box, or a box that is not four finite numbers.
    """
    from ros_vision_pipe.engine.vision.image import boxes_xyxy

    return boxes_xyxy(detections, "boxes").astype(np.float32)


def box_convert(boxes: Any, src: str, dst: str) -> FloatArray:
    """Convert boxes between "xyxy", "xywh" (top-left + size), "cxcywh" and "yxyx".

    Lua::

        local xyxy = vp.box_convert(pred_cxcywh, "cxcywh", "xyxy")
        local b = vp.box_convert(ssd_boxes, "yxyx", "xyxy")   -- TF detection API order

    Args:
        boxes: [..., 4] tensor.
        src: Format of ``boxes``.
        dst: Wanted format.

    Returns:
        [..., 4] float tensor in ``dst``.

    Raises:
        VisionOpError: unknown format or last axis not of size 4.
    """
    op = "box_convert"
    for name, value in (("src", src), ("dst", dst)):
        if not isinstance(value, str) or value not in BOX_FORMATS:
            raise fail(op, f"{name} must be one of {list(BOX_FORMATS)}, got {describe(value)}")
    array = as_boxes(boxes, op)
    a, b, c, d = (array[..., i] for i in range(4))
    if src == "xyxy":
        x1, y1, x2, y2 = a, b, c, d
    elif src == "yxyx":
        y1, x1, y2, x2 = a, b, c, d
    elif src == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    else:
        x1, y1, x2, y2 = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if dst == "xyxy":
        columns = (x1, y1, x2, y2)
    elif dst == "yxyx":
        columns = (y1, x1, y2, x2)
    elif dst == "xywh":
        columns = (x1, y1, x2 - x1, y2 - y1)
    else:
        columns = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    return np.stack(columns, axis=-1).astype(array.dtype, copy=False)


def pairwise_iou(a: FloatArray, b: FloatArray) -> NDArray[np.float64]:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4] (xyxy): [N, M] float64, 0 where empty.

    The one IoU of the package: ``vp.iou``, NMS and replay's detection matching use it.
    """
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    area_a = np.clip(a64[:, 2] - a64[:, 0], 0, None) * np.clip(a64[:, 3] - a64[:, 1], 0, None)
    area_b = np.clip(b64[:, 2] - b64[:, 0], 0, None) * np.clip(b64[:, 3] - b64[:, 1], 0, None)
    inter_w = np.minimum(a64[:, None, 2], b64[None, :, 2]) - np.maximum(a64[:, None, 0], b64[None, :, 0])
    inter_h = np.minimum(a64[:, None, 3], b64[None, :, 3]) - np.maximum(a64[:, None, 1], b64[None, :, 1])
    inter = np.clip(inter_w, 0, None) * np.clip(inter_h, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def iou(a: Any, b: Any) -> NDArray[np.float32]:
    """Intersection over union of every box of ``a`` with every box of ``b`` (xyxy).

    Lua::

        local m = vp.iou(tracks, dets)      -- [N, M]
        print(m:at(1, 2))

    Args:
        a: [N, 4] boxes (a single [4] box is taken as [1, 4]).
        b: [M, 4] boxes.

    Returns:
        [N, M] float32 IoU matrix (0 where both boxes are empty).

    Raises:
        VisionOpError: not [N, 4] boxes.
    """
    return pairwise_iou(as_boxes_2d(a, "iou", "a"), as_boxes_2d(b, "iou", "b")).astype(np.float32)


def nms(
    boxes: Any,
    scores: Any,
    iou_threshold: Any,
    classes: Any = None,
    score_threshold: Any = 0,
    max_detections: Any = None,
) -> list[int]:
    """Greedy non-maximum suppression, class-aware when ``classes`` is given.

    Boxes with a score below ``score_threshold`` (or NaN) are dropped first; then,
    best score first, each kept box suppresses the remaining boxes (of the same
    class, when ``classes`` is given) whose IoU with it exceeds ``iou_threshold``.

    Lua::

        local keep = vp.nms(boxes, scores, 0.45, class_ids, 0.25, 100)
        local b, s = vp.take(boxes, keep), vp.take(scores, keep)

    Args:
        boxes: [N, 4] xyxy.
        scores: [N] scores.
        iou_threshold: Suppress when IoU > this (0..1).
        classes: Optional [N] class ids; boxes of different classes never suppress each other.
        score_threshold: Minimum score kept (inclusive).
        max_detections: Keep at most this many; all when nil.

    Returns:
        1-based indices of the kept boxes, best score first (ties: lower index first).

    Raises:
        VisionOpError: shapes differ, or thresholds out of range.
    """
    op = "nms"
    xyxy = as_boxes_2d(boxes, op)
    count = len(xyxy)
    score = as_per_box(scores, count, op, "scores", np.float64)
    threshold = as_float(iou_threshold, op, "iou_threshold")
    if not 0 <= threshold <= 1:
        raise fail(op, f"iou_threshold must be in 0..1, got {threshold!r}")
    minimum = as_float(score_threshold, op, "score_threshold")
    limit = None if max_detections is None else as_int(max_detections, op, "max_detections", minimum=0)
    labels = None if classes is None else as_per_box(classes, count, op, "classes")

    candidates = np.flatnonzero(score >= minimum)
    order = candidates[np.argsort(-score[candidates], kind="stable")]
    ordered_boxes = xyxy[order]
    ordered_labels = None if labels is None else labels[order]
    suppressed = np.zeros(len(order), dtype=bool)
    keep: list[int] = []
    for position in range(len(order)):
        if limit is not None and len(keep) >= limit:
            break
        if suppressed[position]:
            continue
        keep.append(int(order[position]) + 1)
        rest = slice(position + 1, None)
        overlap = pairwise_iou(ordered_boxes[position : position + 1], ordered_boxes[rest])[0] > threshold
        if ordered_labels is not None:
            overlap &= ordered_labels[rest] == ordered_labels[position]
        suppressed[rest] |= overlap
    return keep


def scale_boxes(boxes: Any, sx: Any, sy: Any = None) -> FloatArray:
    """Multiply x coordinates by ``sx`` and y coordinates by ``sy`` (xyxy boxes).

    Lua::

        local px = vp.scale_boxes(norm_boxes, img_w, img_h)   -- normalised -> pixels

    Args:
        boxes: [..., 4] xyxy.
        sx: Horizontal factor.
        sy: Vertical factor (default ``sx``).

    Returns:
        [..., 4] float tensor.

    Raises:
        VisionOpError: bad boxes or factors.
    """
    op = "scale_boxes"
    array = as_boxes(boxes, op)
    factor_x = as_float(sx, op, "sx")
    factor_y = factor_x if sy is None else as_float(sy, op, "sy")
    factors = np.asarray([factor_x, factor_y, factor_x, factor_y], dtype=array.dtype)
    return array * factors


def clip_boxes(boxes: Any, w: Any, h: Any) -> FloatArray:
    """Clamp xyxy boxes into the image ``[0, w] x [0, h]``.

    Lua::

        local b = vp.clip_boxes(vp.map_boxes(raw, info), info.src_w, info.src_h)

    Args:
        boxes: [..., 4] xyxy.
        w: Image width.
        h: Image height.

    Returns:
        [..., 4] float tensor.

    Raises:
        VisionOpError: bad boxes, or a negative size.
    """
    op = "clip_boxes"
    array = as_boxes(boxes, op)
    width = as_float(w, op, "w")
    height = as_float(h, op, "h")
    if width < 0 or height < 0:
        raise fail(op, f"w and h must be >= 0, got {width!r}, {height!r}")
    upper = np.asarray([width, height, width, height], dtype=array.dtype)
    return np.clip(array, 0, upper)


def map_boxes(boxes: Any, info: Any) -> FloatArray:
    """Map xyxy boxes from a letterboxed, resized or cropped image back to original pixels.

    ``info`` is what ``vp.letterbox`` returned (``{scale, pad_x, pad_y, src_w, src_h}``)
    or a crop transform (``{x0, y0, sx, sy}``, from ``vp.crop_boxes``; a resize from
    W x H to w x h is ``{x0 = 0, y0 = 0, sx = W / w, sy = H / h}``), or one transform per
    crop for boxes [N, ..., 4] of N crops: the [N, 4] tensor ``vp.crop_batch`` returns, or a
    list of N transform tables. Boxes are not clipped: use ``vp.clip_boxes``.

    Lua::

        local t, info = vp.letterbox(img, 640, 640)
        -- ...
        local boxes = vp.map_boxes(model_boxes, info)

    Args:
        boxes: [..., 4] xyxy in the letterboxed/resized/cropped image.
        info: Letterbox info, crop transform, or one crop transform per row of ``boxes``.

    Returns:
        [..., 4] float tensor in original-image pixels.

    Raises:
        VisionOpError: bad boxes, ``info`` is none of these forms, or its count of
            transforms is not the count of rows.
    """
    op = "map_boxes"
    array = as_boxes(boxes, op)
    to_original = _to_original(info, array, op, "boxes")
    x1, y1 = to_original(array[..., 0], array[..., 1])
    x2, y2 = to_original(array[..., 2], array[..., 3])
    return np.stack([x1, y1, x2, y2], axis=-1).astype(array.dtype, copy=False)


def map_points(points: Any, info: Any) -> FloatArray:
    """Map points (x, y in the first two columns) back to original pixels, like ``map_boxes``.

    Columns after the first two (z, score, ...) are copied unchanged. With one transform per
    crop (the [N, 4] tensor of ``vp.crop_batch``, or a list of N transform tables), row n of
    points [N, ..., D] is mapped with transform n: every crop's points in one call.

    Lua::

        local kps = vp.map_points(vp.reshape(out, {33, 5}), tf[1])   -- BlazePose crop -> image
        local all = vp.map_points(landmarks, transforms)             -- [N, 33, 5], [N, 4]

    Args:
        points: [..., D] tensor with D >= 2 (e.g. [N, 2], [N, K, 3]).
        info: Letterbox info, crop transform, or one crop transform per row of ``points``.

    Returns:
        Float tensor of the same shape.

    Raises:
        VisionOpError: fewer than 2 columns, bad ``info``, or a count of transforms that
            is not the count of rows.
    """
    op = "map_points"
    array = as_float_array(points, op, "points")
    if array.ndim == 0 or array.shape[-1] < 2:
        raise fail(op, f"points must be [..., D] with D >= 2 (x, y first), got {describe(points)}")
    to_original = _to_original(info, array, op, "points")
    result = array.copy()
    result[..., 0], result[..., 1] = to_original(array[..., 0], array[..., 1])
    return result


ToOriginal = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]


def _to_original(info: Any, array: FloatArray, op: str, name: str) -> ToOriginal:
    """The mapping back of ``info``: one transform (a table, or a [4] crop transform tensor)
    for every row, or one per row of ``array`` (an [N, 4] tensor or a list of N tables).

    Rows are mapped in ``array``'s dtype, as one transform given as a table maps them.
    """
    if isinstance(info, Mapping):
        return transform_from_lua(info, op).to_original
    rows = array.shape[0] if array.ndim >= 2 else None
    if isinstance(info, list) and all(isinstance(item, Mapping) for item in info):
        if len(info) != rows:
            raise _count_mismatch(op, len(info), name, array)
        each = [transform_from_lua(item, op).to_original for item in info]
        if not each:  # no crops, no rows
            return lambda x, y: (x, y)

        def per_table(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
            mapped = [to_original(x[n], y[n]) for n, to_original in enumerate(each)]
            return (np.stack([m[0] for m in mapped]).reshape(x.shape),
                    np.stack([m[1] for m in mapped]).reshape(y.shape))

        return per_table
    table = as_array(info, op, "info", dtype=np.float64)
    if table.shape == (4,):  # one crop transform as a tensor
        return transform_from_lua(dict(zip(("x0", "y0", "sx", "sy"), table.tolist(), strict=True)), op).to_original
    if table.ndim != 2 or table.shape[1] != 4:
        raise fail(op, f"info must be a letterbox info or crop transform table, or an [N, 4] tensor of "
                       f"crop transforms x0, y0, sx, sy, got {describe(info)}")
    if len(table) != rows:
        raise _count_mismatch(op, len(table), name, array)
    if not np.all(np.isfinite(table)) or np.any(table[:, 2:] <= 0):
        raise fail(op, f"info must hold finite transforms with sx and sy > 0, got {describe(info)}")
    x0, y0, sx, sy = table.astype(array.dtype).T.reshape(4, len(table), *([1] * (array.ndim - 2)))

    def per_row(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        return x0 + x * sx, y0 + y * sy

    return per_row


def _count_mismatch(op: str, count: int, name: str, array: FloatArray) -> Exception:
    if array.ndim < 2:
        return fail(op, f"{count} transforms (one per crop) need {name} [N, ..., D] of N crops, "
                        f"got {describe(array)}")
    return fail(op, f"{count} transforms for {array.shape[0]} rows of {name} {describe(array)}: "
                    f"one transform per crop")
