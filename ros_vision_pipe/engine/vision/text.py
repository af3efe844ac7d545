"""OCR operations of ``vp`` (PP-OCR style): DB text regions, quad crops, CTC decoding.

The pipeline these serve: a DB detector gives a text probability map ->
``text_regions`` -> ``crop_quads`` (height 48) -> an angle classifier (``rotate180``
the crops it flags) -> a CTC recogniser -> ``ctc_decode``.

Quads are [K, 4, 2] float32 arrays of corner points (x, y) in original-image
pixels, ordered top-left, top-right, bottom-right, bottom-left.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    as_array,
    as_bool,
    as_float,
    as_float_array,
    as_image,
    as_int,
    as_opts,
    describe,
    fail,
)

_TEXT_REGION_OPTIONS = (
    "thresh",
    "box_thresh",
    "unclip_ratio",
    "min_size",
    "max_candidates",
    "src_w",
    "src_h",
    "line_tol",
)


@dataclass(frozen=True)
class TextRegionOptions:
    """Options of ``text_regions`` (DB post-processing), defaults as PP-OCR.

    Attributes:
        thresh: Pixels with probability > thresh are text.
        box_thresh: Minimum mean probability inside a region's rectangle.
        unclip_ratio: Expansion: each side moves out by ``area * ratio / perimeter``.
        min_size: Minimum short side of a region, map pixels (and original pixels).
        max_candidates: Contours examined at most.
        src_w: Original image width the quads are scaled to (default: map width).
        src_h: Original image height (default: map height).
        line_tol: Quads whose top-left y differ by less than this (original pixels)
            are on one line and ordered left to right.
    """

    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip_ratio: float = 1.6
    min_size: float = 3.0
    max_candidates: int = 1000
    src_w: int | None = None
    src_h: int | None = None
    line_tol: float = 10.0

    @classmethod
    def from_lua(cls, opts: Any, op: str) -> TextRegionOptions:
        """Parse and check the Lua options table.

        Raises:
            VisionOpError: unknown key or value out of range.
        """
        values = as_opts(opts, op, _TEXT_REGION_OPTIONS)
        floats = {
            name: as_float(values[name], op, f"opts.{name}")
            for name in ("thresh", "box_thresh", "unclip_ratio", "min_size", "line_tol")
            if name in values
        }
        for name in ("thresh", "box_thresh"):
            if name in floats and not 0 <= floats[name] <= 1:
                raise fail(op, f"opts.{name} must be in 0..1, got {floats[name]!r}")
        for name in ("unclip_ratio", "min_size", "line_tol"):
            if name in floats and floats[name] < 0:
                raise fail(op, f"opts.{name} must be >= 0, got {floats[name]!r}")
        return cls(
            **floats,
            max_candidates=as_int(values.get("max_candidates", 1000), op, "opts.max_candidates", minimum=0),
            src_w=None if "src_w" not in values else as_int(values["src_w"], op, "opts.src_w", minimum=1),
            src_h=None if "src_h" not in values else as_int(values["src_h"], op, "opts.src_h", minimum=1),
        )


def _order_corners(points: NDArray[np.float32]) -> NDArray[np.float32]:
    """Order 4 rectangle corners as top-left, top-right, bottom-right, bottom-left."""
    by_x = points[np.argsort(points[:, 0], kind="stable")]
    left = by_x[:2][np.argsort(by_x[:2, 1], kind="stable")]
    right = by_x[2:][np.argsort(by_x[2:, 1], kind="stable")]
    return np.array([left[0], right[0], right[1], left[1]], dtype=np.float32)


def _mean_inside(prob: NDArray[np.float32], corners: NDArray[np.float32]) -> float:
    """Mean of ``prob`` inside the polygon ``corners`` (PP-OCR's "fast" box score)."""
    height, width = prob.shape
    x_min = int(np.clip(np.floor(corners[:, 0].min()), 0, width - 1))
    x_max = int(np.clip(np.ceil(corners[:, 0].max()), 0, width - 1))
    y_min = int(np.clip(np.floor(corners[:, 1].min()), 0, height - 1))
    y_max = int(np.clip(np.ceil(corners[:, 1].max()), 0, height - 1))
    mask = np.zeros((y_max - y_min + 1, x_max - x_min + 1), dtype=np.uint8)
    shifted = corners - np.array([x_min, y_min], dtype=np.float32)
    cv2.fillPoly(mask, [shifted.astype(np.int32)], 1)
    return float(cv2.mean(prob[y_min : y_max + 1, x_min : x_max + 1], mask)[0])


def _reading_order(quads: NDArray[np.float32], line_tol: float) -> NDArray[np.intp]:
    """Order quads top to bottom, and left to right within a line (PP-OCR's sort)."""
    top_y = quads[:, 0, 1]
    by_y = np.argsort(top_y, kind="stable")
    line_ids = np.concatenate([[0], np.cumsum(np.diff(top_y[by_y]) >= line_tol)])
    within = np.lexsort((quads[by_y, 0, 0], line_ids))
    return by_y[within]


def text_regions(prob: Any, opts: Any = None) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """DB post-processing: text quads from a text-probability map (PP-OCR detector).

    Steps: binarise at ``thresh``; for each contour take its minimum-area rectangle,
    drop it if its short side < ``min_size`` or its mean probability < ``box_thresh``;
    expand ("unclip") each side by ``area * unclip_ratio / perimeter`` (exactly what
    the polygon offset of a rectangle gives, so no pyclipper is needed); drop it if
    the expanded short side < ``min_size + 2``; scale map -> original pixels
    (``x * src_w / map_w``), clip to the image, and order the corners.

    Lua::

        local prob = vp.squeeze(outputs[1])        -- [1, 1, H, W] -> [H, W]
        local quads, scores = vp.text_regions(prob, {src_w = w0, src_h = h0, box_thresh = 0.5})

    Args:
        prob: [H, W] probabilities (leading size-1 axes are dropped).
        opts: ``{thresh = 0.3, box_thresh = 0.5, unclip_ratio = 1.6, min_size = 3,
            max_candidates = 1000, src_w = W, src_h = H, line_tol = 10}``.

    Returns:
        ``(quads, scores)``: [K, 4, 2] float32 corners (tl, tr, br, bl) in original
        pixels and [K] float32 box scores, top to bottom then left to right.

    Raises:
        VisionOpError: not a 2-D map, or bad options.
    """
    op = "text_regions"
    array = as_float_array(prob, op, "prob")
    while array.ndim > 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 2 or array.size == 0:
        raise fail(op, f"prob must be a non-empty 2-D map [H, W] (or [1, 1, H, W]), got {describe(prob)}")
    options = TextRegionOptions.from_lua(opts, op)
    prob_map = np.ascontiguousarray(array, dtype=np.float32)
    map_h, map_w = prob_map.shape
    src_w = options.src_w or map_w
    src_h = options.src_h or map_h
    bitmap = (prob_map > options.thresh).astype(np.uint8) * 255
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)

    quads: list[NDArray[np.float32]] = []
    scores: list[float] = []
    scale = np.array([src_w / map_w, src_h / map_h], dtype=np.float32)
    for contour in contours[: options.max_candidates]:
        centre, (rect_w, rect_h), angle = cv2.minAreaRect(contour)
        if min(rect_w, rect_h) < options.min_size:
            continue
        score = _mean_inside(prob_map, cv2.boxPoints((centre, (rect_w, rect_h), angle)).astype(np.float32))
        if score < options.box_thresh:
            continue
        distance = rect_w * rect_h * options.unclip_ratio / (2 * (rect_w + rect_h))
        grown = (rect_w + 2 * distance, rect_h + 2 * distance)
        if min(grown) < options.min_size + 2:
            continue
        corners = cv2.boxPoints((centre, grown, angle)) * scale
        corners[:, 0] = np.clip(corners[:, 0], 0, src_w)
        corners[:, 1] = np.clip(corners[:, 1], 0, src_h)
        ordered = _order_corners(corners)
        width = np.linalg.norm(ordered[0] - ordered[1])
        height = np.linalg.norm(ordered[0] - ordered[3])
        if width <= options.min_size or height <= options.min_size:
            continue
        quads.append(ordered)
        scores.append(score)
    if not quads:
        return np.zeros((0, 4, 2), dtype=np.float32), np.zeros(0, dtype=np.float32)
    stacked = np.stack(quads).astype(np.float32)
    order = _reading_order(stacked, options.line_tol)
    return stacked[order], np.asarray(scores, dtype=np.float32)[order]


