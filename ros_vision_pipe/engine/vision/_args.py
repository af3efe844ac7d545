"""Argument checking shared by the ``vp`` operations (private).

The Lua bridge hands every op plain Python values: ndarrays for tensor handles,
(nested) lists for Lua arrays, dicts (string keys) for Lua key tables, an empty
list for an empty table, ``int`` for integral Lua numbers and ``float`` otherwise.
These helpers turn such values into checked numpy/Python values and raise
:class:`VisionOpError` naming the op and the offending value otherwise.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Largest number of elements ``totable`` (and similar Lua-table results) will convert.
MAX_TABLE_ELEMENTS = 100_000

#: dtype names a Lua script may ask for.
DTYPES: Mapping[str, type[np.generic]] = {
    "float32": np.float32,
    "float16": np.float16,
    "float64": np.float64,
    "uint8": np.uint8,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}

#: A Lua number as the ops return it.
Number = int | float

FloatArray = NDArray[np.floating[Any]]

_REPR = reprlib.Repr()
_REPR.maxlist = 6
_REPR.maxdict = 6
_REPR.maxstring = 60
_REPR.maxother = 60


class VisionOpError(ValueError):
    """A ``vp`` operation was called with an invalid argument.

    The message starts with the op's Lua name, e.g. ``resize: width must be > 0, got -3``.
    """


def describe(value: Any) -> str:
    """Return a short description of ``value`` for an error message.

    Tensors are described by dtype and shape (never by their content); other values
    by a ``repr`` truncated to a few items.
    """
    if isinstance(value, np.ndarray):
        return f"tensor {value.dtype}{list(value.shape)}"
    return _REPR.repr(value)


def fail(op: str, message: str) -> VisionOpError:
    """Build the error of ``op`` (the caller raises it)."""
    return VisionOpError(f"{op}: {message}")


def as_array(value: Any, op: str, name: str, dtype: type[np.generic] | None = None) -> NDArray[Any]:
    """Return ``value`` as a numeric ndarray (no copy when it already is one).

    Args:
        value: An ndarray, a number or a (nested) list of numbers / booleans. A
            table holding non-integral numbers becomes float32, one holding only
            integral numbers int64 (an ndarray keeps its dtype).
        op: Lua name of the calling op, for error messages.
        name: Argument name, for error messages.
        dtype: Convert to this dtype when given.

    Raises:
        VisionOpError: ``value`` is ragged, holds non-numbers, or is not array-like.
    """
    if isinstance(value, np.ndarray):
        array = value
    else:
        if value is None or isinstance(value, (str, bytes, Mapping)):
            raise fail(op, f"{name} must be a tensor or a table of numbers, got {describe(value)}")
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise fail(
                op, f"{name} must be a tensor or a rectangular table of numbers, got {describe(value)}"
            ) from error
        if array.dtype == np.float64 and dtype is None:
            array = array.astype(np.float32)  # tables of Lua numbers: float32, as models want
    if array.dtype.kind not in "biuf":
        raise fail(op, f"{name} must hold numbers, got {describe(value)} (dtype {array.dtype})")
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
    return array


def as_float_array(value: Any, op: str, name: str) -> NDArray[np.floating[Any]]:
    """Return ``value`` as a float array: float32/float64 kept, anything else float32."""
    array = as_array(value, op, name)
    if array.dtype in (np.float32, np.float64):
        return array
    return array.astype(np.float32)


def as_image(value: Any, op: str, name: str = "img") -> NDArray[np.uint8]:
    """Return ``value`` as an H x W x C uint8 image with C in 1, 3, 4.

    A 2-D array is taken as a single-channel image and returned as H x W x 1.
    Integer tables with values in 0..255 are accepted and converted.

    Raises:
        VisionOpError: wrong rank, channel count, dtype or value range.
    """
    array = as_array(value, op, name)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise fail(op, f"{name} must be an H x W x C image with C = 1, 3 or 4, got {describe(array)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise fail(op, f"{name} must not be empty, got {describe(array)}")
    if array.dtype != np.uint8:
        if array.dtype.kind in "iu" and array.size and (array.min() < 0 or array.max() > 255):
            raise fail(op, f"{name} values must be in 0..255 for a uint8 image, got {describe(array)}")
        if array.dtype.kind not in "iu":
            raise fail(op, f"{name} must be a uint8 image (use vp.astype first), got {describe(array)}")
        array = array.astype(np.uint8)
    return array


def as_int(value: Any, op: str, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an int; integral floats (Lua numbers) are accepted.

    Raises:
        VisionOpError: not an integral number, or below ``minimum``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise fail(op, f"{name} must be an integer, got {value!r}")
    integral_float = (
        isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()
    )
    if isinstance(value, (int, np.integer)) or integral_float:
        result = int(value)
    else:
        raise fail(op, f"{name} must be an integer, got {describe(value)}")
    if minimum is not None and result < minimum:
        raise fail(op, f"{name} must be >= {minimum}, got {result!r}")
    return result


def as_float(value: Any, op: str, name: str) -> float:
    """Return ``value`` as a finite float.

    Raises:
        VisionOpError: not a number, or NaN / infinite.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise fail(op, f"{name} must be a number, got {describe(value)}")
    result = float(value)
    if not math.isfinite(result):
        raise fail(op, f"{name} must be finite, got {value!r}")
    return result


