"""Thread-safe counters behind ``Pipeline.stats()`` (records ``ModelStats``, ``PipelineStats``).

Memory is constant: counters per (source, model) and a fixed window of recent
latencies for the mean and 95th percentile.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping

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


class _Counters:
    __slots__ = ("runs", "skipped", "reused", "errors", "dropped", "latencies")

    def __init__(self) -> None:
        self.runs = self.skipped = self.reused = self.errors = self.dropped = 0
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)


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
