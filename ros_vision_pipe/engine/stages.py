"""One model as three threads: preprocess, inference, postprocess, joined by one-slot buffers.

``ModelStages`` is the unit every threaded mode is built from (docs/execution-modes.md):
a job (one frame for one model) goes through the three stages in order, so while
frame N is in inference, frame N+1 can be preprocessed and frame N-1
postprocessed. ONNX Runtime releases the GIL during inference and lupa while Lua
runs, so the stages (and the models) run truly in parallel.

Each job ends exactly once, by calling its ``on_done`` with ``outcome`` (OK or
SKIPPED), ``error``, or ``dropped`` set. A job whose ``cancel`` event is set skips
the remaining stages. Callbacks run in the postprocess thread (or in the thread
that dropped or closed the job) and must be quick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from functools import partial
from typing import Any

from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import EngineError, PipelineClosedError, frame_suffix
from ros_vision_pipe.engine.inflight import Requests, collect_outputs, in_flight_window, start_inference
from ros_vision_pipe.engine.model import Model, Prepared
from ros_vision_pipe.engine.overlap import Overlap
from ros_vision_pipe.engine.queues import LaneQueue, QueueClosedError
from ros_vision_pipe.engine.records import ModelOutcome, OverflowPolicy, ResultStatus
from ros_vision_pipe.engine.stats import StatsCollector
from ros_vision_pipe.engine.threads import lower_thread_priority

_LOG = logging.getLogger("ros_vision_pipe.engine")

#: Time ``close`` waits for the threads of all the stages it stops, seconds.
JOIN_TIMEOUT_S = 1.0


class ModelJob:
    """One frame for one model, as it travels through the stages.

    Attributes:
        ctx: The frame.
        on_done: Called once when the job ends (see the module docstring).
        cancel: When set, the remaining stages are skipped and ``dropped`` is set.
        tag: Anything the owner needs in ``on_done`` (a frame's sequence number).
        inline: Run all three steps in the preprocess thread: no hand-offs, for the
            lowest latency of one frame at a time (``run``); frames do not overlap.
        direct: The three steps run as one task on the model's task queue
            (``ModelStages.start_direct``), inference included, in that task's thread.
        outcome: OK or SKIPPED outcome, once postprocessed.
        error: The failure, when a stage raised (or the stages were closed).
        dropped: The job was dropped from a full queue, or cancelled.
    """

    __slots__ = ("ctx", "on_done", "cancel", "tag", "inline", "direct", "prepared", "outputs", "collect", "requests",
                 "replica", "elapsed", "outcome", "error", "dropped")

    def __init__(self, ctx: FrameContext, on_done: Callable[[ModelJob], None],
                 cancel: threading.Event | None = None, tag: Any = None, inline: bool = False) -> None:
        """Create a pending job (``inline``: all three steps in the preprocess thread)."""
        self.ctx = ctx
        self.on_done = on_done
        self.cancel = cancel
        self.tag = tag
        self.inline = inline
        self.direct = False  # runs as one task on the model's task queue (``ModelStages.start_direct``)
        self.prepared: Prepared | None = None
        self.outputs: list[Any] | None = None
        self.collect: list[Any] | None = None  # direct path: the outputs whose frame is collected after the job
        self.requests: Requests | None = None  # sent, not answered yet (asynchronous sessions)
        self.replica: Future[list[Any]] | None = None  # direct path, frames backed up: its inference on a replica
        self.elapsed = 0.0
        self.outcome: ModelOutcome | None = None
        self.error: BaseException | None = None
        self.dropped = False

    @property
    def pending(self) -> bool:
        """True while the job still has stages to run."""
        return self.outcome is None and self.error is None and not self.dropped


class ModelStages:
    """Runs one model's jobs through a preprocess, an inference and a postprocess thread.

    Args:
        model: The model (its Lua runtime and session are shared with other users;
            both are safe to call from several threads).
        stats: Where outcomes, errors and drops are counted.
        max_queue_size: Bound of the inbox, per source lane; None for unbounded.
        overflow: What a full inbox lane does (``DROP_OLDEST`` or ``BLOCK``).
        nice: Added to the CPU niceness of the three threads (Linux; 0 = unchanged), so
            that under contention the kernel favours other models' threads.
    """

    def __init__(self, model: Model, stats: StatsCollector, *, max_queue_size: int | None = None,
                 overflow: OverflowPolicy = OverflowPolicy.BLOCK, nice: int = 0) -> None:
        """Create the queues; the three threads start with the first ``submit``."""
        self.model = model
        self.name = model.name
        self._stats = stats
        self._nice = nice
        self.inbox: LaneQueue[ModelJob] = LaneQueue(f"queue of model {model.name!r}", max_queue_size, overflow)
        self._to_infer: LaneQueue[ModelJob] = LaneQueue(f"inference buffer of {model.name!r}", 1)
        # A session that sends requests without waiting (a remote server) keeps up to
        # ``max_in_flight`` frames' requests outstanding: this buffer and the one the
        # postprocess thread waits for (``inflight``).
        self._window = in_flight_window(model)
        self._to_post: LaneQueue[ModelJob] = LaneQueue(f"postprocess buffer of {model.name!r}",
                                                       max(1, self._window - 1))
        self._threads_lock = threading.Lock()
        self._started = False
        self._direct = 0  # direct jobs queued or running (start_direct)
        #: Called when a direct job ends (the owner starts the next frame then).
        self.room: Callable[[], None] | None = None
        #: Direct path: while frames back up, their inferences side by side on the model's replicas
        #: (overlap.py); the mode sets ``overlap.enabled``.
        self.overlap = Overlap(model, self._finish_replica, self._end_closed)
        self._threads = [
            threading.Thread(target=self._guarded, args=(self.inbox, self._preprocess, self._to_infer),
                             name=f"vp-{model.name}-pre", daemon=True),
            threading.Thread(target=self._guarded, args=(self._to_infer, self._infer, self._to_post),
                             name=f"vp-{model.name}-infer", daemon=True),
            threading.Thread(target=self._guarded, args=(self._to_post, self._postprocess, None),
                             name=f"vp-{model.name}-post", daemon=True),
        ]

    def _start_threads(self) -> None:
        """Start the three threads on the first queued job (``run_here`` needs none)."""
        with self._threads_lock:
            if self._started:
                return
            self._started = True
            for thread in self._threads:
                thread.start()

    # -- producer side ------------------------------------------------------------------

    def submit(self, job: ModelJob) -> None:
        """Queue ``job`` in its source's lane; a job dropped to make room ends as ``dropped``.

        Blocks while the lane is full when the overflow policy is ``BLOCK``.

        Raises:
            PipelineClosedError: The stages are closed (``job`` did not start).
        """
        if not self._started:
            self._start_threads()
        dropped = self.inbox.put(job, job.ctx.source)
        if dropped is not None:
            dropped.dropped = True
            self._stats.record_drop(dropped.ctx.source, self.name)
            self._finish(dropped)

    def run_here(self, job: ModelJob) -> None:
        """Run ``job``'s three steps in the calling thread, then end it (lowest latency of one frame).

        Raises:
            PipelineClosedError: The stages are closed (``job`` did not start).
        """
        if self.inbox.closed:
            raise PipelineClosedError(f"model {self.name!r} is closed")
        for each in (self._preprocess, self._infer, self._postprocess):
            self._step(job, each)
        self._finish(job)

    def start_direct(self, job: ModelJob) -> None:
        """Run ``job``'s three steps as ONE task on the model's task queue; returns at once.

        The direct path (docs/execution-modes.md, "The direct path"): no stage threads and no
        hand-off between the steps; the model's task queue (in the node: the model's callback
        group) runs preprocess, inference and postprocess back to back. ``room`` is called each
        time a direct job ends, in the thread that ran it.
        """
        job.direct = True
        with self._threads_lock:
            self._direct += 1
        try:
            future = self.model.run_task(partial(self._run_direct, job))
        except RuntimeError:  # the task runner is closed
            self._end_closed(job)
            return
        future.add_done_callback(partial(self._direct_cancelled, job))

    def _run_direct(self, job: ModelJob) -> None:
        ended = True
        try:
            if self.inbox.closed:
                self._close_job(job)
                return
            self._step(job, self._preprocess)
            replicas = self.overlap.replicas_for(job)
            if replicas is not None:
                ended = False  # the overlap queues the rest of the job (``_finish_replica``)
                if not self.overlap.send(job, replicas):  # stopped meanwhile
                    self._end_closed(job)
                return
            for each in (self._infer, self._postprocess):
                self._step(job, each)
            self._end_direct(job)
        finally:
            if ended:
                self._direct_ended()

    def _end_direct(self, job: ModelJob) -> None:
        outputs = job.collect
        self._finish(job)  # publishes the result when the node runs this task itself
        if outputs is not None:
            self.model.collect_frame(outputs, job.ctx)  # off the result's path

    # -- overlap (overlap.py): frames that back up run their inferences side by side -----------

    def backlog(self) -> None:
        """A frame came in before the previous one's result was out (``Overlap.backlog``)."""
        self.overlap.backlog()

    def free_for_frame(self) -> bool:
        """Direct path: whether a frame started now would run at once (``Overlap.room``)."""
        return self.overlap.room(self._direct)

    def _finish_replica(self, job: ModelJob) -> None:
        """On the model's task queue: postprocess a job whose inference ran on a replica, and end it."""
        try:
            if self.inbox.closed:
                self._close_job(job)
                return
            for each in (self._collect_replica, self._postprocess):
                self._step(job, each)
            self._end_direct(job)
        finally:
            self.overlap.ended()
            self._direct_ended()

    @staticmethod
    def _collect_replica(job: ModelJob) -> None:
        assert job.replica is not None
        replica, job.replica = job.replica, None
        job.outputs = replica.result()  # an InferenceError naming the model and frame (``Model._infer``)

    def _direct_cancelled(self, job: ModelJob, future: Future[None]) -> None:
        if future.cancelled():  # the task runner closed before the task ran
            self._end_closed(job)

    def _end_closed(self, job: ModelJob) -> None:
        """End a direct job that cannot run (the task runner or the stages closed)."""
        self._direct_ended()
        self._close_job(job)

    def _direct_ended(self) -> None:
        with self._threads_lock:
            self._direct -= 1
        if self.room is not None:
            self.room()

    @property
    def direct_jobs(self) -> int:
        """Direct jobs queued on the model's task queue or running."""
        return self._direct

    def depths(self) -> dict[tuple[str, str], int]:
        """Jobs waiting in the inbox per (source, model)."""
        return {(lane, self.name): depth for lane, depth in self.inbox.depths().items()}

    # -- the three steps ----------------------------------------------------------------

    def _preprocess(self, job: ModelJob) -> None:
        start = time.perf_counter()
        job.prepared = self.model.preprocess(job.ctx)
        job.elapsed += time.perf_counter() - start
        if job.prepared is None:
            job.outcome = ModelOutcome(self.name, ResultStatus.SKIPPED, None, job.ctx.frame_id,
                                       latency_ms=job.elapsed * 1e3)

    def _infer(self, job: ModelJob) -> None:
        assert job.prepared is not None
        start = time.perf_counter()
        if job.direct:  # already on the model's task queue
            job.outputs = self.model.infer_here(job.prepared, job.ctx.frame_id)
        elif self._window > 1 and not job.inline:
            job.requests = start_inference(self.model, job.prepared)
        else:
            job.outputs = self.model.infer(job.prepared, job.ctx.frame_id)
        job.elapsed += time.perf_counter() - start

    def _postprocess(self, job: ModelJob) -> None:
        start = time.perf_counter()
        if job.requests is not None:
            requests, job.requests = job.requests, None
            job.outputs = collect_outputs(requests, self.name, job.ctx.frame_id)
        assert job.prepared is not None and job.outputs is not None
        if job.direct:  # collected after the job ends (``_run_direct``), even when postprocess fails
            job.collect = job.outputs
        value = self.model.postprocess(job.outputs, job.ctx, job.prepared, collect=not job.direct)
        job.elapsed += time.perf_counter() - start
        job.outcome = ModelOutcome(self.name, ResultStatus.OK, value, job.ctx.frame_id,
                                   latency_ms=job.elapsed * 1e3)
        job.prepared = None  # release the Lua state and the tensors early
        job.outputs = None

    # -- threads --------------------------------------------------------------------------

    def _guarded(self, source: LaneQueue[ModelJob], step: Callable[[ModelJob], None],
                 target: LaneQueue[ModelJob] | None) -> None:
        try:
            self._loop(source, step, target)
        except BaseException:  # a bug in the engine: stop the stages so that no caller waits forever
            _LOG.exception("thread %s of model %r failed; stopping the model", threading.current_thread().name,
                           self.name)
            self.stop()
            raise

    def _loop(self, source: LaneQueue[ModelJob], step: Callable[[ModelJob], None],
              target: LaneQueue[ModelJob] | None) -> None:
        if self._nice:
            lower_thread_priority(self._nice)
        while True:
            if target is not None:  # take a job only when the next stage has room: nothing goes stale here
                target.wait_for_room()
            job = source.get()
            if job is None:
                return
            if job.inline and target is not None:
                for each in (self._preprocess, self._infer, self._postprocess):
                    self._step(job, each)
                self._finish(job)
                continue
            self._step(job, step)
            if target is None or not job.pending:
                self._finish(job)
                continue
            try:
                target.put(job)
            except QueueClosedError:
                self._close_job(job)

    def _step(self, job: ModelJob, step: Callable[[ModelJob], None]) -> None:
        """Run one step of a pending job; a failure is kept in ``job.error``."""
        if job.pending and job.cancel is not None and job.cancel.is_set():
            job.dropped = True
        if not job.pending:
            return
        try:
            step(job)
        except EngineError as error:
            job.error = error
        except Exception as error:  # a bug or a third-party failure: name the model and frame
            job.error = EngineError(
                f"{step.__name__.lstrip('_')} failed: {type(error).__name__}: {error}"
                f"{frame_suffix(self.name, job.ctx.frame_id)}")
            job.error.__cause__ = error

    def _finish(self, job: ModelJob) -> None:
        if job.outcome is not None:
            self._stats.record(job.ctx.source, job.outcome)
        elif job.error is not None and not isinstance(job.error, PipelineClosedError):
            self._stats.record_error(job.ctx.source, self.name)
        try:
            job.on_done(job)
        except Exception:  # callbacks resolve futures themselves; this is a bug, keep the thread alive
            _LOG.exception("callback of model %r failed on frame %d", self.name, job.ctx.frame_id)

    def _close_job(self, job: ModelJob) -> None:
        job.error = PipelineClosedError(
            f"the pipeline was closed before model {self.name!r} finished frame {job.ctx.frame_id}")
        self._finish(job)

    def stop(self) -> None:
        """Close the queues without waiting: queued jobs end with ``PipelineClosedError``, and so do
        jobs whose inference waits for a replica."""
        for queue in (self.inbox, self._to_infer, self._to_post):
            for job in queue.close():
                self._close_job(job)
        self.overlap.stop()

    def join(self, deadline: float) -> None:
        """Wait until ``deadline`` (``time.monotonic()``) for the threads to end (after ``stop``), and
        for the inferences running on replicas: a process must not end under one (ONNX Runtime
        aborts it)."""
        for thread in self._threads:
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        running = self.overlap.running()
        if running:
            wait(running, max(0.0, deadline - time.monotonic()))

    def close(self, deadline: float | None = None) -> None:
        """``stop``, then ``join`` within a second (an inference in progress finishes first)."""
        self.stop()
        self.join(time.monotonic() + JOIN_TIMEOUT_S if deadline is None else deadline)

    @property
    def alive(self) -> bool:
        """Whether any of the three threads is still running."""
        return any(thread.is_alive() for thread in self._threads)


def close_all(stages: Iterable[ModelStages]) -> None:
    """Stop every model's threads, then wait for them all within one second (``JOIN_TIMEOUT_S``)."""
    stages = list(stages)
    for each in stages:
        each.stop()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for each in stages:
        each.join(deadline)