def _quads(value: Any, op: str) -> NDArray[np.float32]:
    if isinstance(value, list) and not value:
        return np.zeros((0, 4, 2), dtype=np.float32)
    array = as_array(value, op, "quads", dtype=np.float32)
    if array.ndim == 2 and array.shape == (4, 2):
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[1:] != (4, 2):
        raise fail(op, f"quads must be [K, 4, 2] corner points, got {describe(value)}")
    if not np.all(np.isfinite(array)):
        raise fail(op, f"quads must be finite, got {describe(value)}")
    return array


def crop_quads(
    img: Any, quads: Any, h: Any, max_w: Any, pad_value: Any = 128, fixed_width: Any = False
) -> tuple[NDArray[np.uint8], list[int]]:
    """Perspective-crop each quad, scale it to height ``h`` and pad to one common width.

    Each quad (tl, tr, br, bl) is rectified to its own size (cubic interpolation,
    replicated border); a crop at least 1.5 times taller than wide is turned 90
    degrees counter-clockwise (vertical text, as PP-OCR). It is then resized to
    height ``h`` keeping its aspect ratio, width ``min(ceil(h * w / h0), max_w)``,
    and padded on the right with ``pad_value`` to the widest crop (or to ``max_w``
    with ``fixed_width``). The default 128 is the grey that PP-OCR's zero padding
    after ``(x / 255 - 0.5) / 0.5`` stands for.

    Lua::

        local quads = vp.text_regions(prob, {src_w = w0, src_h = h0})
        local cls_in = vp.crop_quads(img, quads, 48, 192, 128, true)   -- [K, 48, 192, 3]
        local rec_in, widths = vp.crop_quads(img, quads, 48, 960)       -- [K, 48, W, 3]

    Args:
        img: H x W x C uint8 image.
        quads: [K, 4, 2] corners in image pixels (a single [4, 2] quad is accepted).
        h: Crop height (> 0).
        max_w: Largest crop width (> 0); wider crops are squeezed to it.
        pad_value: Padding value 0..255.
        fixed_width: Pad every crop to ``max_w`` instead of the widest crop.

    Returns:
        ``(batch, widths)``: [K, h, W, C] uint8 and each crop's width before padding.

    Raises:
        VisionOpError: bad image, quads, sizes or pad value.
    """
    op = "crop_quads"
    image = as_image(img, op)
    corners = _quads(quads, op)
    height = as_int(h, op, "h", minimum=1)
    width_limit = as_int(max_w, op, "max_w", minimum=1)
    pad = as_float(pad_value, op, "pad_value")
    if not 0 <= pad <= 255:
        raise fail(op, f"pad_value must be in 0..255, got {pad!r}")
    fixed = as_bool(fixed_width, op, "fixed_width")
    channels = image.shape[2]

    crops: list[NDArray[np.uint8]] = []
    for quad in corners:
        crop_w = max(1, int(max(np.linalg.norm(quad[0] - quad[1]), np.linalg.norm(quad[2] - quad[3]))))
        crop_h = max(1, int(max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]))))
        target = np.array([[0, 0], [crop_w, 0], [crop_w, crop_h], [0, crop_h]], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(quad, target)
        warped = cv2.warpPerspective(
            image, matrix, (crop_w, crop_h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
        if warped.ndim == 2:
            warped = warped[:, :, np.newaxis]
        if crop_h / crop_w >= 1.5:
            warped = np.rot90(warped)
        ratio = warped.shape[1] / warped.shape[0]
        new_w = max(1, min(math.ceil(height * ratio), width_limit))
        resized = cv2.resize(np.ascontiguousarray(warped), (new_w, height), interpolation=cv2.INTER_LINEAR)
        crops.append(resized.reshape(height, new_w, channels).astype(np.uint8, copy=False))

    widths = [crop.shape[1] for crop in crops]
    batch_w = width_limit if fixed else max(widths, default=0)
    batch = np.full((len(crops), height, batch_w, channels), round(pad), dtype=np.uint8)
    for index, crop in enumerate(crops):
        batch[index, :, : crop.shape[1]] = crop
    return batch, widths


def rotate180(t: Any, which: Any = None) -> NDArray[Any]:
    """Rotate an image, or chosen images of a batch, by 180 degrees.

    Lua::

        local probs = vp.softmax(cls_out)                        -- [K, 2]: 0 deg, 180 deg
        local flip = {}
        for i = 1, probs:dim(1) do
          if probs:at(i, 2) > 0.9 then flip[#flip + 1] = i end
        end
        rec_in = vp.rotate180(rec_in, flip)

    Args:
        t: H x W or H x W x C image, or N x H x W x C batch.
        which: Batch only: 1-based indices, or one boolean per image, of the images to
            rotate; all when nil.

    Returns:
        A rotated copy.

    Raises:
        VisionOpError: bad rank, ``which`` on a single image, or indices out of range.
    """
    op = "rotate180"
    array = as_array(t, op, "t")
    if array.ndim in (2, 3):
        if which is not None:
            raise fail(op, f"which is only for N x H x W x C batches, got {describe(array)}")
        return np.ascontiguousarray(array[::-1, ::-1])
    if array.ndim != 4:
        raise fail(op, f"t must be an H x W [x C] image or an N x H x W x C batch, got {describe(array)}")
    if which is None:
        return np.ascontiguousarray(array[:, ::-1, ::-1])
    result = array.copy()
    if isinstance(which, list) and not which:
        return result
    selector = as_array(which, op, "which")
    if selector.dtype == np.bool_:
        if selector.shape != (len(array),):
            raise fail(op, f"which must have one boolean per image ({len(array)}), got {describe(which)}")
        chosen = np.flatnonzero(selector)
    else:
        if selector.ndim != 1 or (selector.dtype.kind == "f" and not np.all(np.mod(selector, 1) == 0)):
            raise fail(op, f"which must be 1-based indices, got {describe(which)}")
        chosen = selector.astype(np.int64) - 1
        bad = chosen[(chosen < 0) | (chosen >= len(array))]
        if bad.size:
            raise fail(op, f"index {int(bad[0]) + 1!r} in which is out of range 1..{len(array)}")
    result[chosen] = result[chosen][:, ::-1, ::-1]
    return result


@functools.lru_cache(maxsize=8)
def _split_charset(text: str) -> tuple[str, ...]:
    """Split a model's newline-separated character list once, not on every frame."""
    return tuple(text.splitlines())


def _charset(value: Any, op: str) -> list[str] | tuple[str, ...]:
    if isinstance(value, str):
        return _split_charset(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise fail(
        op, f"charset must be an array of strings or a newline-separated string, got {describe(value)}"
    )


def ctc_decode(
    logits: Any, charset: Any, blank: Any = 1, softmax: Any = None
) -> tuple[list[str], list[float]]:
    """Greedy CTC decoding: best class per step, merge repeats, drop blanks.

    Class table (PP-OCR convention): the blank class, then ``charset`` in order, then
    a space ``" "`` when the model has one more class than that (C == #charset + 2).
    With the default ``blank = 1`` (1-based), class c (0-based) is ``charset[c]``
    in Lua terms. The score of a text is the mean probability of its kept
    characters (0 for an empty text).

    Lua::

        -- charset: the rec model's metadata "character" (a newline-separated string
        -- or an array of strings)
        local texts, scores = vp.ctc_decode(outputs[1], charset)   -- [N, T, C]
        print(texts[1], scores[1])

    Args:
        logits: [N, T, C] (or [T, C]) logits or probabilities.
        charset: The characters of classes 2..#charset+1, array or newline-separated string.
        blank: 1-based class index of the blank (negative counts from the end).
        softmax: Apply a softmax first; nil decides: not when every step is already a
            probability distribution (non-negative, summing to 1).

    Returns:
        ``(texts, scores)``: N strings and N floats.

    Raises:
        VisionOpError: wrong rank, a class count that does not fit the charset, or a bad blank.
    """
    op = "ctc_decode"
    array = as_float_array(logits, op, "logits")
    if array.ndim == 2:
        array = array[np.newaxis]
    if array.ndim != 3 or array.shape[2] < 2:
        raise fail(op, f"logits must be [N, T, C] with C >= 2, got {describe(logits)}")
    characters = _charset(charset, op)
    classes = array.shape[2]
    if classes == len(characters) + 2:
        characters = [*characters, " "]
    elif classes != len(characters) + 1:
        raise fail(
            op,
            f"logits have {classes} classes but charset has {len(characters)} entries "
            f"(expected {classes - 1} or {classes - 2})",
        )
    blank_index = as_int(blank, op, "blank")
    if 1 <= blank_index <= classes:
        blank_index -= 1
    elif -classes <= blank_index <= -1:
        blank_index += classes
    else:
        raise fail(op, f"blank must be in 1..{classes} or -{classes}..-1, got {blank_index!r}")
    table = [*characters[:blank_index], "", *characters[blank_index:]]

    if softmax is None:
        step_sums = array.sum(axis=2)
        apply = not (np.all(array >= 0) and np.allclose(step_sums, 1.0, atol=1e-3))
    else:
        apply = as_bool(softmax, op, "softmax")
    if apply:
        shifted = np.exp(array - array.max(axis=2, keepdims=True))
        array = shifted / shifted.sum(axis=2, keepdims=True)
    best = array.argmax(axis=2)
    best_prob = np.take_along_axis(array, best[:, :, np.newaxis], axis=2)[:, :, 0]
    repeated = np.zeros_like(best, dtype=bool)
    repeated[:, 1:] = best[:, 1:] == best[:, :-1]
    kept = (best != blank_index) & ~repeated

    texts: list[str] = []
    scores: list[float] = []
    for row in range(len(array)):
        ids = best[row][kept[row]]
        texts.append("".join(table[i] for i in ids.tolist()))
        probs = best_prob[row][kept[row]]
        scores.append(float(probs.mean()) if probs.size else 0.0)
    return texts, scores
