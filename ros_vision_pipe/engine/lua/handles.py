"""Tensor handles: how Lua scripts hold numpy arrays without touching their memory.

The ``vp`` operations on tensors are in ``engine/vision/tensor.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The only attributes a Lua script may read on a tensor handle.
TENSOR_ATTRIBUTES = frozenset({"shape", "dim", "ndim", "dtype", "at", "numel"})


class Tensor:
    """An opaque handle on an ndarray, as Lua scripts see it.

    Lua usage::

        local n, c, h, w = t:shape()   -- dimensions as multiple values
        local width = t:dim(4)         -- one dimension, 1-based
        local v = t:at(1, 1, 10, 20)   -- one element, 1-based indices
        print(t.ndim, t.dtype, t:numel())
    """

    __slots__ = ("array", "__weakref__")

    def __init__(self, array: np.ndarray) -> None:
        """Wrap ``array`` (not copied)."""
        self.array = array

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return int(self.array.ndim)

    @property
    def dtype(self) -> str:
        """Element type name, e.g. ``float32``."""
        return str(self.array.dtype)

    def shape(self) -> tuple[int, ...]:
        """Dimensions, returned to Lua as multiple values."""
        return tuple(int(d) for d in self.array.shape)

    def dim(self, axis: int) -> int:
        """Size of dimension ``axis`` (1-based; negative counts from the end)."""
        index = int(axis) - 1 if axis > 0 else int(axis)
        if not -self.array.ndim <= index < self.array.ndim:
            raise IndexError(f"dim: axis {axis!r} out of range for a {self.array.ndim}-D tensor")
        return int(self.array.shape[index])

    def numel(self) -> int:
        """Number of elements."""
        return int(self.array.size)

    def at(self, *indices: int) -> Any:
        """One element at 1-based ``indices`` (one index per dimension)."""
        if len(indices) != self.array.ndim:
            raise IndexError(
                f"at: {self.array.ndim}-D tensor of shape {self.array.shape} needs "
                f"{self.array.ndim} indices, got {len(indices)}"
            )
        position = tuple(int(i) - 1 for i in indices)
        for i, size in zip(position, self.array.shape, strict=False):
            if not 0 <= i < size:
                raise IndexError(f"at: indices {indices!r} out of range for shape {self.array.shape}")
        return self.array[position].item()

    def __repr__(self) -> str:
        return f"Tensor({self.dtype}{list(self.array.shape)})"
