"""Detection ops of ``vp``: the standard detection format and heatmap peaks.

``detections`` turns [N, 4] xyxy boxes (continuous pixel coordinates) with scores,
class ids, labels and keypoints into the standard detection tables;
``heatmap_peaks`` finds the centres of a CenterNet-style heatmap. Indices given to
or returned by Lua are 1-based.
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
    as_boxes,
    as_boxes_2d,
    as_float,
    as_float_array,
    as_int,
    as_list,
    as_per_box,
    describe,
    fail,
)
from ros_vision_pipe.engine.vision.boxes import BOX_FORMATS, box_convert
from ros_vision_pipe.engine.vision.formats import DetectionList, detection_tables

#: Keypoint fields a column of ``detections``' keypoints may hold ("_" skips a column).
KEYPOINT_FIELDS = ("x", "y", "z", "score", "_")


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


def _ids_and_labels(raw_ids: NDArray[Any] | None, class_ids: Any, labels: Any, count: int,
                    op: str) -> tuple[NDArray[np.int64], list[str]]:
    """The int64 class ids (-1: none) and the label of each detection (``detections``' rules)."""
    ids = np.full(count, -1, dtype=np.int64)
    if raw_ids is not None:
        if raw_ids.dtype.kind == "f" and not np.all(np.mod(raw_ids, 1) == 0):
            raise fail(op, f"class_ids must be integers, got {describe(class_ids)}")
        ids = raw_ids.astype(np.int64)
    if labels is not None and not isinstance(labels, (list, Mapping)):
        raise fail(op, f"labels must be an array or a key table of names, got {describe(labels)}")
    if labels is not None and raw_ids is None:
        if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str)):
            raise fail(op, f"labels without class_ids must be a single name, got {describe(labels)}")
        return ids, [labels[0]] * count
    return ids, ["" if labels is None else _label_for(int(class_id), labels, op) for class_id in ids.tolist()]