def as_bool(value: Any, op: str, name: str) -> bool:
    """Return ``value`` as a bool (Lua ``true``/``false`` only).

    Raises:
        VisionOpError: ``value`` is not a boolean.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise fail(op, f"{name} must be true or false, got {describe(value)}")


def as_axis(value: Any, ndim: int, op: str, name: str = "axis") -> int:
    """Convert a 1-based Lua axis (negative counts from the end) to a 0-based one.

    Args:
        value: 1..ndim, or -ndim..-1 (-1 is the last axis).
        ndim: Number of axes it may refer to.
        op: Lua name of the calling op.
        name: Argument name, for error messages.

    Raises:
        VisionOpError: 0, out of range or not an integer.
    """
    axis = as_int(value, op, name)
    if 1 <= axis <= ndim:
        return axis - 1
    if -ndim <= axis <= -1:
        return ndim + axis
    raise fail(op, f"{name} must be in 1..{ndim} or -{ndim}..-1 (1-based), got {axis!r}")


def as_dtype(value: Any, op: str) -> type[np.generic]:
    """Return the numpy type for a Lua dtype name.

    Raises:
        VisionOpError: unknown name.
    """
    if isinstance(value, str) and value in DTYPES:
        return DTYPES[value]
    raise fail(op, f"dtype must be one of {sorted(DTYPES)}, got {describe(value)}")


def as_opts(value: Any, op: str, allowed: Sequence[str]) -> Mapping[str, Any]:
    """Return an options table as a mapping, rejecting unknown keys.

    ``None`` and an empty table (which the bridge converts to an empty list) mean
    "no options".

    Raises:
        VisionOpError: not a key table, or a key not in ``allowed`` (a typo).
    """
    if value is None or (isinstance(value, list) and not value):
        return {}
    if not isinstance(value, Mapping):
        raise fail(op, f"opts must be a table of named options, got {describe(value)}")
    unknown = sorted(str(key) for key in value if key not in allowed)
    if unknown:
        raise fail(op, f"unknown option {unknown[0]!r}; expected one of {sorted(allowed)}")
    return value


def as_list(value: Any, op: str, name: str) -> list[Any]:
    """Return a Lua array (list/tuple) as a list.

    Raises:
        VisionOpError: ``value`` is not a list.
    """
    if isinstance(value, (list, tuple)):
        return list(value)
    raise fail(op, f"{name} must be an array table, got {describe(value)}")


def check_table_size(array: NDArray[Any], op: str) -> None:
    """Refuse to convert arrays of more than ``MAX_TABLE_ELEMENTS`` elements to Lua tables.

    Raises:
        VisionOpError: the array is too large.
    """
    if array.size > MAX_TABLE_ELEMENTS:
        raise fail(
            op,
            f"tensor of {array.size} elements is too large for a Lua table "
            f"(limit {MAX_TABLE_ELEMENTS}), got {describe(array)}",
        )


def to_python_scalar(array: NDArray[Any]) -> int | float | bool:
    """Return a 0-d array (or size-1 array) as a Python number."""
    item = array.reshape(()).item()
    if isinstance(item, (bool, int, float)):
        return item
    return float(item)


def scalar_or_array(array: NDArray[Any]) -> NDArray[Any] | Number:
    """Return 0-d results as Python numbers, anything else unchanged."""
    if array.ndim == 0:
        return to_python_scalar(array)
    return array


def float_result(array: NDArray[Any]) -> FloatArray:
    """Return ``array`` as float64 if it already is, else float32."""
    return array if array.dtype == np.float64 else array.astype(np.float32)


def as_boxes(boxes: Any, op: str, name: str = "boxes", exact: bool = False) -> FloatArray:
    """Return ``boxes`` as a float [..., 4] array (float32 unless float64; float64 if ``exact``)."""
    if isinstance(boxes, list) and not boxes:
        return np.zeros((0, 4), dtype=np.float64 if exact else np.float32)
    array = as_array(boxes, op, name, dtype=np.float64) if exact else as_float_array(boxes, op, name)
    if array.ndim == 0 or array.shape[-1] != 4:
        raise fail(op, f"{name} must be a [..., 4] tensor, got {describe(boxes)}")
    return array


def as_boxes_2d(boxes: Any, op: str, name: str = "boxes", exact: bool = False) -> FloatArray:
    """Return ``boxes`` as a float [N, 4] array; a single [4] box becomes [1, 4]."""
    array = as_boxes(boxes, op, name, exact)
    if array.ndim == 1:
        array = array[np.newaxis]
    if array.ndim != 2:
        raise fail(op, f"{name} must be an [N, 4] tensor, got {describe(boxes)}")
    return array


def as_per_box(
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
