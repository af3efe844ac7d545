"""Taking serialized messages into buffers the intake reuses: one copy of the image instead of two.

rclpy's ``take_message(raw=True)`` takes a message into a new rcl buffer sized for it, copies that into
a new ``bytes`` and frees the buffer: for a VGA image two ~0.9 MB allocations and two copies per frame
on the intake thread. ``SerializedTaker`` calls ``rcl_take_serialized_message`` itself (ctypes, in the
librcl rclpy has loaded) into buffers of its own and hands out a read-only ``memoryview`` of the
message where it lies. A buffer is taken into again only once nothing holds a view of its last message
(the frame's image is one until the frame is done, the node keeps the last frame for a reload's
warm-up): meanwhile another buffer serves, so a buffer never changes under a frame. Buffers are made
as needed, and kept for reuse up to ``MAX_IDLE``.

Where librcl cannot be called this way (``available()`` is False), the intake takes with rclpy.
"""

from __future__ import annotations

import ctypes
import logging
import sys
from functools import cache
from typing import Any

_LOG = logging.getLogger("ros_vision_pipe.intake")

#: ``RCL_RET_OK`` and ``RCL_RET_SUBSCRIPTION_TAKE_FAILED`` (no message waiting), rcl/types.h.
_RCL_RET_OK = 0
_RCL_RET_TAKE_FAILED = 401
#: First size of a buffer, bytes (rcl grows it to the message it takes: a VGA bgr8 image is ~0.9 MB).
INITIAL_CAPACITY = 64 * 1024
#: Buffers kept when idle (more are made while frames hold theirs, then freed).
MAX_IDLE = 4
#: Room for ``rmw_message_info_t`` (64 bytes in rmw/types.h of Kilted), with margin.
_MESSAGE_INFO_SIZE = 512
#: Offset of ``received_timestamp`` in ``rmw_message_info_t`` (after the int64 ``source_timestamp``).
_RECEIVED_AT = 8


class _Allocator(ctypes.Structure):
    """``rcutils_allocator_t``."""

    _fields_ = [("allocate", ctypes.c_void_p), ("deallocate", ctypes.c_void_p), ("reallocate", ctypes.c_void_p),
                ("zero_allocate", ctypes.c_void_p), ("state", ctypes.c_void_p)]


class _Uint8Array(ctypes.Structure):
    """``rcutils_uint8_array_t`` (= ``rcl_serialized_message_t``)."""

    _fields_ = [("buffer", ctypes.c_void_p), ("buffer_length", ctypes.c_size_t),
                ("buffer_capacity", ctypes.c_size_t), ("allocator", _Allocator)]


class _Libraries:
    """The rcutils / rcl functions used, with their C signatures."""

    def __init__(self) -> None:
        rcutils, rcl = ctypes.CDLL("librcutils.so"), ctypes.CDLL("librcl.so")  # the ones rclpy loaded
        self.default_allocator = rcutils.rcutils_get_default_allocator
        self.default_allocator.restype = _Allocator
        self.default_allocator.argtypes = []
        self.init = rcutils.rcutils_uint8_array_init
        self.init.restype = ctypes.c_int
        self.init.argtypes = [ctypes.POINTER(_Uint8Array), ctypes.c_size_t, ctypes.POINTER(_Allocator)]
        self.fini = rcutils.rcutils_uint8_array_fini
        self.fini.restype = ctypes.c_int
        self.fini.argtypes = [ctypes.POINTER(_Uint8Array)]
        self.reset_error = rcutils.rcutils_reset_error
        self.reset_error.restype = None
        self.reset_error.argtypes = []
        self.take = rcl.rcl_take_serialized_message
        self.take.restype = ctypes.c_int
        self.take.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Uint8Array), ctypes.c_void_p, ctypes.c_void_p]


@cache
def _libraries() -> _Libraries | None:
    try:
        return _Libraries()
    except (OSError, AttributeError) as error:  # not the rcl rclpy uses, or not found
        _LOG.info("taking images with rclpy (librcl cannot be called directly: %s)", error)
        return None


