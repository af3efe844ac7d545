"""What a replay did: per-model counts and latencies, drops, timing anomalies.

``ReportCollector`` is fed while the bag plays (thread-safe); ``build`` freezes it into a
``ReplayReport``. ``report_output.py`` prints, writes and plots it.
"""

from __future__ import annotations

import enum
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ros_vision_pipe.engine.records import FrameResult, Mode, PipelineStats, ResultStatus
from ros_vision_pipe.replay.timeline import TimingAnomalies

#: Problems (rejected, corrupt or failed frames) quoted in full in a report; the rest are counted.
MAX_PROBLEMS = 20


class ReplayMode(enum.Enum):
    """How frames are fed to the pipeline."""

    LOSSLESS = "lossless"  # offline: every frame, in order, as fast as the pipeline goes
    REALTIME = "realtime"  # at the recorded rate (scaled): drops and intervals behave as live


@dataclass(frozen=True)
class OutcomeRecord:
    """One model's outcome on one frame, as kept for the report.

    Attributes:
        model: Model name.
        status: What happened.
        latency_ms: Preprocess + inference + postprocess, milliseconds (OK outcomes).
        age: Frames between the result's frame and this frame (freshness; 0 when fresh).
        computed_on: Pipeline frame index the result was computed on.
    """

    model: str
    status: ResultStatus
    latency_ms: float
    age: int
    computed_on: int = -1


@dataclass(frozen=True)
class FrameRecord:
    """One input frame, as kept for the report and the plot.

    Attributes:
        topic: Input topic.
        index: Position among the topic's frames in the bag.
        log_time_ns: Recording time of the input message.
        stamp_ns: Header stamp of the input message.
        outcomes: Per-model outcomes (empty when the frame was dropped, rejected or failed).
        dropped: In real-time replay the frame was lost: refused by the pipeline (full) or dropped by it.
        failed: The pipeline raised on the frame.
        drop_reason: ``refused`` or ``dropped`` when ``dropped``.
    """

    topic: str
    index: int
    log_time_ns: int
    stamp_ns: int
    outcomes: tuple[OutcomeRecord, ...] = ()
    dropped: bool = False
    failed: bool = False
    drop_reason: str = ""


@dataclass(frozen=True)
class ModelReport:
    """The table row of one model.

    Attributes:
        model: Model name.
        run: Frames the model computed a result on (fresh on its frame, or reaching later
            frames as reused in live parallel_async).
        skipped: Frames with no result (preprocess returned nil, interval, no result yet).
        reused: parallel_async: frames that carried an earlier frame's result.
        errors: Frames the model failed on (including frames the pipeline raised on).
        dropped: Frames the model never saw: lost in real-time replay, or dropped from its queue (engine).
        latency_mean_ms: Mean latency of the runs (each computation once).
        latency_p50_ms: Median.
        latency_p95_ms: 95th percentile.
        latency_max_ms: Maximum.
        age_mean: Mean age of the model's results, frames (freshness; 0 = always fresh).
        age_max: Largest age.
    """

    model: str
    run: int = 0
    skipped: int = 0
    reused: int = 0
    errors: int = 0
    dropped: int = 0
    latency_mean_ms: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    latency_max_ms: float = 0.0
    age_mean: float = 0.0
    age_max: int = 0


@dataclass(frozen=True)
class TopicReport:
    """What happened to one input topic's frames.

    Attributes:
        topic: Input topic.
        read: Messages read.
        processed: Frames the pipeline returned a result for.
        dropped: Frames lost in real-time replay (refused or dropped by the pipeline).
        rejected: Frames whose image could not be decoded (skipped, like the node does).
        corrupt: Messages that did not deserialize.
        failed: Frames the pipeline raised on (written with every model in error).
    """

    topic: str
    read: int = 0
    processed: int = 0
    dropped: int = 0
    rejected: int = 0
    corrupt: int = 0
    failed: int = 0


@dataclass(frozen=True)
class DroppedFrame:
    """A frame lost in real-time replay.

    Attributes:
        topic: Input topic.
        index: Position among the topic's frames.
        stamp_ns: Its header stamp.
        reason: ``refused`` (the pipeline was full: ``reject``/``block``) or ``dropped``
            (``drop_oldest``, or a parallel_async main model's queue).
    """

    topic: str
    index: int
    stamp_ns: int
    reason: str = "dropped"


