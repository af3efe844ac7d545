"""Tensor creation and conversion ops of ``vp``: normalise, cast, build, read back.

Every op accepts an ndarray or a (nested) table of numbers wherever it takes a
tensor, and never writes into its inputs. Axes are 1-based, as Lua counts
(negative axes count from the end: -1 is the last axis).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import (
    Number,
    as_array,
    as_axis,
    as_dtype,
    as_float,
    as_int,
    as_opts,
    check_table_size,
    describe,
    fail,
)
from ros_vision_pipe.engine.vision.buffers import REUSED_BUFFERS

_NORMALIZE_OPTIONS = ("scale", "mean", "std", "channel_axis")


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
    shape = [1] * array.ndim
    channels = 1
    if Normalization.per_channel(options):
        if array.ndim == 0:
            raise fail(op, f"per-channel mean/std need a tensor with a channel axis, got {describe(array)}")
        axis = as_axis(options.get("channel_axis", -1), array.ndim, op, "opts.channel_axis")
        channels = array.shape[axis]
        shape[axis] = channels
    elif "channel_axis" in options and array.ndim:
        as_axis(options["channel_axis"], array.ndim, op, "opts.channel_axis")
    result = REUSED_BUFFERS.take(array.shape, np.float32)
    Normalization.from_options(options, channels, tuple(shape), op, "opts").apply(array, result)
    return result


@dataclass(frozen=True)
class Normalization:
    """``(x * scale - mean) / std`` in float32, written in place (``normalize``, ``crop_batch``).

    ``mean`` is None when it is 0 and ``std`` None when it is 1: subtracting 0 and dividing
    by 1 change no float32 value, so those passes over the data are left out.

    Attributes:
        scale: Factor applied first.
        mean: Subtracted next (a scalar or per-channel array shaped to broadcast), or None.
        std: Divisor last (same shapes), or None.
    """

    scale: np.float32
    mean: NDArray[np.float32] | None
    std: NDArray[np.float32] | None
    _tables: dict[int, NDArray[np.float32]] = field(default_factory=dict, compare=False, repr=False)

    @staticmethod
    def per_channel(options: Mapping[str, Any]) -> bool:
        """True when ``mean`` or ``std`` of ``options`` is given per channel (an array)."""
        return any(isinstance(options.get(key), (list, tuple, np.ndarray)) for key in ("mean", "std"))

    @classmethod
    def from_options(cls, options: Mapping[str, Any], channels: int, shape: tuple[int, ...], op: str,
                     name: str) -> Normalization:
        """Read ``scale``, ``mean`` and ``std`` of an options table.

        Args:
            options: The table (``name`` says where it is, e.g. ``"opts"``).
            channels: Entries a per-channel ``mean``/``std`` must have.
            shape: Shape per-channel values take to broadcast against the data.
            op: Lua name of the calling op.
            name: Name of the table in errors.

        Raises:
            VisionOpError: a bad value, a wrong number of per-channel values, or a zero std.
        """
        scale = as_float(options.get("scale", 1.0), op, f"{name}.scale")
        mean_value = options.get("mean", 0.0)
        std_value = options.get("std", 1.0)
        mean = np.asarray(_per_channel(mean_value, channels, op, f"{name}.mean"), dtype=np.float32)
        std = np.asarray(_per_channel(std_value, channels, op, f"{name}.std"), dtype=np.float32)
        if np.any(std == 0):
            raise fail(op, f"{name}.std must not be 0, got {describe(std_value)}")
        if cls.per_channel(options):
            mean = np.broadcast_to(mean, (channels,)).reshape(shape)
            std = np.broadcast_to(std, (channels,)).reshape(shape)
        return cls(scale=np.float32(scale), mean=None if np.all(mean == 0) else mean,
                   std=None if np.all(std == 1) else std)

    def apply(self, source: NDArray[Any], out: NDArray[np.float32]) -> None:
        """Write the normalised ``source`` into ``out`` (float32, same shape).

        A uint8 source with a mean or a std, scalars or per channel of its last axis, goes
        through a 256-entry table of the same float32 arithmetic (``cv2.LUT``: one pass, the
        same bits; per-channel terms broadcast over a batch cost numpy several times that);
        anything else takes one numpy pass per term.
        """
        channels = self._table_channels(source, out)
        if channels:
            table = self._tables.get(channels)
            if table is None:
                table = self._tables[channels] = self._table(channels)
            flat_source = source.reshape(-1, 1, channels) if channels > 1 else source.reshape(-1, source.shape[-1])
            flat_out = out.reshape(flat_source.shape)
            written = cv2.LUT(flat_source, table, dst=flat_out)
            if written.ctypes.data != flat_out.ctypes.data:  # OpenCV made its own array: copy it over
                np.copyto(flat_out, written.reshape(flat_out.shape))
            return
        np.multiply(source, self.scale, out=out, dtype=np.float32)
        if self.mean is not None:
            np.subtract(out, self.mean, out=out)
        if self.std is not None:
            np.divide(out, self.std, out=out)

    def _table_channels(self, source: NDArray[Any], out: NDArray[np.float32]) -> int:
        """Channels of the table ``apply`` can use on ``source`` (1: one for all), 0 when it cannot."""
        if (source.dtype != np.uint8 or source.ndim == 0 or source.size == 0 or out.shape != source.shape
                or not source.flags.c_contiguous or not out.flags.c_contiguous):
            return 0
        if self.mean is None and self.std is None:
            return 0  # one multiplication: as fast as the table
        channels = 1
        for term in (self.mean, self.std):
            if term is None or term.size == 1:
                continue
            if term.shape[-1] != source.shape[-1] or term.size != term.shape[-1] or term.size > 4:
                return 0  # not per channel of the last axis (channels first), or too many channels
            channels = term.size
        return channels

    def _table(self, channels: int) -> NDArray[np.float32]:
        """The normalised value of each byte 0..255 (per channel: [1, 256, channels])."""
        values = np.arange(256, dtype=np.uint8).reshape(256, 1)
        table = np.multiply(values, self.scale, dtype=np.float32)
        if self.mean is not None:
            table = np.subtract(table, self.mean.reshape(-1)[:channels].reshape(1, -1))
        if self.std is not None:
            table = np.divide(table, self.std.reshape(-1)[:channels].reshape(1, -1))
        table = np.ascontiguousarray(np.broadcast_to(table, (256, channels)), dtype=np.float32)
        return table.reshape(1, 256, channels) if channels > 1 else table.reshape(1, 256)


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
