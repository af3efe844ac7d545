"""Reductions of ``vp`` along an axis: softmax, argmax, max, top-k and thresholding.

Every op accepts an ndarray or a (nested) table of numbers wherever it takes a
tensor, and never writes into its inputs. Axes and indices are 1-based, as Lua
counts (negative axes count from the end: -1 is the last axis); index results
are 1-based int64. A result that is a single number (a full reduction, the
argmax of a 1-D tensor) is returned as a Lua number, not as a tensor.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    Number,
    as_array,
    as_axis,
    as_float,
    as_float_array,
    as_int,
    describe,
    fail,
    float_result,
    scalar_or_array,
)


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
    array = float_result(as_float_array(t, op, "t"))
    index = as_axis(axis, array.ndim, op)
    shifted = array - np.max(array, axis=index, keepdims=True)
    exps = np.exp(shifted)
    result: NDArray[np.floating[Any]] = exps / np.sum(exps, axis=index, keepdims=True)
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
        return scalar_or_array(np.max(array))
    return scalar_or_array(np.max(array, axis=_reduction_axis(array, axis, op)))


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
