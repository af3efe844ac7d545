"""parallel_async mode (docs/execution-modes.md): models on their own frame intervals, results aggregated per frame.

Dispatcher (``start``, in the caller's thread): the frame index is assigned by
the pipeline (one counter per source); the frame goes to every model whose
``frame_interval`` divides it. Workers: one ``ModelStages`` per model (its own
threads and Lua runtime, one ONNX session shared by every source) with a bounded
inbox per source (``max_queue_size``); ``drop_on_overflow = true`` drops the
oldest queued frame (counted per model and source), ``false`` blocks the
dispatcher until that worker has room (the frame is handed to the dropping
workers first, so only the blocking worker's backlog holds it up).

Aggregator (one per source): keeps the recent results of every model and emits,
in frame order, one ``FrameResult`` per frame, with per model:

- ``OK`` (fresh): computed on this frame;
- ``REUSED``: the latest value computed on an earlier frame, with ``computed_on``
  and ``age`` (frames since);
- ``SKIPPED``: preprocess returned nil on this frame, or the latest run did
  (``computed_on``/``age`` say which), or no result exists yet
  (``computed_on = -1``, value None);
- ``ERROR``: the model failed on this frame (per-worker isolation, docs/execution-modes.md); the
  message names the model and frame; later frames reuse the last good value.

When a frame is emitted:

- live (default): as soon as the main model (the first, interval 1) has
  completed it; a model scheduled on the frame that has not finished yet is
  reused from an earlier frame. Equal to the lossless table whenever each model
  scheduled on a frame finishes it before the main model does.
- lossless (offline replay): when every model scheduled on the frame has
  completed it; queues block instead of dropping. Deterministic: the design's
  table exactly.

What a worker sees in ``ctx.results``: the main model nothing (it runs first on
every frame); the other models the values of the last frame the aggregator
emitted for the source (e.g. pose crops the person boxes of the previous
frame). In lossless mode a frame that schedules a non-main model is dispatched
once the previous frame is emitted, so what they see is deterministic.

A frame whose main model was dropped is emitted with ``dropped=True`` and
``error`` set. The optional ``aggregator(results, meta)`` runs on every emitted
frame; ``results`` maps model -> value (fresh or reused), ``meta`` holds
``frame_id``, ``source`` and per model ``status``, ``computed_on``, ``age``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import PipelineClosedError, ScriptResultError, frame_suffix
from ros_vision_pipe.engine.lua.convert import ConversionError, from_lua, to_lua
from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.modes.base import DoneCallback
from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome, OverflowPolicy, ResultStatus
from ros_vision_pipe.engine.stages import ModelJob, ModelStages, close_all
from ros_vision_pipe.engine.stats import StatsCollector

#: Niceness added to the threads of every model but the main one: when the cores are
#: contended, the kernel runs the main model first (its latency is the mode's latency,
#: docs/execution-modes.md) and the slow models' queues drop instead.
NON_MAIN_NICE = 5

#: Results kept per model and source to pick the latest one not newer than a frame.
HISTORY = 8


@dataclass(eq=False)
class _Slot:
    """A frame between dispatch and emission (no image: the jobs hold the context)."""

    frame_id: int
    timestamp: float
    waiting: set[str]
    future: Future[FrameResult] = field(default_factory=Future)
    fresh: dict[str, ModelOutcome] = field(default_factory=dict)
    dropped_by: str | None = None
    closed: bool = False
    cancelled: bool = False
    seq: int = -1


class _SourceAggregator:
    """Per-source state of the result aggregator: pending frames and recent results."""

    def __init__(self, source: str, config: LoadedConfig, names: tuple[str, ...], lossless: bool,
                 stats: StatsCollector) -> None:
        self.source = source
        self._config = config
        self._names = names
        self._main = names[0]
        self._lossless = lossless
        self._stats = stats
        self._lock = threading.Condition()
        self._emit_lock = threading.Lock()  # emission (and the Lua aggregator) in frame order
        self._slots: OrderedDict[int, _Slot] = OrderedDict()
        self._seq = 0
        self._emitted = -1  # sequence number of the last frame emitted
        self._last_values: dict[str, Any] = {}  # model -> value, as the last emitted frame carried it
        self._closed = False
        self._history: dict[str, deque[ModelOutcome]] = {name: deque(maxlen=HISTORY) for name in names}

    def open(self, ctx: FrameContext, scheduled: Sequence[str]) -> _Slot:
        """Register a dispatched frame; the main model is always scheduled."""
        waiting = set(scheduled) if self._lossless else {self._main}
        slot = _Slot(ctx.frame_id, ctx.timestamp, waiting)
        with self._lock:
            slot.seq = self._seq
            self._slots[self._seq] = slot
            self._seq += 1
        return slot

    def results_before(self, slot: _Slot) -> dict[str, Any]:
        """Values of the last emitted frame; lossless: waits until that is the frame before ``slot``.

        Raises:
            PipelineClosedError: The pipeline was closed while waiting.
        """
        with self._lock:
            while self._lossless and self._emitted < slot.seq - 1 and not self._closed:
                self._lock.wait()
            if self._closed:
                raise PipelineClosedError("the pipeline is closed")
            return dict(self._last_values)

    def delivered(self, job: ModelJob) -> None:
        """``on_done`` of every job of this source: record the outcome, emit what is ready."""
        slot, name = job.tag
        with self._lock:
            if job.outcome is not None:
                outcome: ModelOutcome | None = job.outcome
                self._history[name].append(job.outcome)
            elif isinstance(job.error, PipelineClosedError):
                outcome = None
                slot.closed = slot.closed or name == self._main
            elif job.error is not None:
                outcome = ModelOutcome(name, ResultStatus.ERROR, None, slot.frame_id,
                                       latency_ms=job.elapsed * 1e3, error=str(job.error))
            else:
                outcome = None
                if name == self._main:
                    slot.dropped_by = name
                    # a cancelled frame was dropped (and counted) by the frame-level pipeline
                    slot.cancelled = job.cancel is not None and job.cancel.is_set()
            if outcome is not None:
                slot.fresh[name] = outcome
            slot.waiting.discard(name)
        self.emit_ready()

    def _combine(self, slot: _Slot) -> dict[str, ModelOutcome]:
        """Per model: the fresh outcome, or the latest earlier one (reused), or 'no result yet'."""
        outcomes = {}
        for name in self._names:
            outcome = slot.fresh.get(name)
            if outcome is None:
                latest = next((o for o in reversed(self._history[name]) if o.computed_on <= slot.frame_id), None)
                if latest is None:
                    outcome = ModelOutcome(name, ResultStatus.SKIPPED, None, -1)
                else:
                    status = ResultStatus.REUSED if latest.status is ResultStatus.OK else ResultStatus.SKIPPED
                    outcome = ModelOutcome(name, status, latest.value, latest.computed_on,
                                           age=slot.frame_id - latest.computed_on, latency_ms=latest.latency_ms)
                self._stats.record(self.source, outcome)
            outcomes[name] = outcome
        return outcomes

    def emit_ready(self) -> None:
        """Emit, in dispatch order, every frame at the head that waits for nothing."""
        with self._emit_lock:
            while True:
                with self._lock:
                    if not self._slots:
                        return
                    seq, slot = next(iter(self._slots.items()))
                    if slot.waiting and not slot.closed:
                        return
                    del self._slots[seq]
                    outcomes = {} if slot.closed or slot.dropped_by else self._combine(slot)
                    if outcomes:
                        self._last_values = {name: o.value for name, o in outcomes.items()
                                             if o.value is not None}
                    self._emitted = seq
                    self._lock.notify_all()
                self._resolve(slot, outcomes)

    def _resolve(self, slot: _Slot, outcomes: dict[str, ModelOutcome]) -> None:
        if slot.closed:
            slot.future.set_exception(PipelineClosedError(
                f"the pipeline was closed before frame {slot.frame_id} of {self.source!r} completed"))
            return
        base = FrameResult(frame_id=slot.frame_id, source=self.source, timestamp=slot.timestamp,
                           mode=Mode.PARALLEL_ASYNC, outcomes=MappingProxyType(outcomes),
                           has_fused=self._config.aggregator is not None)
        if slot.dropped_by is not None:
            if not slot.cancelled:
                self._stats.count(frames_dropped=1)
            slot.future.set_result(replace(
                base, has_fused=False, dropped=True,
                error=f"frame {slot.frame_id} of {self.source!r} was dropped before main model "
                      f"{slot.dropped_by!r} ran it (full queue or cancelled)"))
            return
        try:
            fused = self._aggregate(slot, outcomes)
        except Exception as error:  # the Lua aggregator failed: the frame fails with its error
            slot.future.set_exception(error)
            return
        slot.future.set_result(replace(base, fused=fused))

    def _aggregate(self, slot: _Slot, outcomes: dict[str, ModelOutcome]) -> Any:
        function = self._config.aggregator
        if function is None:
            return None
        results = {name: o.value for name, o in outcomes.items()
                   if o.value is not None and o.status in (ResultStatus.OK, ResultStatus.REUSED)}
        meta = {"frame_id": slot.frame_id, "source": self.source, "models": {
            name: {"status": o.status.value, "computed_on": o.computed_on, "age": o.age,
                   **({"error": o.error} if o.error else {})}
            for name, o in outcomes.items()}}
        script = self._config.script
        with script.lock:
            returned = script.call(function, "aggregator", to_lua(script.runtime, results),
                                   to_lua(script.runtime, meta), frame_id=slot.frame_id)
            try:
                return from_lua(returned)
            except ConversionError as error:
                raise ScriptResultError(f"{script.display_name}: aggregator returned an unusable value: "
                                        f"{error}{frame_suffix(None, slot.frame_id)}") from None

    def fail_pending(self) -> None:
        """After the workers stopped: every frame not emitted fails with ``PipelineClosedError``."""
        with self._lock:
            self._closed = True
            for slot in self._slots.values():
                slot.closed = True
            self._lock.notify_all()
        self.emit_ready()


class ParallelAsyncMode:
    """Runs ``parallel_async`` pipelines: a dispatcher, one worker per model, an aggregator per source.

    Args:
        config: The loaded configuration (holds ``aggregator``).
        models: The models; the first is the main model (interval 1).
        lossless: Every scheduled model completes every frame before it is emitted,
            and queues block instead of dropping (offline replay).
        stats: Where outcomes, drops and errors are counted.
    """

    def __init__(self, config: LoadedConfig, models: Sequence[Model], *, lossless: bool = False,
                 stats: StatsCollector | None = None) -> None:
        """Start one worker per model."""
        self._config = config
        self._names = tuple(model.name for model in models)
        self._intervals = {model.name: model.spec.frame_interval for model in models}
        self.lossless = lossless
        self._stats = stats or StatsCollector(Mode.PARALLEL_ASYNC, self._names)
        self._workers = [
            ModelStages(model, self._stats, max_queue_size=model.spec.max_queue_size,
                        overflow=OverflowPolicy.BLOCK if lossless else model.spec.overflow,
                        nice=0 if index == 0 else NON_MAIN_NICE)
            for index, model in enumerate(models)
        ]
        # Dropping workers get the frame first, so a blocking worker only delays the next frame.
        self._dispatch_order = sorted(self._workers, key=lambda w: w.inbox.policy is OverflowPolicy.BLOCK)
        for worker in self._workers:
            self._stats.add_depth_provider(worker.depths)
        self._aggregators: dict[str, _SourceAggregator] = {}
        self._lock = threading.Lock()

    def _aggregator(self, source: str) -> _SourceAggregator:
        with self._lock:
            aggregator = self._aggregators.get(source)
            if aggregator is None:
                aggregator = self._aggregators[source] = _SourceAggregator(
                    source, self._config, self._names, self.lossless, self._stats)
            return aggregator

    def start(self, ctx: FrameContext, cancel: threading.Event | None = None, *,
              inline: bool = False, on_done: DoneCallback | None = None) -> Future[FrameResult]:
        """Dispatch ``ctx`` to the workers whose interval divides its frame index.

        Blocks while a ``drop_on_overflow = false`` (or lossless) worker's queue is full.

        Args:
            ctx: The frame.
            cancel: Set it to drop the frame wherever it has not run yet.
            inline: Ignored: the workers' queues are the mode (a frame waits its turn).
            on_done: Attached to the future before any worker gets the frame.

        Returns:
            The frame's combined result, once the aggregator emits it.

        Raises:
            PipelineClosedError: The pipeline is closed.
        """
        aggregator = self._aggregator(ctx.source)
        scheduled = [w for w in self._dispatch_order if ctx.frame_id % self._intervals[w.name] == 0]
        slot = aggregator.open(ctx, [w.name for w in scheduled])
        if on_done is not None:
            slot.future.add_done_callback(on_done)
        try:
            if len(scheduled) > 1:  # the others see the last emitted frame's results
                others = replace(ctx, results=aggregator.results_before(slot))
            for worker in scheduled:
                job_ctx = ctx if worker.name == self._names[0] else others
                worker.submit(ModelJob(job_ctx, aggregator.delivered, cancel, tag=(slot, worker.name)))
        except PipelineClosedError:
            aggregator.fail_pending()
            raise
        return slot.future

    def set_frame_interval(self, model: str, interval: int) -> None:
        """Schedule ``model`` on frames whose index is a multiple of ``interval`` from the next frame on.

        Raises:
            ValueError: Unknown model, the main model (always 1), or ``interval`` < 1.
        """
        if model not in self._intervals:
            raise ValueError(f"no model {model!r} in this pipeline ({', '.join(self._names)})")
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f"frame_interval of model {model!r} must be an integer >= 1, got {interval!r}")
        if model == self._names[0] and interval != 1:
            raise ValueError(f"model {model!r} is the main model of parallel_async: its frame_interval stays 1")
        self._intervals = {**self._intervals, model: interval}  # one atomic swap: start() reads it unlocked

    def close(self) -> None:
        """Stop every worker within a second; frames not emitted fail with ``PipelineClosedError``."""
        close_all(self._workers)
        with self._lock:
            aggregators = list(self._aggregators.values())
        for aggregator in aggregators:
            aggregator.fail_pending()
