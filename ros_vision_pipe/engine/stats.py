"""Thread-safe counters behind ``Pipeline.stats()`` (records ``ModelStats``, ``PipelineStats``).

Memory is constant: counters per (source, model) and a fixed window of recent
latencies for the mean and 95th percentile. ``combine`` and ``subtract`` compute with
snapshots: the counters of several pipelines together (the generations of a reloading
node), or since an earlier snapshot.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from ros_vision_pipe.engine.records import (
    BackendStats,
    FrameResult,
    Mode,
    ModelOutcome,
    ModelStats,
    PipelineStats,
    ResultStatus,
)

#: Recent latencies kept per (source, model) for the mean and p95.
LATENCY_WINDOW = 256

#: Returns the queue depth of each (source, model) pair that has a queue.
DepthProvider = Callable[[], Mapping[tuple[str, str], int]]


#: The counters of ``ModelStats`` that add up (across pipelines) and subtract (since a snapshot).
MODEL_COUNTERS = ("runs", "skipped", "reused", "errors", "dropped", "latency_total_ms")

#: The frame counters of ``PipelineStats`` that do.
FRAME_COUNTERS = ("frames_in", "frames_out", "frames_failed", "frames_rejected", "frames_dropped")


class _Counters:
    __slots__ = ("runs", "skipped", "reused", "errors", "dropped", "latencies", "latency_total")

    def __init__(self) -> None:
        self.runs = self.skipped = self.reused = self.errors = self.dropped = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.latency_total = 0.0


class StatsCollector:
    """Counts outcomes, drops and frames for one pipeline; ``snapshot`` freezes them.

    Args:
        mode: The pipeline's mode (copied into every snapshot).
        models: Model names in configuration order (snapshot order within a source).
    """

    def __init__(self, mode: Mode, models: tuple[str, ...]) -> None:
        """Start with every counter at zero."""
        self._mode = mode
        self._models = models
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], _Counters] = {}
        self._sources: dict[str, None] = {}
        self._depths: list[DepthProvider] = []
        self.frames_in = self.frames_out = self.frames_failed = 0
        self.frames_rejected = self.frames_dropped = 0
        self._pending: Callable[[], int] = lambda: 0
        self._backends: list[Callable[[], BackendStats]] = []

    def _get(self, source: str, model: str) -> _Counters:
        counters = self._counters.get((source, model))
        if counters is None:
            counters = self._counters[(source, model)] = _Counters()
            self._sources.setdefault(source, None)
        return counters

    def record(self, source: str, outcome: ModelOutcome) -> None:
        """Count one outcome where it was created (see ``ModelStats``)."""
        with self._lock:
            counters = self._get(source, outcome.model)
            if outcome.status is ResultStatus.OK:
                counters.runs += 1
                counters.latencies.append(outcome.latency_ms)
                counters.latency_total += outcome.latency_ms
            elif outcome.status is ResultStatus.SKIPPED:
                counters.skipped += 1
            elif outcome.status is ResultStatus.REUSED:
                counters.reused += 1
            else:
                counters.errors += 1

    def record_error(self, source: str, model: str) -> None:
        """Count a failure of ``model`` that produced no outcome (the frame raised)."""
        with self._lock:
            self._get(source, model).errors += 1

    def record_drop(self, source: str, model: str) -> None:
        """Count one frame discarded from ``model``'s full queue."""
        with self._lock:
            self._get(source, model).dropped += 1

    def count(self, *, frames_in: int = 0, frames_out: int = 0, frames_failed: int = 0,
              frames_rejected: int = 0, frames_dropped: int = 0) -> None:
        """Add to the pipeline-level frame counters."""
        with self._lock:
            self.frames_in += frames_in
            self.frames_out += frames_out
            self.frames_failed += frames_failed
            self.frames_rejected += frames_rejected
            self.frames_dropped += frames_dropped

    def collected(self, result: FrameResult) -> None:
        """Count a frame whose result left the pipeline (``run`` returned it or a caller collected it)."""
        self.count(frames_out=1, frames_failed=1 if result.error and not result.dropped else 0)

    def add_depth_provider(self, provider: DepthProvider) -> None:
        """Register a function reporting queue depths (a mode's worker queues)."""
        with self._lock:
            self._depths.append(provider)

    def add_backend_provider(self, provider: Callable[[], BackendStats]) -> None:
        """Register a remote model's counters (``KServeSession.backend_stats``)."""
        with self._lock:
            self._backends.append(provider)

    def set_pending_provider(self, provider: Callable[[], int]) -> None:
        """Register the function reporting the frame-level pipeline's pending frames."""
        self._pending = provider

    def snapshot(self) -> PipelineStats:
        """Freeze the counters into a ``PipelineStats``."""
        depths: dict[tuple[str, str], int] = {}
        for provider in list(self._depths):
            for key, depth in provider().items():
                depths[key] = depths.get(key, 0) + depth
        pending = self._pending()
        backends = tuple(provider() for provider in list(self._backends))
        with self._lock:
            for source, model in depths:
                self._get(source, model)
            rows = []
            for source in self._sources:
                for model in self._models:
                    counters = self._counters.get((source, model))
                    if counters is None:
                        continue
                    samples = np.fromiter(counters.latencies, dtype=np.float64)
                    rows.append(ModelStats(
                        source=source,
                        model=model,
                        runs=counters.runs,
                        skipped=counters.skipped,
                        reused=counters.reused,
                        errors=counters.errors,
                        dropped=counters.dropped,
                        queue_depth=depths.get((source, model), 0),
                        latency_mean_ms=float(samples.mean()) if samples.size else 0.0,
                        latency_p95_ms=float(np.percentile(samples, 95)) if samples.size else 0.0,
                        latency_samples=int(samples.size),
                        latency_total_ms=counters.latency_total,
                        latency_last_ms=counters.latencies[-1] if counters.latencies else 0.0,
                    ))
            return PipelineStats(
                mode=self._mode,
                models=tuple(rows),
                frames_in=self.frames_in,
                frames_out=self.frames_out,
                frames_failed=self.frames_failed,
                frames_rejected=self.frames_rejected,
                frames_dropped=self.frames_dropped,
                pending=pending,
                backends=backends,
            )


