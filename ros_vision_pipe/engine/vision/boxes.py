"""Box and keypoint operations of ``vp``: formats, NMS, mapping, peaks, detections.

Covers box formats, non-maximum suppression, mapping boxes and points back to the
original image, heatmap peaks, and the standard detection format.

Boxes are [N, 4] tensors (most ops accept any [..., 4]) in continuous pixel
coordinates, ``x1, y1, x2, y2`` unless a format says otherwise. Results are float32
(float64 kept). Indices given to or returned by Lua are 1-based.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    as_array,
    as_float,
    as_float_array,
    as_int,
    as_list,
    describe,
    fail,
)
from ros_vision_pipe.engine.vision.formats import Detection, Keypoint, transform_from_lua

#: Box formats known to ``box_convert``.
BOX_FORMATS = ("xyxy", "xywh", "cxcywh", "yxyx")

#: Keypoint fields a column of ``detections``' keypoints may hold ("_" skips a column).
KEYPOINT_FIELDS = ("x", "y", "z", "score", "_")

FloatArray = NDArray[np.floating[Any]]


def _float_boxes(boxes: Any, op: str, name: str = "boxes", exact: bool = False) -> FloatArray:
    """Return ``boxes`` as a float [..., 4] array (float32 unless float64; float64 if ``exact``)."""
    if isinstance(boxes, list) and not boxes:
        return np.zeros((0, 4), dtype=np.float64 if exact else np.float32)
    array = as_array(boxes, op, name, dtype=np.float64) if exact else as_float_array(boxes, op, name)
    if array.ndim == 0 or array.shape[-1] != 4:
        raise fail(op, f"{name} must be a [..., 4] tensor, got {describe(boxes)}")
    return array


def _boxes_2d(boxes: Any, op: str, name: str = "boxes", exact: bool = False) -> FloatArray:
    """Return ``boxes`` as a float [N, 4] array; a single [4] box becomes [1, 4]."""
    array = _float_boxes(boxes, op, name, exact)
    if array.ndim == 1:
        array = array[np.newaxis]
    if array.ndim != 2:
        raise fail(op, f"{name} must be an [N, 4] tensor, got {describe(boxes)}")
    return array


def _vector(
    value: Any, count: int, op: str, name: str, dtype: type[np.generic] | None = None
) -> NDArray[Any]:
    """Return a per-box vector of length ``count`` ([N] or [N, 1])."""
    if isinstance(value, list) and not value:
        array: NDArray[Any] = np.zeros(0, dtype=dtype or np.float32)
    else:
        array = as_array(value, op, name, dtype=dtype)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.shape != (count,):
        raise fail(op, f"{name} must have one entry per box ({count}), got {describe(value)}")
    return array


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
    array = _float_boxes(boxes, op)
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


def _pairwise_iou(a: FloatArray, b: FloatArray) -> NDArray[np.float64]:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4] (xyxy)."""
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
    return _pairwise_iou(_boxes_2d(a, "iou", "a"), _boxes_2d(b, "iou", "b")).astype(np.float32)


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
    xyxy = _boxes_2d(boxes, op)
    count = len(xyxy)
    score = _vector(scores, count, op, "scores", np.float64)
    threshold = as_float(iou_threshold, op, "iou_threshold")
    if not 0 <= threshold <= 1:
        raise fail(op, f"iou_threshold must be in 0..1, got {threshold!r}")
    minimum = as_float(score_threshold, op, "score_threshold")
    limit = None if max_detections is None else as_int(max_detections, op, "max_detections", minimum=0)
    labels = None if classes is None else _vector(classes, count, op, "classes")

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
        overlap = _pairwise_iou(ordered_boxes[position : position + 1], ordered_boxes[rest])[0] > threshold
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
    array = _float_boxes(boxes, op)
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
    array = _float_boxes(boxes, op)
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
    W x H to w x h is ``{x0 = 0, y0 = 0, sx = W / w, sy = H / h}``). Boxes are not
    clipped: use ``vp.clip_boxes``.

    Lua::

        local t, info = vp.letterbox(img, 640, 640)
        -- ...
        local boxes = vp.map_boxes(model_boxes, info)

    Args:
        boxes: [..., 4] xyxy in the letterboxed/resized/cropped image.
        info: Letterbox info or crop transform.

    Returns:
        [..., 4] float tensor in original-image pixels.

    Raises:
        VisionOpError: bad boxes, or ``info`` is neither form.
    """
    op = "map_boxes"
    array = _float_boxes(boxes, op)
    transform = transform_from_lua(info, op)
    x1, y1 = transform.to_original(array[..., 0], array[..., 1])
    x2, y2 = transform.to_original(array[..., 2], array[..., 3])
    return np.stack([x1, y1, x2, y2], axis=-1).astype(array.dtype, copy=False)


def map_points(points: Any, info: Any) -> FloatArray:
    """Map points (x, y in the first two columns) back to original pixels, like ``map_boxes``.

    Columns after the first two (z, score, ...) are copied unchanged.

    Lua::

        local kps = vp.map_points(vp.reshape(out, {33, 5}), tf[1])   -- BlazePose crop -> image

    Args:
        points: [..., D] tensor with D >= 2 (e.g. [N, 2], [N, K, 3]).
        info: Letterbox info or crop transform.

    Returns:
        Float tensor of the same shape.

    Raises:
        VisionOpError: fewer than 2 columns, or bad ``info``.
    """
    op = "map_points"
    array = as_float_array(points, op, "points")
    if array.ndim == 0 or array.shape[-1] < 2:
        raise fail(op, f"points must be [..., D] with D >= 2 (x, y first), got {describe(points)}")
    transform = transform_from_lua(info, op)
    result = array.copy()
    result[..., 0], result[..., 1] = transform.to_original(array[..., 0], array[..., 1])
    return result


def _label_for(class_id: int, labels: Any, op: str) -> str:
    """Look a class id up in a label array (1-based, Lua style) or a label table (by key)."""
    if class_id == -1:
        return ""
    if isinstance(labels, list):
        if not 1 <= class_id <= len(labels):
            raise fail(op, f"class_id {class_id!r} has no entry in labels (1..{len(labels)})")
        label = labels[class_id - 1]
    else:
        key = str(class_id)
        if key not in labels:
            raise fail(op, f"class_id {class_id!r} has no entry in labels {describe(labels)}")
        label = labels[key]
    if not isinstance(label, str):
        raise fail(op, f"label of class_id {class_id!r} must be a string, got {describe(label)}")
    return label


def _keypoint_columns(fields: Any, depth: int, op: str) -> dict[str, int]:
    """Return field name -> column of the keypoint tensor."""
    if fields is None:
        names = ["x", "y", "z", "score"][: min(depth, 4)]
    else:
        names = as_list(fields, op, "keypoint_fields")
        if len(names) > depth:
            raise fail(op, f"keypoint_fields names {len(names)} columns but keypoints have {depth}")
    columns: dict[str, int] = {}
    for column, name in enumerate(names):
        if name not in KEYPOINT_FIELDS:
            raise fail(op, f"keypoint field must be one of {list(KEYPOINT_FIELDS)}, got {describe(name)}")
        if name in columns:
            raise fail(op, f"keypoint field {name!r} is named twice in {describe(fields)}")
        if name != "_":
            columns[name] = column
    if "x" not in columns or "y" not in columns:
        raise fail(op, f"keypoint_fields must name 'x' and 'y', got {describe(fields)}")
    return columns


def detections(
    boxes: Any,
    scores: Any = None,
    class_ids: Any = None,
    labels: Any = None,
    keypoints: Any = None,
    keypoint_fields: Any = None,
) -> list[dict[str, Any]]:
    """Build the standard detection list the ROS mapping expects.

    Each entry is ``{box = {x1, y1, x2, y2}, score = s, class_id = c, label = "...",
    keypoints = {{x, y, z, score}, ...}}`` (keys by name; ``keypoints`` only when
    given). Missing scores/z/keypoint scores are NaN, a missing class is -1 with
    label "".

    ``labels`` is either an array of names looked up Lua-style (``labels[class_id]``,
    so class 1 is the first name) or a key table looked up by the exact class id
    (``{[0] = "person", [1] = "bicycle"}`` for 0-based label spaces). A class id of
    -1 always gets "". Without ``class_ids``, a one-name array (``{"person"}``) labels
    every detection (class_id stays -1).

    Keypoint columns are, by default, x, y, z, score in that order (a [N, K, 2]
    tensor is x, y; [N, K, 3] is x, y, z; columns after the 4th are ignored);
    ``keypoint_fields`` names them otherwise, e.g. ``{"x", "y", "score"}``.

    Lua::

        local keep = vp.nms(boxes, scores, 0.45, cls)
        return vp.detections(vp.take(boxes, keep), vp.take(scores, keep),
                             vp.take(cls, keep), COCO_NAMES)
        -- with landmarks [N, 5, 2] and no classes:
        return vp.detections(boxes, scores, nil, nil, landmarks)

    Args:
        boxes: [N, 4] xyxy in original-image pixels.
        scores: [N] scores, or nil.
        class_ids: [N] integer class ids, or nil.
        labels: Array or key table of class names, or nil (labels "").
        keypoints: [N, K, D] with D >= 2, or nil.
        keypoint_fields: Names of the keypoint columns ("x", "y", "z", "score", "_" to skip).

    Returns:
        List of N detection tables.

    Raises:
        VisionOpError: lengths differ, non-integer class ids, a class without label,
            or bad keypoints.
    """
    op = "detections"
    xyxy = _boxes_2d(boxes, op, exact=True)
    count = len(xyxy)
    score = np.full(count, math.nan) if scores is None else _vector(scores, count, op, "scores", np.float64)
    ids = np.full(count, -1, dtype=np.int64)
    if class_ids is not None:
        raw_ids = _vector(class_ids, count, op, "class_ids")
        if raw_ids.dtype.kind == "f" and not np.all(np.mod(raw_ids, 1) == 0):
            raise fail(op, f"class_ids must be integers, got {describe(class_ids)}")
        ids = raw_ids.astype(np.int64)
    if labels is not None and not isinstance(labels, (list, Mapping)):
        raise fail(op, f"labels must be an array or a key table of names, got {describe(labels)}")
    if labels is not None and class_ids is None:
        if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str)):
            raise fail(op, f"labels without class_ids must be a single name, got {describe(labels)}")
        names = [labels[0]] * count
    else:
        names = ["" if labels is None else _label_for(int(class_id), labels, op) for class_id in ids.tolist()]
    points: list[tuple[Keypoint, ...] | None] = [None] * count
    if keypoints is not None:
        array = as_array(keypoints, op, "keypoints", dtype=np.float64)
        if array.ndim != 3 or array.shape[0] != count or array.shape[2] < 2:
            raise fail(
                op, f"keypoints must be [N, K, D] with N = {count} and D >= 2, got {describe(keypoints)}"
            )
        columns = _keypoint_columns(keypoint_fields, array.shape[2], op)
        nan = np.full(array.shape[:2], math.nan)
        fields = {
            name: array[:, :, columns[name]] if name in columns else nan for name in ("x", "y", "z", "score")
        }
        table = np.stack([fields["x"], fields["y"], fields["z"], fields["score"]], axis=-1).tolist()
        points = [tuple(Keypoint(x=x, y=y, z=z, score=s) for x, y, z, s in row) for row in table]
    result = []
    for n, (x1, y1, x2, y2) in enumerate(xyxy.tolist()):
        detection = Detection(
            x1=x1,
            y1=y1,
            x2=x2,
            y2=y2,
            score=float(score[n]),
            class_id=int(ids[n]),
            label=names[n],
            keypoints=points[n],
        )
        result.append(detection.to_lua())
    return result


def heatmap_peaks(
    hm: Any, threshold: Any, kernel: Any = 3, limit: Any = None
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Local maxima of a 2-D heatmap above ``threshold`` (max-pool equality, as CenterNet).

    A pixel is a peak when it equals the maximum of its ``kernel`` x ``kernel``
    neighbourhood and is strictly above ``threshold`` (plateaus give every pixel).

    Lua::

        local hm = vp.squeeze(outputs[1])              -- [1, 1, H, W] -> [H, W]
        local idx, score = vp.heatmap_peaks(hm, 0.5)   -- idx [K, 2] = (row, col), 1-based
        for i = 1, idx:dim(1) do
          local cy, cx = idx:at(i, 1) - 1, idx:at(i, 2) - 1   -- 0-based cell
        end

    Args:
        hm: [H, W] heatmap (leading size-1 axes are dropped).
        threshold: Minimum score (exclusive).
        kernel: Odd neighbourhood size >= 1.
        limit: Keep at most this many (the highest); all when nil.

    Returns:
        ``(indices, scores)``: [K, 2] int64 1-based (row, col) and [K] float32,
        best first (ties in row-major order).

    Raises:
        VisionOpError: not 2-D, bad kernel or limit.
    """
    op = "heatmap_peaks"
    array = as_float_array(hm, op, "hm")
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2:
        raise fail(op, f"hm must be a 2-D heatmap [H, W] (or [1, .., H, W]), got {describe(hm)}")
    size = as_int(kernel, op, "kernel", minimum=1)
    if size % 2 == 0:
        raise fail(op, f"kernel must be odd, got {size!r}")
    threshold_value = as_float(threshold, op, "threshold")
    heat = np.ascontiguousarray(array, dtype=np.float32)
    if heat.size == 0:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    pooled = cv2.dilate(heat, np.ones((size, size), dtype=np.uint8))
    positions = np.argwhere((heat == pooled) & (heat > threshold_value))
    values = heat[positions[:, 0], positions[:, 1]]
    order = np.argsort(-values, kind="stable")
    if limit is not None:
        order = order[: as_int(limit, op, "limit", minimum=0)]
    return positions[order].astype(np.int64) + 1, values[order]