@dataclass(frozen=True)
class ReplayReport:
    """The summary of one replay.

    Attributes:
        bag: Input bag(s).
        output: Output bag, if one was written.
        config: Pipeline configuration file.
        pipeline_mode: The configuration's execution mode.
        replay_mode: Lossless (offline) or real-time.
        rate: Real-time replay speed (1.0 = recorded); None in lossless mode.
        frames_read: Image messages read from the bag.
        frames_processed: Frames the pipeline returned a result for.
        frames_failed: Of those, frames the pipeline raised on or at least one model failed on.
        wall_s: Wall time from the first frame read to the last result written.
        frames_per_s: ``frames_processed / wall_s``.
        bag_duration_s: Log time span of the frames read.
        models: One row per model, in configuration order.
        topics: One row per input topic.
        timing: Loops, jumps and out-of-order stamps met.
        dropped: The frames lost in real-time replay.
        problems: The first ``MAX_PROBLEMS`` rejected / corrupt / failed frame messages.
        read_error: Why reading stopped early (truncated or corrupt bag), else None.
        engine_frames_dropped: Frames the engine itself dropped (``PipelineStats.frames_dropped``).
        read_wait_s: Seconds the pipeline's thread waited for the bag reader (lossless: the
            reader was the bottleneck for that long; real-time: includes waiting for the pace).
        write_wait_s: Seconds it waited for the output writer.
        frames: Every frame's record (for the plot; left out of the JSON summary).
    """

    bag: str
    output: str | None
    config: str
    pipeline_mode: Mode
    replay_mode: ReplayMode
    rate: float | None
    frames_read: int
    frames_processed: int
    wall_s: float
    frames_per_s: float
    bag_duration_s: float
    models: tuple[ModelReport, ...]
    topics: tuple[TopicReport, ...]
    timing: TimingAnomalies = field(default_factory=TimingAnomalies)
    dropped: tuple[DroppedFrame, ...] = ()
    problems: tuple[str, ...] = ()
    read_error: str | None = None
    engine_frames_dropped: int = 0
    read_wait_s: float = 0.0
    write_wait_s: float = 0.0
    frames: tuple[FrameRecord, ...] = ()
    frames_failed: int = 0

    @property
    def all_failed(self) -> bool:
        """Frames were processed and every one of them failed (a model error or the pipeline raised)."""
        return self.frames_processed > 0 and self.frames_failed == self.frames_processed

    def model(self, name: str) -> ModelReport:
        """The row of model ``name``."""
        for row in self.models:
            if row.model == name:
                return row
        raise KeyError(name)

    def topic(self, name: str) -> TopicReport:
        """The row of topic ``name``."""
        for row in self.topics:
            if row.topic == name:
                return row
        raise KeyError(name)


class ReportCollector:
    """Accumulates what happens to every frame (safe to call from several threads).

    Args:
        models: Model names in configuration order.
        topics: Input topics.
    """

    def __init__(self, models: Sequence[str], topics: Sequence[str]) -> None:
        """Start empty."""
        self.models = tuple(models)
        self._lock = threading.Lock()
        self._frames: list[FrameRecord] = []
        self._counts: dict[str, Counter[str]] = {topic: Counter() for topic in topics}
        self._problems: list[str] = []
        self._problem_count = 0
        self._first_log: int | None = None
        self._last_log: int | None = None

    def _topic(self, topic: str) -> Counter[str]:
        return self._counts.setdefault(topic, Counter())

    def _problem(self, text: str) -> None:
        self._problem_count += 1
        if len(self._problems) < MAX_PROBLEMS:
            self._problems.append(text)

    def read(self, topic: str, log_time_ns: int) -> None:
        """A message was read from the bag."""
        with self._lock:
            self._topic(topic)["read"] += 1
            self._first_log = log_time_ns if self._first_log is None else min(self._first_log, log_time_ns)
            self._last_log = log_time_ns if self._last_log is None else max(self._last_log, log_time_ns)

    def rejected(self, topic: str, error: Exception) -> None:
        """A frame's image could not be decoded."""
        with self._lock:
            self._topic(topic)["rejected"] += 1
            self._problem(f"rejected on {topic!r}: {error}")

    def corrupt(self, topic: str, error: Exception) -> None:
        """A message did not deserialize."""
        with self._lock:
            self._topic(topic)["corrupt"] += 1
            self._problem(str(error))

    def dropped(self, topic: str, index: int, log_time_ns: int, stamp_ns: int, reason: str = "dropped") -> None:
        """In real-time replay the pipeline refused or dropped a frame (``reason``)."""
        with self._lock:
            self._topic(topic)["dropped"] += 1
            self._frames.append(FrameRecord(topic, index, log_time_ns, stamp_ns, dropped=True, drop_reason=reason))

    def processed(self, topic: str, index: int, log_time_ns: int, stamp_ns: int, result: FrameResult) -> None:
        """The pipeline returned ``result`` for a frame (``result.error`` set: it failed)."""
        outcomes = tuple(
            OutcomeRecord(name, outcome.status, outcome.latency_ms, outcome.age, outcome.computed_on)
            for name, outcome in result.outcomes.items()
        )
        with self._lock:
            counts = self._topic(topic)
            counts["processed"] += 1
            failed = bool(result.error) and not outcomes
            if failed:
                counts["failed"] += 1
                self._problem(f"frame {index} of {topic!r} failed: {result.error}")
            for name, outcome in result.outcomes.items():
                if outcome.status is ResultStatus.ERROR:
                    self._problem(f"frame {index} of {topic!r}: model {name!r} failed: {outcome.error}")
            self._frames.append(FrameRecord(topic, index, log_time_ns, stamp_ns, outcomes, failed=failed))

    def build(self, *, bag: str, output: str | None, config: str, pipeline_mode: Mode, replay_mode: ReplayMode,
              rate: float | None, wall_s: float, timing: TimingAnomalies, engine: PipelineStats | None = None,
              read_error: str | None = None, read_wait_s: float = 0.0, write_wait_s: float = 0.0) -> ReplayReport:
        """Freeze everything into a ``ReplayReport``.

        Args:
            engine: The pipeline's counters (``Pipeline.stats()``), for the drops inside the engine.
        """
        with self._lock:
            frames = tuple(self._frames)
            counts = {topic: Counter(c) for topic, c in self._counts.items()}
            problems = list(self._problems)
            if self._problem_count > len(problems):
                problems.append(f"... and {self._problem_count - len(problems)} more")
            span = 0.0 if self._first_log is None or self._last_log is None else (
                (self._last_log - self._first_log) * 1e-9)
        engine_drops: Counter[str] = Counter()
        engine_runs: Counter[str] | None = None
        if engine is not None:
            engine_runs = Counter()
            for row in engine.models:
                engine_drops[row.model] += row.dropped
                engine_runs[row.model] += row.runs
        models = tuple(_model_row(name, frames, engine_drops[name], None if engine_runs is None else engine_runs[name])
                       for name in self.models)
        topics = tuple(
            TopicReport(topic, c["read"], c["processed"], c["dropped"], c["rejected"], c["corrupt"], c["failed"])
            for topic, c in counts.items()
        )
        processed = sum(t.processed for t in topics)
        return ReplayReport(
            bag=bag, output=output, config=config, pipeline_mode=pipeline_mode, replay_mode=replay_mode,
            rate=rate, frames_read=sum(t.read for t in topics), frames_processed=processed,
            wall_s=wall_s, frames_per_s=processed / wall_s if wall_s > 0 else 0.0, bag_duration_s=span,
            models=models, topics=topics, timing=timing,
            dropped=tuple(DroppedFrame(f.topic, f.index, f.stamp_ns, f.drop_reason) for f in frames if f.dropped),
            problems=tuple(problems), read_error=read_error,
            engine_frames_dropped=engine.frames_dropped if engine is not None else 0,
            read_wait_s=read_wait_s, write_wait_s=write_wait_s, frames=frames,
            frames_failed=sum(1 for f in frames if not f.dropped and (
                f.failed or any(o.status is ResultStatus.ERROR for o in f.outcomes))),
        )