def combine(snapshots: Sequence[PipelineStats]) -> PipelineStats:
    """The counters of several pipelines as one (e.g. every generation of a reloading node).

    Counters, queue depths and pending frames add up per (source, model); the recent-latency
    figures (mean, p95, last) are those of the latest snapshot that has runs of the pair; mode
    and backends are the latest snapshot's.

    Raises:
        ValueError: No snapshot.
    """
    if not snapshots:
        raise ValueError("combine: no snapshot")
    rows: dict[tuple[str, str], ModelStats] = {}
    for snapshot in snapshots:
        for row in snapshot.models:
            key = (row.source, row.model)
            earlier = rows.get(key)
            if earlier is None:
                rows[key] = row
                continue
            recent = row if row.latency_samples else earlier
            rows[key] = replace(
                earlier,
                **{name: getattr(earlier, name) + getattr(row, name) for name in MODEL_COUNTERS},
                queue_depth=earlier.queue_depth + row.queue_depth,
                latency_mean_ms=recent.latency_mean_ms, latency_p95_ms=recent.latency_p95_ms,
                latency_samples=recent.latency_samples, latency_last_ms=recent.latency_last_ms,
            )
    last = snapshots[-1]
    return replace(
        last, models=tuple(rows.values()),
        **{name: sum(getattr(snapshot, name) for snapshot in snapshots) for name in FRAME_COUNTERS},
        pending=sum(snapshot.pending for snapshot in snapshots),
    )


def subtract(stats: PipelineStats, baseline: PipelineStats) -> PipelineStats:
    """The counters of ``stats`` since ``baseline``, an earlier snapshot of the same pipeline.

    Rows left with nothing counted and nothing queued (a source seen only before the baseline,
    such as a reload's warm-up frame) are dropped; latency figures and queue depths stay as
    ``stats`` has them.
    """
    before = {(row.source, row.model): row for row in baseline.models}
    rows = []
    for row in stats.models:
        old = before.get((row.source, row.model))
        if old is not None:
            row = replace(row, **{name: getattr(row, name) - getattr(old, name) for name in MODEL_COUNTERS})
        if row.queue_depth or any(getattr(row, name) for name in MODEL_COUNTERS):
            rows.append(row)
    return replace(stats, models=tuple(rows),
                   **{name: getattr(stats, name) - getattr(baseline, name) for name in FRAME_COUNTERS})
