"""Layout and indexing ops of ``vp``: axis order, shape, joining, slicing and selection.

Every op accepts an ndarray or a (nested) table of numbers wherever it takes a
tensor, and never writes into its inputs. Axes and indices are 1-based, as Lua
counts (negative axes count from the end: -1 is the last axis). A result that is
a single number (squeezing a 1-element tensor) is returned as a Lua number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    Number,
    as_array,
    as_axis,
    as_int,
    as_list,
    describe,
    fail,
    scalar_or_array,
)


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
    return _move_channels(t, "to_chw", (2, 0, 1), "3-D (HWC) or 4-D (NHWC)")


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
    return _move_channels(t, "to_hwc", (1, 2, 0), "3-D (CHW) or 4-D (NCHW)")


def _move_channels(t: Any, op: str, perm: tuple[int, int, int], expected: str) -> NDArray[Any]:
    """Apply the 3-D permutation ``perm`` to the last three axes (a leading batch axis stays)."""
    array = as_array(t, op, "t")
    if array.ndim == 3:
        return np.ascontiguousarray(array.transpose(perm))
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(0, *(axis + 1 for axis in perm)))
    raise fail(op, f"t must be {expected}, got {describe(array)}")


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
        return scalar_or_array(np.squeeze(array))
    index = as_axis(axis, array.ndim, op)
    if array.shape[index] != 1:
        raise fail(op, f"axis {axis!r} has size {array.shape[index]}, not 1, in {describe(array)}")
    return scalar_or_array(np.squeeze(array, axis=index))


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
