"""Inputs through system shared memory, where client and server share a host (KServe v2 extension).

Triton offers ``system_shared_memory``: the client writes a tensor into a POSIX
shared-memory region it registered with the server, and the request carries only the
region's name, size and offset instead of the tensor bytes. ``SharedMemoryInputs``
keeps one region per request slot (``max_in_flight`` of them), grows a slot's region
when a request needs more, and re-registers every region after the server restarted
(it forgets registrations). Whether to use it is decided once at start-up:
``use_shared_memory``.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ros_vision_pipe.engine.remote.backend_spec import RemoteBackend, SharedMemory
from ros_vision_pipe.engine.remote.client import KServeClient, ShmInputs

#: The KServe v2 / Triton extension name in the server's metadata.
EXTENSION = "system_shared_memory"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_ALIGN = 64


def use_shared_memory(backend: RemoteBackend, extensions: tuple[str, ...]) -> tuple[bool, str]:
    """Whether to send inputs through shared memory, and why (for the stats and the log).

    Returns:
        (use, reason). ``SharedMemory.SYSTEM`` without the extension is not decided here:
        the caller fails start-up with the reason.
    """
    if backend.shared_memory is SharedMemory.OFF:
        return False, "off in the configuration"
    if EXTENSION not in extensions:
        return False, f"the server does not offer the {EXTENSION!r} extension (it offers {sorted(extensions)})"
    if backend.shared_memory is SharedMemory.AUTO and backend.host not in _LOOPBACK:
        return False, f"{backend.host!r} is not a loopback address (set shared_memory = 'system' to force it)"
    return True, f"the server offers {EXTENSION!r}"


class _Slot:
    __slots__ = ("index", "name", "key", "size", "handle")

    def __init__(self, index: int, name: str, key: str) -> None:
        self.index = index
        self.name = name
        self.key = key
        self.size = 0
        self.handle: Any = None


class SharedMemoryInputs:
    """Request slots backed by registered system shared-memory regions.

    Args:
        client: The model's client (registers the regions).
        slots: Requests in flight at once.
    """

    def __init__(self, client: KServeClient, slots: int) -> None:
        """Create the slots; regions are created on first use."""
        self._client = client
        tag = f"rvp_{os.getpid()}_{client.backend.model}_{id(self):x}"
        self._slots = [_Slot(i, f"{tag}_{i}", f"/{tag}_{i}") for i in range(max(1, slots))]
        self._free: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        for slot in self._slots:
            self._free.put(slot)
        self._lock = threading.Lock()

    def write(self, feeds: Mapping[str, np.ndarray]) -> tuple[int, ShmInputs]:
        """Copy ``feeds`` into a free slot's region; returns the slot (to ``release``) and the request's regions."""
        from tritonclient.utils import shared_memory as shm

        slot = self._free.get()
        try:
            offsets, total = {}, 0
            for name, array in feeds.items():
                offsets[name] = total
                total += -(-array.nbytes // _ALIGN) * _ALIGN
            if slot.size < total:
                self._drop(slot)
                slot.handle = shm.create_shared_memory_region(slot.name, slot.key, total)
                slot.size = total
                self._client.register_shared_memory(slot.name, slot.key, total)
            for name, array in feeds.items():
                shm.set_shared_memory_region(slot.handle, [np.ascontiguousarray(array)], offset=offsets[name])
            return slot.index, {name: (slot.name, feeds[name].nbytes, offsets[name]) for name in feeds}
        except BaseException:
            self._free.put(slot)
            raise

    def release(self, index: int) -> None:
        """Give a slot back once its request has completed."""
        self._free.put(self._slots[index])

    def reregister(self) -> None:
        """Register every existing region again (after the server restarted)."""
        with self._lock:
            for slot in self._slots:
                if slot.handle is not None:
                    self._client.unregister_shared_memory(slot.name)
                    self._client.register_shared_memory(slot.name, slot.key, slot.size)

    def _drop(self, slot: _Slot) -> None:
        if slot.handle is None:
            return
        from tritonclient.utils import shared_memory as shm

        self._client.unregister_shared_memory(slot.name)
        shm.destroy_shared_memory_region(slot.handle)
        slot.handle, slot.size = None, 0

    def close(self) -> None:
        """Unregister and destroy every region."""
        for slot in self._slots:
            self._drop(slot)
