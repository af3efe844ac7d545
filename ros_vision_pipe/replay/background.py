"""Bag reading and result writing off the pipeline's thread, so that they are never its bottleneck.

``Prefetcher`` runs a producer (read + deserialize + decode) a bounded number of items ahead
of the consumer; ``BackgroundSink`` runs a consumer (map + serialize + write) behind the
producer. Both count ``wait_s``, the time the pipeline's thread waited for them: near zero
means reading and writing are not the bottleneck. Both stop on an ``Event`` and hand their
thread's exception to their owner, at the position where it happened.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from ros_vision_pipe.engine.threads import lower_thread_priority

T = TypeVar("T")

#: Seconds between two checks of the stop event while a queue is full or empty.
_POLL_S = 0.05

#: Niceness added to the reader and writer threads: on contended cores the kernel runs the
#: pipeline's threads first; the reader keeps up in their gaps, ``depth`` items ahead.
BACKGROUND_NICE = 5


class _End:
    """Sentinel: the producer finished (``error`` set when it raised)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class Prefetcher(Generic[T]):
    """Iterates ``produce()`` in a thread, at most ``depth`` items ahead of the consumer.

    Iterating the prefetcher yields the items in order, then re-raises the producer's
    exception, if any. ``close`` (or leaving the ``with`` block) stops and joins the thread.

    Args:
        produce: Returns the iterator to run in the thread.
        depth: Items read ahead (>= 1).
        name: Thread name.
        nice: Niceness added to the thread (``BACKGROUND_NICE``).
    """

    def __init__(self, produce: Callable[[], Iterator[T]], depth: int = 8, name: str = "replay-read",
                 nice: int = BACKGROUND_NICE) -> None:
        """Start the thread."""
        self._nice = nice
        self.wait_s = 0.0  # time the consumer waited for an item (the reader was behind)
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._produce = produce
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: T | _End) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        lower_thread_priority(self._nice)
        try:
            for item in self._produce():
                if not self._put(item):
                    return
        except BaseException as error:  # handed to the consumer at this position
            self._put(_End(error))
            return
        self._put(_End())

    def __iter__(self) -> Iterator[T]:
        """The produced items, in order; raises the producer's exception after its last item."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                start = time.perf_counter()
                item = self._queue.get()
                self.wait_s += time.perf_counter() - start
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def close(self) -> None:
        """Stop the producer and join its thread (idempotent)."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(_POLL_S)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundSink(Generic[T]):
    """Calls ``consume(item)`` in a thread for every ``put`` item, in order.

    ``put`` blocks while ``depth`` items wait. The first exception of ``consume`` stops the
    sink and is re-raised by the next ``put`` or by ``close``.

    Args:
        consume: Called once per item, in the sink's thread.
        depth: Items waiting at most (>= 1).
        name: Thread name.
        finish: Called once in the sink's thread after the last item, even after a failure
            (e.g. closing a bag whose SQLite connection belongs to that thread).
        nice: Niceness added to the thread (``BACKGROUND_NICE``).
    """

    def __init__(self, consume: Callable[[T], None], depth: int = 8, name: str = "replay-write",
                 finish: Callable[[], None] | None = None, nice: int = BACKGROUND_NICE) -> None:
        """Start the thread."""
        self._nice = nice
        self._consume = consume
        self._finish = finish
        self.wait_s = 0.0  # time ``put`` blocked on a full queue (the writer was behind)
        self._queue: queue.Queue[T | _End] = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._failed = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        lower_thread_priority(self._nice)
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, _End):
                    return
                if self._failed.is_set():
                    continue  # drain after a failure; the owner is told at its next call
                try:
                    self._consume(item)
                except BaseException as error:
                    self._error = error
                    self._failed.set()
        finally:
            if self._finish is not None:
                try:
                    self._finish()
                except BaseException as error:
                    if self._error is None:
                        self._error = error
                    self._failed.set()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, item: T) -> None:
        """Queue ``item``; raises the exception of an earlier item's ``consume``, if any."""
        self._raise()
        try:
            self._queue.put_nowait(item)
            return
        except queue.Full:
            pass
        start = time.perf_counter()
        try:
            while True:
                try:
                    self._queue.put(item, timeout=_POLL_S)
                    return
                except queue.Full:
                    self._raise()
        finally:
            self.wait_s += time.perf_counter() - start

    def close(self) -> None:
        """Wait for every queued item to be consumed, join the thread, raise a pending failure."""
        if not self._closed:
            self._closed = True
            self._queue.put(_End())
            self._thread.join()
        self._raise()


__all__ = ["BACKGROUND_NICE", "BackgroundSink", "Prefetcher", "lower_thread_priority"]
