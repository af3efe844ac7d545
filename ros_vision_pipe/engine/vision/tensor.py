"""Tensor operations of ``vp``: dtype, layout, reductions, selection and arithmetic.

Every op accepts an ndarray or a (nested) table of numbers wherever it takes a
tensor, and never writes into its inputs. Axes and indices are 1-based, as Lua
counts (negative axes count from the end: -1 is the last axis); index results
are 1-based int64. A result that is a single number (a full reduction, the
argmax of a 1-D tensor) is returned as a Lua number, not as a tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    as_array,
    as_axis,
    as_dtype,
    as_float,
    as_float_array,
    as_int,
    as_list,
    as_opts,
    check_table_size,
    describe,
    fail,
    to_python_scalar,
)

_NORMALIZE_OPTIONS = ("scale", "mean", "std", "channel_axis")

Number = int | float


def _scalar_or_array(array: NDArray[Any]) -> NDArray[Any] | Number:
    """Return 0-d results as Python numbers, anything else unchanged."""
    if array.ndim == 0:
        return to_python_scalar(array)
    return array


def _float_result(array: NDArray[Any]) -> NDArray[np.floating[Any]]:
    """Return ``array`` as float64 if it already is, else float32."""
    return array if array.dtype == np.float64 else array.astype(np.float32)


def _per_channel(value: Any, channels: int, op: str, name: str) -> NDArray[np.float32] | float:
    """Return a number, or a per-channel list as a float32 vector of ``channels`` entries."""
    if isinstance(value, (list, tuple, np.ndarray)):
        vector = as_array(value, op, name, dtype=np.float32).reshape(-1)
        if vector.size != channels:
            raise fail(op, f"{name} must have {channels} entries (one per channel), got {describe(value)}")
        if not np.all(np.isfinite(vector)):
            raise fail(op, f"{name} must be finite, got {describe(value)}")
        return vector
    return as_float(value, op, name)


def normalize(t: Any, opts: Any = None) -> NDArray[np.float32]:
    """Return ``(t * scale - mean) / std`` as float32, mean and std per channel or scalar.

    Lua::

        -- ImageNet normalisation of an RGB uint8 image (channels last)
        local x = vp.normalize(img, {scale = 1/255, mean = {0.485, 0.456, 0.406},
                                     std = {0.229, 0.224, 0.225}})
        -- PP-OCR: (x / 255 - 0.5) / 0.5 on a CHW tensor
        local y = vp.normalize(chw, {scale = 1/255, mean = 0.5, std = 0.5, channel_axis = 1})

    Args:
        t: Tensor of any numeric dtype.
        opts: ``{scale = 1, mean = 0, std = 1, channel_axis = -1}``; ``mean`` and ``std``
            are numbers or one entry per channel along ``channel_axis`` (1-based).

    Returns:
        float32 tensor of the same shape.

    Raises:
        VisionOpError: bad options, wrong number of per-channel values, or a zero std.
    """
    op = "normalize"
    array = as_array(t, op, "t")
    options = as_opts(opts, op, _NORMALIZE_OPTIONS)
    scale = as_float(options.get("scale", 1.0), op, "opts.scale")
    mean_value = options.get("mean", 0.0)
    std_value = options.get("std", 1.0)
    per_channel = isinstance(mean_value, (list, tuple, np.ndarray)) or isinstance(
        std_value, (list, tuple, np.ndarray)
    )
    shape = [1] * array.ndim
    channels = 1
    if per_channel:
        if array.ndim == 0:
            raise fail(op, f"per-channel mean/std need a tensor with a channel axis, got {describe(array)}")
        axis = as_axis(options.get("channel_axis", -1), array.ndim, op, "opts.channel_axis")
        channels = array.shape[axis]
        shape[axis] = channels
    elif "channel_axis" in options and array.ndim:
        as_axis(options["channel_axis"], array.ndim, op, "opts.channel_axis")
    mean = np.asarray(_per_channel(mean_value, channels, op, "opts.mean"), dtype=np.float32)
    std = np.asarray(_per_channel(std_value, channels, op, "opts.std"), dtype=np.float32)
    if np.any(std == 0):
        raise fail(op, f"opts.std must not be 0, got {describe(std_value)}")
    if per_channel:
        mean = np.broadcast_to(mean, (channels,)).reshape(shape)
        std = np.broadcast_to(std, (channels,)).reshape(shape)
    result = (array.astype(np.float32) * np.float32(scale) - mean) / std
    return result.astype(np.float32, copy=False)


def astype(t: Any, dtype: str) -> NDArray[Any]:
    """Convert a tensor to ``dtype``, saturating (and rounding) into integer types.

    Conversions to an integer type round half to even and clamp to the type's
    range (like OpenCV's ``saturate_cast``): 300.7 -> uint8 gives 255, -2 gives 0.
    Conversion to "bool" is ``t ~= 0``.

    Lua::

        local f = vp.astype(img, "float32")
        local img8 = vp.astype(vp.scale(mask, 255), "uint8")

    Args:
        t: Tensor.
        dtype: "float32", "float16", "float64", "uint8", "int32", "int64" or "bool".

    Returns:
        The converted tensor (``t`` itself when it already has that dtype).

    Raises:
        VisionOpError: unknown dtype, or NaN converted to an integer type.
    """
    op = "astype"
    target = np.dtype(as_dtype(dtype, op))
    array = as_array(t, op, "t")
    if array.dtype == target:
        return array
    if target.kind in "iu":
        info = np.iinfo(target)
        if array.dtype.kind == "f":
            if np.any(np.isnan(array)):
                raise fail(op, f"cannot convert NaN to {dtype}, got {describe(array)}")
            return np.clip(np.rint(array.astype(np.float64)), info.min, info.max).astype(target)
        if array.dtype.kind in "iu":
            return np.clip(array.astype(np.int64), max(info.min, -(2**63)), min(info.max, 2**63 - 1)).astype(
                target
            )
    return array.astype(target)


def to_chw(t: Any) -> NDArray[Any]:
    """Move the channel axis first: H x W x C -> C x H x W, N x H x W x C -> N x C x H x W.

    Lua::

        local x = vp.expand_dims(vp.to_chw(vp.normalize(img, {scale = 1/255})), 1)  -- [1,3,H,W]

    Args:
        t: 3-D or 4-D tensor, channels last.

    Returns:
        A contiguous tensor, channels first.

    Raises:
        VisionOpError: ``t`` is not 3-D or 4-D.
    """
    array = as_array(t, "to_chw", "t")
    if array.ndim == 3:
        return np.ascontiguousarray(array.transpose(2, 0, 1))
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
    raise fail("to_chw", f"t must be 3-D (HWC) or 4-D (NHWC), got {describe(array)}")


def to_hwc(t: Any) -> NDArray[Any]:
    """Move the channel axis last: C x H x W -> H x W x C, N x C x H x W -> N x H x W x C.

    Lua::

        local hwc = vp.to_hwc(output)   -- [1,C,H,W] -> [1,H,W,C]

    Args:
        t: 3-D or 4-D tensor, channels first.

    Returns:
        A contiguous tensor, channels last.

    Raises:
        VisionOpError: ``t`` is not 3-D or 4-D.
    """
    array = as_array(t, "to_hwc", "t")
    if array.ndim == 3:
        return np.ascontiguousarray(array.transpose(1, 2, 0))
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(0, 2, 3, 1))
    raise fail("to_hwc", f"t must be 3-D (CHW) or 4-D (NCHW), got {describe(array)}")


def transpose(t: Any, perm: Any) -> NDArray[Any]:
    """Permute the axes: output axis i is input axis ``perm[i]`` (1-based).

    Lua::

        local y = vp.transpose(x, {1, 3, 2})   -- [N, A, B] -> [N, B, A]

    Args:
        t: Tensor.
        perm: A permutation of 1..ndim (negative entries count from the end).

    Returns:
        A contiguous tensor.

    Raises:
        VisionOpError: ``perm`` is not a permutation of the axes.
    """
    op = "transpose"
    array = as_array(t, op, "t")
    entries = as_list(perm, op, "perm")
    axes = [as_axis(entry, array.ndim, op, "perm entry") for entry in entries]
    if sorted(axes) != list(range(array.ndim)):
        raise fail(op, f"perm must be a permutation of 1..{array.ndim}, got {describe(perm)}")
    return np.ascontiguousarray(array.transpose(axes))


def reshape(t: Any, shape: Any) -> NDArray[Any]:
    """Give a tensor a new shape with the same number of elements (C order).

    One entry may be -1: it is inferred from the others.

    Lua::

        local kp = vp.reshape(out, {33, 5})   -- [1, 165] -> [33, 5]

    Args:
        t: Tensor.
        shape: Array of sizes (>= 0, or a single -1).

    Returns:
        The reshaped tensor.

    Raises:
        VisionOpError: bad sizes, more than one -1, or a different element count.
    """
    op = "reshape"
    array = as_array(t, op, "t")
    sizes = [as_int(size, op, "shape entry", minimum=-1) for size in as_list(shape, op, "shape")]
    if sizes.count(-1) > 1:
        raise fail(op, f"shape may contain at most one -1, got {describe(shape)}")
    try:
        return np.ascontiguousarray(array.reshape(sizes))
    except ValueError as error:
        raise fail(op, f"cannot reshape {describe(array)} to {sizes!r}") from error


def squeeze(t: Any, axis: Any = None) -> NDArray[Any] | Number:
    """Remove size-1 axes: all of them, or only ``axis`` (1-based).

    Lua::

        local hm = vp.squeeze(heat)        -- [1, 1, H, W] -> [H, W]
        local v = vp.squeeze(logits, 1)    -- [1, C] -> [C]

    Args:
        t: Tensor.
        axis: Axis to remove (must have size 1); all size-1 axes when nil.

    Returns:
        The squeezed tensor (a number when nothing is left).

    Raises:
        VisionOpError: ``axis`` out of range or not of size 1.
    """
    op = "squeeze"
    array = as_array(t, op, "t")
    if axis is None:
        return _scalar_or_array(np.squeeze(array))
    index = as_axis(axis, array.ndim, op)
    if array.shape[index] != 1:
        raise fail(op, f"axis {axis!r} has size {array.shape[index]}, not 1, in {describe(array)}")
    return _scalar_or_array(np.squeeze(array, axis=index))


def expand_dims(t: Any, axis: Any) -> NDArray[Any]:
    """Insert a size-1 axis at position ``axis`` of the result (1-based; -1 appends).

    Lua::

        local x = vp.expand_dims(chw, 1)   -- [3, H, W] -> [1, 3, H, W]

    Args:
        t: Tensor.
        axis: Position of the new axis in the result, 1..ndim+1 or -(ndim+1)..-1.

    Returns:
        The tensor with one more axis.

    Raises:
        VisionOpError: ``axis`` out of range.
    """
    op = "expand_dims"
    array = as_array(t, op, "t")
    return np.expand_dims(array, as_axis(axis, array.ndim + 1, op))


def _tensor_list(tensors: Any, op: str) -> list[NDArray[Any]]:
    items = as_list(tensors, op, "tensors")
    if not items:
        raise fail(op, "tensors must not be empty, got []")
    return [as_array(item, op, f"tensors[{index}]") for index, item in enumerate(items, start=1)]


def stack(tensors: Any, axis: Any = 1) -> NDArray[Any]:
    """Stack same-shaped tensors along a new axis (default 1: a new leading batch axis).

    Lua::

        local batch = vp.stack({a, b, c})   -- 3 x [3, H, W] -> [3, 3, H, W]

    Args:
        tensors: Array of tensors of identical shape.
        axis: Position of the new axis in the result (1-based).

    Returns:
        The stacked tensor.

    Raises:
        VisionOpError: empty list, shapes differ, or ``axis`` out of range.
    """
    op = "stack"
    arrays = _tensor_list(tensors, op)
    index = as_axis(axis, arrays[0].ndim + 1, op)
    for position, array in enumerate(arrays, start=1):
        if array.shape != arrays[0].shape:
            raise fail(
                op, f"tensors[{position}] is {describe(array)} but tensors[1] is {describe(arrays[0])}"
            )
    return np.stack(arrays, axis=index)


def concat(tensors: Any, axis: Any = 1) -> NDArray[Any]:
    """Join tensors along an existing axis (default 1).

    Lua::

        local all = vp.concat({boxes_a, boxes_b}, 1)   -- [N, 4] + [M, 4] -> [N+M, 4]

    Args:
        tensors: Array of tensors with equal shapes except along ``axis``.
        axis: Axis to join along (1-based).

    Returns:
        The joined tensor.

    Raises:
        VisionOpError: empty list, ranks or other sizes differ, or ``axis`` out of range.
    """
    op = "concat"
    arrays = _tensor_list(tensors, op)
    index = as_axis(axis, arrays[0].ndim, op) if arrays[0].ndim else 0
    first = arrays[0]
    for position, array in enumerate(arrays, start=1):
        same = array.ndim == first.ndim and all(
            a == b for i, (a, b) in enumerate(zip(array.shape, first.shape, strict=False)) if i != index
        )
        if not same or array.ndim == 0:
            raise fail(
                op,
                f"tensors[{position}] is {describe(array)}, which does not match "
                f"tensors[1] {describe(first)} outside axis {axis!r}",
            )
    return np.concatenate(arrays, axis=index)


def slice_(t: Any, axis: Any, start: Any, stop: Any = -1) -> NDArray[Any]:
    """Take elements ``start..stop`` (1-based, inclusive) along ``axis``.

    Negative ``start``/``stop`` count from the end (-1 is the last element).

    Lua::

        local xywh = vp.slice(pred, 2, 1, 4)    -- columns 1..4 of [N, 85]
        local cls = vp.slice(pred, 2, 6)        -- columns 6..85
        local last = vp.slice(seq, 1, -1, -1)

    Args:
        t: Tensor.
        axis: Axis to slice (1-based).
        start: First element kept.
        stop: Last element kept (default: the last).

    Returns:
        A contiguous copy of the slice (same rank).

    Raises:
        VisionOpError: axis or bounds out of range, or ``stop`` before ``start``.
    """
    op = "slice"
    array = as_array(t, op, "t")
    if array.ndim == 0:
        raise fail(op, f"t must have at least one axis, got {describe(array)}")
    index = as_axis(axis, array.ndim, op)
    size = array.shape[index]
    first = _position(start, size, op, "start")
    last = _position(stop, size, op, "stop")
    if last < first:
        raise fail(op, f"stop ({stop!r}) is before start ({start!r}) on an axis of size {size}")
    selector: list[Any] = [slice(None)] * array.ndim
    selector[index] = slice(first, last + 1)
    return np.ascontiguousarray(array[tuple(selector)])


def _position(value: Any, size: int, op: str, name: str) -> int:
    """Convert a 1-based (or negative) element position to a 0-based one."""
    position = as_int(value, op, name)
    if 1 <= position <= size:
        return position - 1
    if -size <= position <= -1:
        return size + position
    raise fail(op, f"{name} must be in 1..{size} or -{size}..-1, got {position!r}")


def take(t: Any, indices: Any, axis: Any = 1) -> NDArray[Any]:
    """Select entries by 1-based index along ``axis`` (default 1: rows).

    Typical use: keep the rows ``vp.nms`` returned.

    Lua::

        local keep = vp.nms(boxes, scores, 0.45)
        local kept_boxes = vp.take(boxes, keep)
        local kept_scores = vp.take(scores, keep)

    Args:
        t: Tensor.
        indices: Array or [K] / [K, 1] tensor of indices in 1..size (may be empty).
        axis: Axis to select along (1-based).

    Returns:
        Tensor with ``K`` entries along ``axis``.

    Raises:
        VisionOpError: an index out of range, or ``axis`` out of range.
    """
    op = "take"
    array = as_array(t, op, "t")
    if array.ndim == 0:
        raise fail(op, f"t must have at least one axis, got {describe(array)}")
    index = as_axis(axis, array.ndim, op)
    positions = _index_vector(indices, array.shape[index], op)
    return np.take(array, positions, axis=index)


def _index_vector(indices: Any, size: int, op: str) -> NDArray[np.int64]:
    """Return 1-based indices (list or [K] / [K, 1] tensor) as 0-based int64, range-checked."""
    if isinstance(indices, list) and not indices:
        return np.zeros(0, dtype=np.int64)
    raw = as_array(indices, op, "indices")
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1 or raw.dtype.kind == "b":
        raise fail(op, f"indices must be a 1-D array of 1-based indices, got {describe(indices)}")
    if raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
        raise fail(op, f"indices must be integers, got {describe(indices)}")
    positions = raw.astype(np.int64) - 1
    bad = np.flatnonzero((positions < 0) | (positions >= size))
    if bad.size:
        raise fail(op, f"index {int(positions[bad[0]]) + 1!r} is out of range 1..{size}")
    return positions


def softmax(t: Any, axis: Any = -1) -> NDArray[np.floating[Any]]:
    """Softmax along ``axis`` (numerically stable), float32 (float64 kept).

    Lua::

        local probs = vp.softmax(logits)      -- over the last axis

    Args:
        t: Tensor.
        axis: Axis to normalise over (1-based, default -1).

    Returns:
        Tensor of the same shape whose entries along ``axis`` sum to 1.

    Raises:
        VisionOpError: ``axis`` out of range.
    """
    op = "softmax"
    array = _float_result(as_float_array(t, op, "t"))
    index = as_axis(axis, array.ndim, op)
    shifted = array - np.max(array, axis=index, keepdims=True)
    exps = np.exp(shifted)
    result: NDArray[np.floating[Any]] = exps / np.sum(exps, axis=index, keepdims=True)
    return result


def sigmoid(t: Any) -> NDArray[np.floating[Any]]:
    """Logistic function ``1 / (1 + exp(-t))``, float32 (float64 kept).

    Lua::

        local scores = vp.sigmoid(logits)

    Args:
        t: Tensor.

    Returns:
        Tensor of the same shape with values in [0, 1].
    """
    array = _float_result(as_float_array(t, "sigmoid", "t"))
    with np.errstate(over="ignore"):
        result: NDArray[np.floating[Any]] = np.reciprocal(1 + np.exp(-array)).astype(array.dtype, copy=False)
    return result


def exp(t: Any) -> NDArray[np.floating[Any]]:
    """Elementwise ``e^t``, float32 (float64 kept).

    Lua::

        local wh = vp.scale(vp.exp(log_wh), 4)   -- CenterFace box sizes

    Args:
        t: Tensor.

    Returns:
        Tensor of the same shape.
    """
    array = _float_result(as_float_array(t, "exp", "t"))
    with np.errstate(over="ignore"):
        result: NDArray[np.floating[Any]] = np.exp(array)
    return result


def argmax(t: Any, axis: Any = -1) -> NDArray[np.int64] | int:
    """1-based index of the largest entry along ``axis`` (first one on ties).

    Lua::

        local cls = vp.argmax(probs)           -- [N, C] -> [N] int64, values 1..C
        local best = vp.argmax(probs_1d)       -- a plain number for a 1-D tensor

    Args:
        t: Tensor with at least one axis and a non-empty ``axis``.
        axis: Axis to reduce (1-based, default -1).

    Returns:
        int64 tensor of 1-based indices (``t``'s shape without ``axis``), or a
        number when ``t`` is 1-D.

    Raises:
        VisionOpError: ``axis`` out of range, or empty along it.
    """
    op = "argmax"
    array = as_array(t, op, "t")
    index = _reduction_axis(array, axis, op)
    result = np.argmax(array, axis=index).astype(np.int64) + 1
    return int(result) if result.ndim == 0 else result


def _reduction_axis(array: NDArray[Any], axis: Any, op: str) -> int:
    if array.ndim == 0:
        raise fail(op, f"t must have at least one axis, got {describe(array)}")
    index = as_axis(axis, array.ndim, op)
    if array.shape[index] == 0:
        raise fail(op, f"cannot reduce an empty axis {axis!r} of {describe(array)}")
    return index


def max_(t: Any, axis: Any = None) -> NDArray[Any] | Number:
    """Largest entry: over everything (a number), or along ``axis`` (a tensor).

    Lua::

        local best = vp.max(scores)            -- a number
        local per_box = vp.max(cls_scores, 2)  -- [N, C] -> [N]

    Args:
        t: Non-empty tensor.
        axis: Axis to reduce (1-based); all axes when nil.

    Returns:
        A number (full reduction or 1-D input) or a tensor without ``axis``.

    Raises:
        VisionOpError: empty tensor or ``axis`` out of range.
    """
    op = "max"
    array = as_array(t, op, "t")
    if axis is None:
        if array.size == 0:
            raise fail(op, f"t must not be empty, got {describe(array)}")
        return _scalar_or_array(np.max(array))
    return _scalar_or_array(np.max(array, axis=_reduction_axis(array, axis, op)))


def topk(t: Any, k: Any, axis: Any = -1) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """The ``k`` largest entries along ``axis``, best first, with their 1-based indices.

    ``k`` larger than the axis is clamped to its size.

    Lua::

        local probs, ids = vp.topk(vp.softmax(logits), 5)   -- [1, 1000] -> [1, 5], [1, 5]

    Args:
        t: Tensor.
        k: Number of entries (>= 1).
        axis: Axis to select along (1-based, default -1).

    Returns:
        ``(values, indices)``: same shape as ``t`` with ``k`` entries along ``axis``;
        indices are 1-based int64. Ties keep the lower index first.

    Raises:
        VisionOpError: ``k`` < 1 or ``axis`` out of range.
    """
    op = "topk"
    array = as_array(t, op, "t")
    count = as_int(k, op, "k", minimum=1)
    index = _reduction_axis(array, axis, op)
    count = min(count, array.shape[index])
    key = -array.astype(np.float64) if array.dtype.kind in "biu" else -array
    order = np.argsort(key, axis=index, kind="stable")
    order = np.take(order, np.arange(count), axis=index)
    values = np.take_along_axis(array, order, axis=index)
    return values, order.astype(np.int64) + 1


def where_above(t: Any, thr: Any, limit: Any = None) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """Positions and values of the entries strictly greater than ``thr``, best first.

    Lua::

        local idx, vals = vp.where_above(scores, 0.5, 100)   -- scores [N, C]
        for i = 1, idx:dim(1) do
          local row, cls = idx:at(i, 1), idx:at(i, 2)
        end

    Args:
        t: Tensor with at least one axis.
        thr: Threshold.
        limit: Keep at most this many (the highest); all when nil.

    Returns:
        ``(indices, values)``: [K, ndim] int64 1-based positions and [K] values,
        sorted by value descending (ties in C order).

    Raises:
        VisionOpError: 0-d tensor, bad threshold or limit.
    """
    op = "where_above"
    array = as_array(t, op, "t")
    if array.ndim == 0:
        raise fail(op, f"t must have at least one axis, got {describe(array)}")
    threshold = as_float(thr, op, "thr")
    positions = np.argwhere(array > threshold)
    values = array[tuple(positions.T)]
    order = np.argsort(-values.astype(np.float64), kind="stable")
    if limit is not None:
        order = order[: as_int(limit, op, "limit", minimum=0)]
    return positions[order].astype(np.int64) + 1, values[order]


def gather_nd(t: Any, indices: Any) -> NDArray[Any]:
    """Pick entries (or sub-tensors) at 1-based positions.

    With indices [K, m] and ``t`` of shape [d1..dn], returns [K, d(m+1)..dn]:
    row k is ``t[i1, .., im]`` for the k-th index row.

    Lua::

        local idx, score = vp.heatmap_peaks(hm, 0.5)          -- idx [K, 2] (row, col)
        local off_x = vp.gather_nd(offset_x_map, idx)         -- [K]

    Args:
        t: Tensor.
        indices: [K, m] 1-based positions, m <= ndim (tensor or table; may be empty).

    Returns:
        Tensor of shape [K, ...rest].

    Raises:
        VisionOpError: wrong index shape, or a position out of range.
    """
    op = "gather_nd"
    array = as_array(t, op, "t")
    if isinstance(indices, list) and not indices:
        return np.zeros((0, *array.shape[1:]), dtype=array.dtype)
    raw = as_array(indices, op, "indices")
    if raw.ndim != 2 or not 1 <= raw.shape[1] <= array.ndim or raw.dtype.kind == "b":
        raise fail(op, f"indices must be [K, m] with 1 <= m <= {array.ndim}, got {describe(indices)}")
    if raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
        raise fail(op, f"indices must be integers, got {describe(indices)}")
    positions = raw.astype(np.int64) - 1
    limits = np.asarray(array.shape[: raw.shape[1]], dtype=np.int64)
    bad = np.flatnonzero(np.any((positions < 0) | (positions >= limits), axis=1))
    if bad.size:
        row = (positions[bad[0]] + 1).tolist()
        raise fail(op, f"index row {int(bad[0]) + 1} = {row!r} is out of range for shape {list(array.shape)}")
    picked: NDArray[Any] = array[tuple(positions.T)]
    return picked


def totable(t: Any) -> list[Any] | Number | bool:
    """Convert a small tensor to (nested) Lua tables of numbers.

    Lua::

        local rows = vp.totable(boxes)    -- {{x1, y1, x2, y2}, ...}
        print(rows[1][3])

    Args:
        t: Tensor of at most 100000 elements.

    Returns:
        Nested arrays (a number for a 0-d tensor).

    Raises:
        VisionOpError: more than 100000 elements.
    """
    op = "totable"
    array = as_array(t, op, "t")
    check_table_size(array, op)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    result: list[Any] | Number | bool = array.tolist()
    return result


def zeros(shape: Any, dtype: str = "float32") -> NDArray[Any]:
    """A tensor of zeros.

    Lua::

        local z = vp.zeros({1, 3, 48, 320})
        local m = vp.zeros({10}, "int64")

    Args:
        shape: Array of sizes (>= 0), or a single size.
        dtype: See ``vp.astype``.

    Returns:
        The tensor.

    Raises:
        VisionOpError: negative size or unknown dtype.
    """
    op = "zeros"
    target = as_dtype(dtype, op)
    sizes = shape if isinstance(shape, list) else [shape]
    return np.zeros([as_int(size, op, "shape entry", minimum=0) for size in sizes], dtype=target)


def from_table(values: Any, dtype: str = "float32") -> NDArray[Any]:
    """Build a tensor from a (nested, rectangular) table of numbers.

    Lua::

        local anchors = vp.from_table({{10, 13}, {16, 30}, {33, 23}})   -- [3, 2] float32
        local ids = vp.from_table({1, 5, 7}, "int64")

    Args:
        values: Number, or nested arrays of numbers/booleans of equal lengths.
        dtype: See ``vp.astype`` (float32 by default).

    Returns:
        The tensor (a copy).

    Raises:
        VisionOpError: ragged table, non-numbers or unknown dtype.
    """
    op = "from_table"
    target = as_dtype(dtype, op)
    return np.array(as_array(values, op, "values"), dtype=target)


def _arithmetic(
    a: Any, b: Any, op: str, function: Callable[[NDArray[Any], NDArray[Any]], NDArray[Any]]
) -> NDArray[Any]:
    """Apply a broadcasting binary op with the ``vp`` dtype rule.

    Result dtype: float64 if a float64 tensor is involved; float32 if any float
    tensor or a non-integral number is; int64 when everything is an integer
    (Lua numbers with integral values count as integers).
    """
    array = as_array(a, op, "t")
    scalar = isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, (bool, np.bool_))
    other = np.asarray(as_float(b, op, "other")) if scalar else as_array(b, op, "other")
    float_tensors = [x.dtype for x in ([array] if scalar else [array, other]) if x.dtype.kind == "f"]
    if np.float64 in float_tensors:
        dtype: type[np.generic] = np.float64
    elif float_tensors or (scalar and not float(other).is_integer()):
        dtype = np.float32
    else:
        dtype = np.int64
    try:
        return function(array.astype(dtype, copy=False), other.astype(dtype))
    except ValueError as error:
        raise fail(op, f"cannot broadcast {describe(array)} with {describe(b)}") from error


def scale(t: Any, s: Any) -> NDArray[Any]:
    """Multiply a tensor by a number.

    Lua::

        local px = vp.scale(norm_xy, 640)

    Args:
        t: Tensor.
        s: Number.

    Returns:
        ``t * s`` (dtype rule of ``vp.add``).

    Raises:
        VisionOpError: ``s`` is not a number.
    """
    if isinstance(s, (list, np.ndarray)):
        raise fail("scale", f"s must be a number (use vp.mul for tensors), got {describe(s)}")
    return _arithmetic(t, s, "scale", np.multiply)


def add(t: Any, other: Any) -> NDArray[Any]:
    """Elementwise ``t + other`` with numpy broadcasting; ``other`` is a number or a tensor.

    Result dtype: float64 if a float64 tensor is involved, float32 if any float
    tensor or a non-integral number is, else int64 (no uint8 overflow).

    Lua::

        local ids0 = vp.add(class_ids, -1)   -- 1-based -> 0-based
        local centred = vp.add(xy, offsets)

    Args:
        t: Tensor.
        other: Number or tensor broadcastable against ``t``.

    Returns:
        The sum.

    Raises:
        VisionOpError: shapes that do not broadcast.
    """
    return _arithmetic(t, other, "add", np.add)


def mul(t: Any, other: Any) -> NDArray[Any]:
    """Elementwise ``t * other`` with numpy broadcasting (dtype rule of ``vp.add``).

    Lua::

        local xy = vp.mul(norm_xy, vp.from_table({640, 480}))   -- [N, 2] * [2]

    Args:
        t: Tensor.
        other: Number or tensor broadcastable against ``t``.

    Returns:
        The product.

    Raises:
        VisionOpError: shapes that do not broadcast.
    """
    return _arithmetic(t, other, "mul", np.multiply)


def clip(t: Any, lo: Any = None, hi: Any = None) -> NDArray[Any]:
    """Clamp values into ``[lo, hi]`` (either bound may be nil); the dtype is kept.

    Lua::

        local p = vp.clip(x, 0, 1)
        local pos = vp.clip(x, 0, nil)

    Args:
        t: Tensor.
        lo: Lower bound or nil.
        hi: Upper bound or nil.

    Returns:
        The clamped tensor, same dtype as ``t``.

    Raises:
        VisionOpError: bounds not numbers, or ``lo > hi``.
    """
    op = "clip"
    array = as_array(t, op, "t")
    low = None if lo is None else as_float(lo, op, "lo")
    high = None if hi is None else as_float(hi, op, "hi")
    if low is not None and high is not None and low > high:
        raise fail(op, f"lo must be <= hi, got lo={low!r}, hi={high!r}")
    if low is None and high is None:
        return array
    if array.dtype.kind in "iu":
        info = np.iinfo(array.dtype)
        low_int = None if low is None else min(max(math.ceil(low), int(info.min)), int(info.max))
        high_int = None if high is None else max(min(math.floor(high), int(info.max)), int(info.min))
        clipped: NDArray[Any] = np.clip(array, low_int, high_int)
    elif array.dtype.kind == "b":
        raise fail(op, f"t must hold numbers, not booleans, got {describe(array)}")
    else:
        clipped = np.clip(array, low, high)
    return clipped.astype(array.dtype, copy=False)