def available() -> bool:
    """Whether ``SerializedTaker`` can take (librcl and rcutils found, with the functions it calls)."""
    return _libraries() is not None


class _Buffer:
    """One rcl serialized-message buffer, freed when the last view of a message in it is gone."""

    __slots__ = ("array", "_libs")

    def __init__(self, libs: _Libraries) -> None:
        self._libs = libs
        self.array = _Uint8Array()
        allocator = libs.default_allocator()
        if libs.init(ctypes.byref(self.array), INITIAL_CAPACITY, ctypes.byref(allocator)) != _RCL_RET_OK:
            libs.reset_error()
            raise MemoryError(f"cannot allocate a {INITIAL_CAPACITY} B message buffer")

    def contents(self) -> ctypes.Array[ctypes.c_uint8]:
        """The message taken last, as a ctypes array that keeps this buffer alive."""
        data = (ctypes.c_uint8 * self.array.buffer_length).from_address(self.array.buffer)
        data.owner = self  # type: ignore[attr-defined]  # ctypes instances take attributes
        return data

    def __del__(self) -> None:
        self._libs.fini(ctypes.byref(self.array))


class SerializedTaker:
    """Takes serialized messages from subscriptions into reused buffers (the module docstring).

    One taker serves the subscriptions of one intake thread; it is not for concurrent use.
    """

    def __init__(self) -> None:
        """No buffer yet (made at the first take)."""
        libs = _libraries()
        if libs is None:
            raise RuntimeError("librcl cannot be called directly here (see available())")
        self._libs = libs
        self._info = ctypes.create_string_buffer(_MESSAGE_INFO_SIZE)
        # the last message of each buffer: a ctypes array referenced here and by every view of it
        self._pool: list[tuple[_Buffer, ctypes.Array[ctypes.c_uint8] | None]] = []

    def _free_buffer(self) -> int:
        """Index in the pool of a buffer no view holds (made when none is); extra idle ones are freed."""
        # a message no view holds is referenced by its pool entry and getrefcount's argument only
        free = [i for i, entry in enumerate(self._pool) if entry[1] is None or sys.getrefcount(entry[1]) <= 2]
        for index in reversed(free[MAX_IDLE:]):
            del self._pool[index]
        if free:
            return free[0]
        self._pool.append((_Buffer(self._libs), None))
        return len(self._pool) - 1

    def take(self, subscription: Any) -> memoryview | None:
        """The next message waiting in ``subscription`` (serialized, read-only), or None when none is.

        The caller holds the subscription's handle (``with subscription.handle``).

        Raises:
            RuntimeError: rcl failed to take (not the same as no message waiting).
        """
        index = self._free_buffer()
        buffer = self._pool[index][0]
        self._pool[index] = (buffer, None)  # its last message is gone: rcl may move the buffer
        ret = self._libs.take(subscription.handle.pointer, ctypes.byref(buffer.array), self._info, None)
        if ret == _RCL_RET_TAKE_FAILED:
            return None
        if ret != _RCL_RET_OK:
            self._libs.reset_error()
            raise RuntimeError(f"rcl_take_serialized_message failed on {subscription.topic_name!r} (rcl error {ret})")
        data = buffer.contents()
        self._pool[index] = (buffer, data)
        return memoryview(data).cast("B").toreadonly()

    @property
    def received_ns(self) -> int:
        """When the last message taken reached this process: ``rmw_message_info_t.received_timestamp``
        (ns, system clock; 0 where the middleware does not set it)."""
        return ctypes.c_int64.from_buffer(self._info, _RECEIVED_AT).value

    @property
    def buffers(self) -> int:
        """Buffers made and not freed (in use or idle)."""
        return len(self._pool)


__all__ = ["INITIAL_CAPACITY", "MAX_IDLE", "SerializedTaker", "available"]