def _model_row(name: str, frames: tuple[FrameRecord, ...], engine_dropped: int,
               engine_runs: int | None) -> ModelReport:
    """One model's row: frame statuses from the outcomes, runs from the engine, latencies per computation.

    Runs are the engine's count (``Pipeline.stats()``: every computation once, including those
    superseded before any frame carried them in live parallel_async); without engine counters,
    the computations the frames carry. Latencies: each computation once, by the frame index it
    was computed on, with the latency it carries (a slow model's result often reaches the frames
    only as REUSED).
    """
    statuses: Counter[ResultStatus] = Counter()
    computations: dict[tuple[str, int], float] = {}
    ages: list[int] = []
    dropped = failed = 0
    for frame in frames:
        if frame.dropped:
            dropped += 1
            continue
        if frame.failed:
            failed += 1
            continue
        for outcome in frame.outcomes:
            if outcome.model != name:
                continue
            statuses[outcome.status] += 1
            if outcome.status in (ResultStatus.OK, ResultStatus.REUSED):
                computations.setdefault((frame.topic, outcome.computed_on), outcome.latency_ms)
                ages.append(outcome.age)
    samples = np.asarray(list(computations.values()), dtype=np.float64)
    return ModelReport(
        model=name,
        run=len(computations) if engine_runs is None else engine_runs,
        skipped=statuses[ResultStatus.SKIPPED],
        reused=statuses[ResultStatus.REUSED],
        errors=statuses[ResultStatus.ERROR] + failed,
        dropped=dropped + engine_dropped,
        latency_mean_ms=float(samples.mean()) if samples.size else 0.0,
        latency_p50_ms=float(np.percentile(samples, 50)) if samples.size else 0.0,
        latency_p95_ms=float(np.percentile(samples, 95)) if samples.size else 0.0,
        latency_max_ms=float(samples.max()) if samples.size else 0.0,
        age_mean=float(np.mean(ages)) if ages else 0.0,
        age_max=int(max(ages)) if ages else 0,
    )


__all__ = [
    "MAX_PROBLEMS",
    "DroppedFrame",
    "FrameRecord",
    "ModelReport",
    "OutcomeRecord",
    "ReplayMode",
    "ReplayReport",
    "ReportCollector",
    "TopicReport",
]
