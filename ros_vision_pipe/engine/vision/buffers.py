"""Large result arrays of ``vp`` ops, reused once nothing references them any more.

A fresh array of a few MiB costs its page faults every time it is made (for the 10-crop pose
batch, 7.5 MiB, about as much as normalising it: docs/performance.md, "One frame path"). An
op that builds such an array every frame takes it from ``REUSED_BUFFERS`` instead: an array of
an earlier call that no tensor handle, model feed, view or script variable refers to any more
(only the pool does) is as good as new and is written over; one still referenced is never
handed out, so no caller ever sees its data change.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Most bytes of arrays the pool keeps, and the smallest array it keeps (smaller ones are cheap).
KEEP_BYTES = 64 << 20
KEEP_MIN_BYTES = 1 << 20


class ReusedBuffers:
    """Arrays kept for reuse by the ops that build large results every frame (thread-safe)."""

    def __init__(self, keep_bytes: int = KEEP_BYTES, keep_min_bytes: int = KEEP_MIN_BYTES) -> None:
        """An empty pool keeping at most ``keep_bytes`` of arrays of ``keep_min_bytes`` or more."""
        self._lock = threading.Lock()
        self._kept: list[NDArray[Any]] = []
        self._keep_bytes = keep_bytes
        self._keep_min_bytes = keep_min_bytes

    def take(self, shape: tuple[int, ...], dtype: type[np.generic]) -> NDArray[Any]:
        """An uninitialised array of ``shape`` and ``dtype``: a kept one nobody else holds, or a new one."""
        wanted = np.dtype(dtype)
        with self._lock:  # the check and the hand-over are one step: two threads never get the same one
            for kept in self._kept:
                # nobody else: the references are the pool's list, ``kept`` and getrefcount's argument
                if kept.shape == shape and kept.dtype == wanted and sys.getrefcount(kept) == 3:
                    return kept
            array = np.empty(shape, dtype=wanted)
            if array.nbytes >= self._keep_min_bytes:
                self._kept.append(array)
                while sum(item.nbytes for item in self._kept) > self._keep_bytes:
                    self._kept.pop(0)
            return array

    @property
    def kept_bytes(self) -> int:
        """Bytes of the arrays the pool keeps."""
        with self._lock:
            return sum(item.nbytes for item in self._kept)


#: The pool of the ``vp`` ops (``crop_batch``, ``normalize``).
REUSED_BUFFERS = ReusedBuffers()
