"""Elementwise ops of ``vp``: activations and broadcasting arithmetic.

Every op accepts an ndarray or a (nested) table of numbers wherever it takes a
tensor, never writes into its inputs, and returns a tensor of the broadcast
shape. Integer arithmetic is done in int64 (no uint8 overflow); see ``vp.add``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    as_array,
    as_float,
    as_float_array,
    describe,
    fail,
    float_result,
)


def sigmoid(t: Any) -> NDArray[np.floating[Any]]:
    """Logistic function ``1 / (1 + exp(-t))``, float32 (float64 kept).

    Lua::

        local scores = vp.sigmoid(logits)

    Args:
        t: Tensor.

    Returns:
        Tensor of the same shape with values in [0, 1].
    """
    array = float_result(as_float_array(t, "sigmoid", "t"))
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
    array = float_result(as_float_array(t, "exp", "t"))
    with np.errstate(over="ignore"):
        result: NDArray[np.floating[Any]] = np.exp(array)
    return result


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
