"""Bounded, closable work queues with one lane per source and an overflow policy.

Every queue between threads of the engine is a ``LaneQueue``: the inboxes of the
parallel_async workers (one lane per source, ``max_queue_size`` each, drop-oldest
or block), and the small buffers between the preprocess, inference and
postprocess stages (one lane, one slot, block). A consumer takes items round-robin
across lanes, so one busy camera cannot starve another.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

from ros_vision_pipe.engine.errors import ConfigError, PipelineClosedError
from ros_vision_pipe.engine.records import OverflowPolicy

T = TypeVar("T")


class QueueClosedError(PipelineClosedError):
    """The queue was closed while a producer was putting or waiting for room."""


class LaneQueue(Generic[T]):
    """A FIFO per lane, bounded per lane, read round-robin across lanes.

    Args:
        name: Named in error messages (``"worker 'scene'"``).
        max_size: Items per lane; ``None`` for unbounded.
        policy: What ``put`` does on a full lane: ``DROP_OLDEST`` returns the
            discarded item, ``BLOCK`` waits for room, ``REJECT`` is refused here
            (the frame-level pipeline applies it before the queue).
    """

    def __init__(self, name: str, max_size: int | None = None,
                 policy: OverflowPolicy = OverflowPolicy.BLOCK) -> None:
        """Create an empty, open queue."""
        if max_size is not None and max_size < 1:
            raise ConfigError(f"{name}: queue size must be >= 1, got {max_size!r}")
        if policy is OverflowPolicy.REJECT:
            raise ConfigError(f"{name}: a work queue drops the oldest item or blocks, not {policy.value!r}")
        self.name = name
        self.max_size = max_size
        self.policy = policy
        self._lanes: dict[str, deque[T]] = {}
        self._ready: deque[str] = deque()  # lanes holding items, each at most once
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T, lane: str = "default") -> T | None:
        """Append ``item`` to ``lane``.

        Returns:
            The item dropped to make room (``DROP_OLDEST`` on a full lane), else None.

        Raises:
            QueueClosedError: The queue is closed, or was closed while ``BLOCK`` waited.
        """
        with self._cond:
            items = self._lanes.setdefault(lane, deque())
            dropped: T | None = None
            if self.max_size is not None and len(items) >= self.max_size:
                if self.policy is OverflowPolicy.DROP_OLDEST:
                    dropped = items.popleft()
                else:
                    while not self._closed and len(items) >= self.max_size:
                        self._cond.wait()
            if self._closed:
                raise QueueClosedError(f"{self.name} is closed")
            if not items and dropped is None:  # a lane that dropped is still in the ready list
                self._ready.append(lane)
            items.append(item)
            self._cond.notify_all()
            return dropped

    def get(self, timeout: float | None = None) -> T | None:
        """Take the next item, lanes in turn; None once closed (or after ``timeout`` seconds)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._ready and not self._closed:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self._closed:
                return None
            lane = self._ready.popleft()
            items = self._lanes[lane]
            item = items.popleft()
            if items:
                self._ready.append(lane)
            self._cond.notify_all()  # room for a blocked producer
            return item

    def wait_for_room(self, lane: str = "default") -> None:
        """Wait until a ``put`` into ``lane`` would not block (or the queue is closed)."""
        with self._cond:
            while not self._closed and self.max_size is not None and \
                    len(self._lanes.get(lane, ())) >= self.max_size:
                self._cond.wait()

    def depth(self, lane: str = "default") -> int:
        """Items waiting in ``lane``."""
        with self._cond:
            return len(self._lanes.get(lane, ()))

    def depths(self) -> dict[str, int]:
        """Items waiting, per lane."""
        with self._cond:
            return {lane: len(items) for lane, items in self._lanes.items()}

    def close(self) -> list[T]:
        """Close the queue, wake every waiter, and return the items that were left."""
        with self._cond:
            self._closed = True
            left = [item for items in self._lanes.values() for item in items]
            for items in self._lanes.values():
                items.clear()
            self._ready.clear()
            self._cond.notify_all()
            return left

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed
