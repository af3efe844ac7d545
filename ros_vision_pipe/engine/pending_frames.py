"""Frames submitted and not yet collected: ``submit`` / ``try_get_result`` / ``wait_result``.

See docs/execution-modes.md ("Submitting frames"). Frames overlap across stages: while
frame N is in inference, frame N+1 is preprocessed and frame N-1 postprocessed, each
model on its own three threads (``ModelStages``) joined by one-slot buffers. What each
mode contributes is its runner's ``start(ctx, cancel) -> Future[FrameResult]``
(``modes/``), the same call ``Pipeline.run`` makes.

``PendingFrames`` bounds the frames submitted and not yet collected
(``max_pending_frames``), applies ``submit_overflow`` when that bound is reached,
hands frames to the starter from its dispatcher thread (so ``submit`` never
waits for a model's queue), and returns results in submission order. A runner on the
direct path (``SequentialMode(direct=True)``) needs no dispatcher: its ``start`` never
waits, so a frame is started by ``submit`` itself when the first model is free, or by the
thread that frees it (``has_room`` / ``on_room``); until then it waits here, where
``drop_oldest`` can drop it. A frame
that fails comes back as a ``FrameResult`` with ``error`` set; the stream goes on.
Each frame's context lives in its ticket, then in its jobs, and is released once
its result exists.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from typing import Any, TypeVar

from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.modes.base import DirectStart, ModeRunner
from ros_vision_pipe.engine.records import FrameResult, Mode, OverflowPolicy
from ros_vision_pipe.engine.stats import StatsCollector

T = TypeVar("T")


class _Ticket:
    """A submitted frame, from ``submit`` until its result is collected or dropped."""

    __slots__ = ("ctx", "frame_id", "source", "timestamp", "stamp", "cancel", "future", "dropped")

    def __init__(self, ctx: FrameContext, stamp: Any) -> None:
        self.ctx: FrameContext | None = ctx
        self.frame_id = ctx.frame_id
        self.source = ctx.source
        self.timestamp = ctx.timestamp
        self.stamp = stamp
        self.cancel = threading.Event()
        self.future: Future[FrameResult] | None = None
        self.dropped = False


class PendingFrames:
    """Bounded submission, overlapped processing, in-order results.

    Args:
        starter: The mode's runner (its ``start``).
        mode: Execution mode (stamped on failed frames' results).
        max_pending: Frames submitted and not yet collected, at most.
        overflow: What ``submit`` does at that bound: ``REJECT`` (returns False),
            ``DROP_OLDEST`` (the oldest frame no model has started is dropped; when every
            pending frame is already in flight, the new frame is; counted), ``BLOCK``
            (waits for room, up to ``submit``'s timeout).
        stats: Where frames in, out, failed, rejected and dropped are counted.
    """

    def __init__(self, starter: ModeRunner, mode: Mode, *, max_pending: int,
                 overflow: OverflowPolicy, stats: StatsCollector) -> None:
        """Start the dispatcher thread."""
        self._starter = starter
        self._mode = mode
        self._max_pending = max_pending
        self._overflow = overflow
        self._stats = stats
        self._pending: deque[_Ticket] = deque()  # submitted, not collected, not dropped
        self._to_start: deque[_Ticket] = deque()
        self._cond = threading.Condition()
        self._closed = False
        stats.set_pending_provider(lambda: len(self._pending))
        self._start_lock = threading.Lock()  # direct path: frames start one at a time, in order
        self._starter_thread: int | None = None  # the thread inside ``_start_ready``
        self._direct: DirectStart | None = starter if getattr(starter, "direct", False) else None  # type: ignore[assignment]
        self._ready: Callable[[], None] | None = None  # ``on_ready``
        # Frames that back up (direct path): a frame submitted while an earlier one has no result yet,
        # or that arrived before the previous result was out (``start_waiting``), tells the runner
        # (``DirectStart.backlog``); a client that sends a frame only once it has the last result
        # never looks backed up.
        self._running = 0  # frames started whose result is not out
        self._result_ns = 0  # ``time.time_ns()`` when the last result was out
        self._thread: threading.Thread | None = None
        if self._direct is not None:
            self._direct.on_room(self._start_ready)
        else:
            self._thread = threading.Thread(target=self._dispatch, name="vp-frame-dispatcher", daemon=True)
            self._thread.start()

    def submit(self, make_context: Callable[[], FrameContext], stamp: Any = None,
               timeout: float | None = None, *, start: bool = True) -> bool:
        """Queue a frame; never waits for the models (``BLOCK`` waits for a collected result).

        Args:
            make_context: Validates the image and assigns the frame index; called
                only once the frame is accepted.
            stamp: Returned untouched in the frame's result.
            timeout: ``BLOCK`` only: seconds to wait for room (None: as long as it takes).
            start: Direct path only: False leaves the frame waiting for ``start_waiting``
                (the caller starts it once it holds no lock of its own).

        Returns:
            True when the frame was accepted; False when it was rejected (``REJECT``
            at the bound, or ``BLOCK`` timed out). Rejections are counted.

        Raises:
            InputError: The image is invalid (nothing was queued).
            PipelineClosedError: The pipeline is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed and len(self._pending) >= self._max_pending:
                if self._overflow is OverflowPolicy.DROP_OLDEST:
                    # Only a frame no model has started is dropped: cancelling one in flight
                    # would throw its work away and, with a slow model, starve the stream.
                    waiting = next((t for t in self._to_start if not t.dropped), None)
                    self._stats.count(frames_dropped=1)
                    if waiting is None:
                        return False  # every pending frame is being processed: the new one is dropped
                    self._to_start.remove(waiting)
                    self._pending.remove(waiting)
                    waiting.dropped = True
                    waiting.cancel.set()
                    waiting.ctx = None
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._overflow is OverflowPolicy.REJECT or (remaining is not None and remaining <= 0):
                    self._stats.count(frames_rejected=1)
                    return False
                self._cond.wait(remaining)
            if self._closed:
                raise PipelineClosedError("the pipeline is closed")
            ticket = _Ticket(make_context(), stamp)
            self._pending.append(ticket)
            self._to_start.append(ticket)
            self._stats.count(frames_in=1)
            self._cond.notify_all()
            backlog = self._running > 0
        if self._direct is not None:
            if backlog:  # an earlier frame's result is not out yet
                self._direct.backlog()
            if start:
                self._start_ready()
        return True

    def start_waiting(self, arrived_ns: int = 0) -> None:
        """Direct path: start the waiting frames, oldest first, while the first model has room.

        With a task runner that runs an idle model's task in the calling thread, the frames run
        here, one after the other. Nothing to do without the direct path (the dispatcher starts frames).
        ``arrived_ns``: when the newest frame reached the caller (``time.time_ns()`` clock; 0: not
        known). A frame that arrived before the previous frame's result was out backed up behind
        it, although the caller, busy running that frame, submits it only now (``backlog``).
        """
        if self._direct is not None:
            if 0 < arrived_ns < self._result_ns:
                self._direct.backlog()
            self._start_ready()

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                while not self._to_start and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                ticket, ctx = self._next_to_start()
            if ctx is not None:
                self._start(ticket, ctx)

    def _start_ready(self) -> None:
        """Direct path: start waiting frames, oldest first, while the first model has room.

        A frame run in this thread ends with ``on_room`` calling back here: that call returns at
        once and this loop starts the next frame.
        """
        assert self._direct is not None
        me = threading.get_ident()
        if self._starter_thread == me:
            return
        while True:
            with self._start_lock:  # one starter at a time: frames start in submission order
                self._starter_thread = me
                try:
                    with self._cond:
                        if self._closed or not self._to_start or not self._direct.has_room():
                            return
                        ticket, ctx = self._next_to_start()
                    if ctx is not None:
                        self._start(ticket, ctx)
                finally:
                    self._starter_thread = None

    def _next_to_start(self) -> tuple[_Ticket, FrameContext | None]:
        """The oldest frame not started, and its context (None when dropped: else the caller starts it,
        ``_start``); caller holds the lock."""
        ticket = self._to_start.popleft()
        ctx, ticket.ctx = ticket.ctx, None
        if ticket.dropped:
            return ticket, None
        self._running += 1  # its result is not out until ``_start``'s ``ended``
        return ticket, ctx

    def _start(self, ticket: _Ticket, ctx: FrameContext) -> None:
        """Hand the frame to the runner; its future, once done, completes the ticket.

        On the direct path the frame may run inside ``start``: the ticket is completed (and
        ``on_ready`` called) as soon as the last model's result is in, not after its task ends.
        """

        def ended(future: Future[FrameResult]) -> None:
            with self._cond:
                ticket.future = future
                self._running -= 1
                self._result_ns = time.time_ns()
            self._wake(future)

        try:
            self._starter.start(ctx, ticket.cancel, on_done=ended)
        except Exception as error:  # closed meanwhile, or a bug: the frame fails, the stream goes on
            failed: Future[FrameResult] = Future()
            failed.set_exception(error)
            ended(failed)

    def on_ready(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` each time a frame's processing ends, in the thread that ended it.

        A consumer that collects with ``try_get_result`` from there needs no thread of its own
        waiting in ``wait_result`` (the ROS node publishes this way). ``callback`` must not wait
        for a model: it may run inside one's task.
        """
        self._ready = callback

    def _wake(self, _future: Future[FrameResult]) -> None:
        with self._cond:
            self._cond.notify_all()
        ready = self._ready
        if ready is not None:
            ready()

    def _pop_ready(self) -> FrameResult | None:
        """The head frame's result if it is ready (caller holds the lock)."""
        if not self._pending:
            return None
        head = self._pending[0]
        if head.future is None or not head.future.done():
            return None
        self._pending.popleft()
        self._cond.notify_all()  # room for a blocked submit
        error = head.future.exception()
        if error is None:
            result = head.future.result()
            if head.stamp is not None:
                result = replace(result, stamp=head.stamp)
        else:
            result = FrameResult.failed(head.frame_id, head.source, head.timestamp, self._mode, error, head.stamp)
        self._stats.collected(result)
        return result

    def _head_ready(self) -> bool | None:
        """True when the head frame's result is ready, else None (caller holds the lock)."""
        head = self._pending[0] if self._pending else None
        return True if head is not None and head.future is not None and head.future.done() else None

    def _wait(self, look: Callable[[], T | None], timeout: float | None) -> T | None:
        """``look()`` under the lock until it finds something or ``timeout`` seconds pass (None: forever).

        Raises:
            PipelineClosedError: The pipeline is closed (also while waiting).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    raise PipelineClosedError("the pipeline is closed")
                found = look()
                if found is not None:
                    return found
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the next result to be ready, without collecting it.

        Raises:
            PipelineClosedError: The pipeline is closed (also while waiting).
        """
        return self._wait(self._head_ready, timeout) is not None

    def try_get_result(self) -> FrameResult | None:
        """The next result in submission order if it is ready, else None (never waits).

        Raises:
            PipelineClosedError: The pipeline is closed.
        """
        with self._cond:
            if self._closed:
                raise PipelineClosedError("the pipeline is closed")
            return self._pop_ready()

    def wait_result(self, timeout: float | None = None) -> FrameResult | None:
        """Wait up to ``timeout`` seconds (None: forever) for the next result in submission order.

        Returns:
            The result, or None when none was ready in time.

        Raises:
            PipelineClosedError: The pipeline is closed (also while waiting).
        """
        return self._wait(self._pop_ready, timeout)

    @property
    def pending(self) -> int:
        """Frames submitted and not yet collected (nor dropped)."""
        return len(self._pending)

    def stop(self) -> None:
        """Refuse new frames, cancel the pending ones and wake every waiter."""
        with self._cond:
            self._closed = True
            for ticket in self._pending:
                ticket.cancel.set()
                ticket.ctx = None
            self._pending.clear()
            self._to_start.clear()
            self._cond.notify_all()

    def join(self, deadline: float) -> None:
        """Wait until ``deadline`` (``time.monotonic()``) for the dispatcher thread (after ``stop``)."""
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))

