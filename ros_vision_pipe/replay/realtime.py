"""Real-time replay: frames reach the pipeline at their recorded pace, as the node receives them.

The player thread hands each frame to the pipeline when it is due (``Timeline``: recorded
deltas divided by ``rate``, loops and jumps clamped) through the node's own intake and result
loop (``engine/live_feed.py``): ``submit_live`` never waits, and a collector thread takes the
results in submission order with ``collect_results``. So when the
pipeline is slower than the bag, frames are lost the way they are live, by the
configuration's ``max_pending_frames`` and ``submit_overflow`` (``reject``: the new frame is
refused; ``drop_oldest``: a frame not started yet is dropped; ``block``: refused, since the
player does not wait), and a parallel_async pipeline (built without ``lossless``) drops
from its model queues and reuses results as it would live. Every lost frame is reported.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

from ros_vision_pipe.engine.live_feed import Intake, collect_results, submit_live
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult, OverflowPolicy
from ros_vision_pipe.replay.bag_reader import BagFrame
from ros_vision_pipe.replay.offline import Deliver
from ros_vision_pipe.replay.timeline import Pacer, Timeline

#: Told about each frame that is lost, with the reason (``refused``, ``dropped``).
OnDrop = Callable[[BagFrame, str], None]

#: Seconds the collector waits for a result before checking whether replay is over.
_POLL_S = 0.05


class RealtimeFeeder:
    """Submits frames at recorded pace and collects their results, like the node.

    Args:
        pipeline: Built without ``lossless`` (parallel_async drops and reuses as live).
        deliver: Called in the collector thread with each processed frame and its result.
        on_drop: Called with each frame the pipeline refused or dropped.
        timeline: Turns log times into replay offsets.
        pacer: Waits for the offsets (its clock can be injected).
    """

    def __init__(self, pipeline: Pipeline, deliver: Deliver, on_drop: OnDrop, *, timeline: Timeline,
                 pacer: Pacer | None = None) -> None:
        """Prepare; the collector starts in ``feed``."""
        self._pipeline = pipeline
        self._deliver = deliver
        self._on_drop = on_drop
        self._timeline = timeline
        self._pacer = pacer or Pacer()
        self._in_flight: deque[BagFrame] = deque()  # accepted, result not collected (submission order)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.max_lateness_s = 0.0

    def _settle(self, result: FrameResult) -> None:
        """Match ``result`` with its frame; frames submitted before it that have no result were dropped."""
        with self._lock:
            lost = []
            frame = None
            if any(f is result.stamp for f in self._in_flight):
                while self._in_flight[0] is not result.stamp:
                    lost.append(self._in_flight.popleft())
                frame = self._in_flight.popleft()
        for dropped in lost:
            self._on_drop(dropped, "dropped")
        if frame is None:
            return
        if result.dropped:
            self._on_drop(frame, "dropped")
        else:
            self._deliver(frame, result)

    def _collect(self) -> None:
        try:
            collect_results(lambda timeout: self._pipeline.wait_result(timeout=timeout), self._settle,
                            stop=lambda: self._done.is_set() and self._pipeline.stats().pending == 0,
                            timeout=_POLL_S)
            with self._lock:  # accepted frames whose result will never come
                lost, self._in_flight = list(self._in_flight), deque()
            for frame in lost:
                self._on_drop(frame, "dropped")
        except BaseException as error:  # surfaced by feed()
            self._error = error

    def _submit(self, frame: BagFrame) -> None:
        with self._lock:  # in flight before submit: its result may come back at once
            self._in_flight.append(frame)
        intake, error = submit_live(self._pipeline, frame.image, source=frame.topic, encoding=frame.encoding,
                                    timestamp=frame.stamp.seconds, stamp=frame)
        if intake is Intake.INVALID:  # an invalid image: failed, as the node reports it
            assert error is not None
            self._deliver(frame, FrameResult.failed(-1, frame.topic, frame.stamp.seconds,
                                                    self._pipeline.spec.mode, error, stamp=frame))
        if intake is not Intake.ACCEPTED:
            with self._lock:
                self._in_flight = deque(f for f in self._in_flight if f is not frame)
        if intake is not Intake.ACCEPTED and self._error is None:
            # drop_oldest with every pending frame started drops the new one
            dropping = self._pipeline.spec.submit_overflow is OverflowPolicy.DROP_OLDEST
            self._on_drop(frame, "dropped" if dropping else "refused")

    def feed(self, frames: Iterable[BagFrame]) -> None:
        """Play ``frames``, then wait for the last result.

        Raises:
            Exception: Whatever the collector raised (a closed pipeline, an output write error).
        """
        collector = threading.Thread(target=self._collect, name="replay-realtime-results", daemon=True)
        collector.start()
        try:
            for frame in frames:
                if self._error is not None:
                    break
                late = self._pacer.wait(self._timeline.schedule(frame.source.log_time_ns))
                self.max_lateness_s = max(self.max_lateness_s, late)
                self._submit(frame)
        finally:
            self._done.set()
            collector.join()
        if self._error is not None:
            raise self._error


__all__ = ["OnDrop", "RealtimeFeeder"]