def detections(
    boxes: Any,
    scores: Any = None,
    class_ids: Any = None,
    labels: Any = None,
    keypoints: Any = None,
    keypoint_fields: Any = None,
) -> list[dict[str, Any]]:
    """Build the standard detection list the ROS mapping expects (a ``DetectionList``).

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
    xyxy = as_boxes_2d(boxes, op, exact=True)
    count = len(xyxy)
    score = np.full(count, math.nan) if scores is None else as_per_box(scores, count, op, "scores", np.float64)
    raw_ids = None if class_ids is None else as_per_box(class_ids, count, op, "class_ids")
    ids, names = _ids_and_labels(raw_ids, class_ids, labels, count, op)
    points: list[list[list[float]]] | None = None
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
        points = np.stack([fields["x"], fields["y"], fields["z"], fields["score"]], axis=-1).tolist()
    return detection_tables(xyxy.tolist(), score.tolist(), ids.tolist(), names, points)


#: The options ``select_detections`` takes.
_SELECT_OPTIONS = ("class_ids", "labels", "format", "scale", "limit")


def _one_batch(value: Any, op: str, name: str, rank: int) -> NDArray[Any]:
    """``value`` as an array of ``rank`` dimensions; a leading batch axis of one is dropped."""
    array = as_array(value, op, name)
    if array.ndim == rank + 1 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != rank:
        raise fail(op, f"{name} must have {rank} dimension(s) (or a leading batch of one), got {describe(value)}")
    return array


def select_detections(boxes: Any, scores: Any, thr: Any, options: Any = None) -> list[dict[str, Any]]:
    """The detections scoring strictly above ``thr``, best first, as a detection list: the usual end
    of a detector's postprocess in one call.

    The same result as::

        local keep = vp.where_above(scores, thr, limit)
        local xyxy = vp.scale_boxes(vp.box_convert(vp.take(boxes, keep), format, "xyxy"), sx, sy)
        return vp.detections(xyxy, vp.take(scores, keep), vp.take(class_ids, keep), labels)

    with a leading batch axis of one dropped from each tensor (detectors output ``[1, N, 4]``).

    Lua::

        return { detections = vp.select_detections(
          outputs["detection_boxes:0"], outputs["detection_scores:0"], 0.5,
          { class_ids = outputs["detection_classes:0"], labels = { "person" },
            format = "yxyx", scale = { ctx.width, ctx.height } }) }

    Args:
        boxes: [N, 4] boxes in ``format`` (or [1, N, 4]).
        scores: [N] scores (or [1, N]).
        thr: Threshold (exclusive).
        options: Table of ``class_ids`` ([N] or [1, N]), ``labels`` (as ``vp.detections``),
            ``format`` of ``boxes`` (as ``vp.box_convert``; default "xyxy"), ``scale``
            (``{sx, sy}`` or ``{s}``: factors applied after conversion, e.g. normalised ->
            pixels) and ``limit`` (keep at most this many, the best); all optional.

    Returns:
        List of detection tables, best score first (ties in input order).

    Raises:
        VisionOpError: bad shapes, lengths that differ, an unknown option, format or scale.
    """
    op = "select_detections"
    opts = {} if options is None else options
    if not isinstance(opts, Mapping):
        raise fail(op, f"options must be a table, got {describe(options)}")
    selection = DetectionSelection.from_options(thr, opts, op)
    return selection.select(boxes, scores, opts.get("class_ids"), selection.scale_factors(opts.get("scale")))


class DetectionSelection:
    """``select_detections``' options, checked once: what a built-in postprocess step
    (``vp.steps.select_detections``) applies to every frame's outputs.

    Args:
        threshold: Scores strictly above it are kept.
        box_format: Format of the boxes (``BOX_FORMATS``).
        labels: As ``detections``' labels (None: "").
        limit: Keep at most this many, the best (None: all).
        op: The op named in errors.
    """

    __slots__ = ("threshold", "box_format", "labels", "limit", "op")

    def __init__(self, threshold: float, box_format: str, labels: Any, limit: int | None, op: str) -> None:
        """Options already checked (``from_options``)."""
        self.threshold = threshold
        self.box_format = box_format
        self.labels = labels
        self.limit = limit
        self.op = op

    @classmethod
    def from_options(cls, thr: Any, opts: Mapping[str, Any], op: str) -> DetectionSelection:
        """Check ``select_detections``' threshold and options (the arrays are checked per call).

        Raises:
            VisionOpError: an unknown option, format, labels, limit or threshold.
        """
        unknown = sorted(str(key) for key in opts if key not in _SELECT_OPTIONS)
        if unknown:
            raise fail(op, f"unknown option(s) {unknown}; known: {list(_SELECT_OPTIONS)}")
        box_format = opts.get("format", "xyxy")
        if not isinstance(box_format, str) or box_format not in BOX_FORMATS:
            raise fail(op, f"format must be one of {list(BOX_FORMATS)}, got {describe(box_format)}")
        labels = opts.get("labels")
        if labels is not None and not isinstance(labels, (list, Mapping)):
            raise fail(op, f"labels must be an array or a key table of names, got {describe(labels)}")
        limit = None if opts.get("limit") is None else as_int(opts["limit"], op, "limit", minimum=0)
        return cls(as_float(thr, op, "thr"), box_format, labels, limit, op)

    def scale_factors(self, factors: Any) -> tuple[float, float] | None:
        """``{sx, sy}`` or ``{s}`` as two factors (None: no scaling).

        Raises:
            VisionOpError: not a list of one or two numbers.
        """
        if factors is None:
            return None
        if not (isinstance(factors, list) and len(factors) in (1, 2)):
            raise fail(self.op, f"scale must be {{sx, sy}} or {{s}}, got {describe(factors)}")
        sx = as_float(factors[0], self.op, "scale")
        return sx, sx if len(factors) == 1 else as_float(factors[1], self.op, "scale")

    def select(self, boxes: Any, scores: Any, class_ids: Any = None,
               factors: tuple[float, float] | None = None) -> list[dict[str, Any]]:
        """The detections of these arrays (``select_detections``' result), boxes scaled by ``factors``
        (``scale_factors`` of the ``scale`` option; None: not scaled).

        Raises:
            VisionOpError: bad shapes, lengths that differ, a class without label.
        """
        op = self.op
        score_array = _one_batch(scores, op, "scores", 1)
        box_array = _one_batch(boxes, op, "boxes", 2)
        count = score_array.shape[0]
        if box_array.shape != (count, 4):
            raise fail(op, f"boxes must be [{count}, 4] for {count} scores, got {describe(boxes)}")
        class_array = None
        if class_ids is not None:
            class_array = _one_batch(class_ids, op, "class_ids", 1)
            if class_array.shape[0] != count:
                raise fail(op, f"class_ids must have {count} entries like scores, got {describe(class_ids)}")
        # where_above + take + box_convert + scale_boxes, computed as they do, in fewer numpy calls
        keep = np.flatnonzero(score_array > self.threshold)
        if keep.size == 0 or self.limit == 0:  # the usual frame of a detector: nothing more to compute
            return DetectionList()
        order = keep if keep.size == 1 else keep[np.argsort(-score_array[keep].astype(np.float64), kind="stable")]
        if self.limit is not None:
            order = order[: self.limit]
        xyxy = as_boxes(box_array[order], op)
        if self.box_format == "yxyx":
            xyxy = xyxy[:, [1, 0, 3, 2]]
        elif self.box_format != "xyxy":
            xyxy = box_convert(xyxy, self.box_format, "xyxy")
        if factors is not None:
            sx, sy = factors
            xyxy = xyxy * np.asarray([sx, sy, sx, sy], dtype=xyxy.dtype)
        # vp.detections' result, without checking again what was checked above
        ids, names = _ids_and_labels(None if class_array is None else class_array[order], class_ids,
                                     self.labels, len(order), op)
        return detection_tables(xyxy.tolist(), score_array[order].astype(np.float64).tolist(), ids.tolist(), names)


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
