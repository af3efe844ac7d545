"""Per-model and per-input diagnostics of the node, published as ``diagnostic_msgs/DiagnosticArray``.

``DiagnosticsCollector`` counts what the node's intake sees (thread-safe: intake and the
diagnostics timer call it from different threads) and keeps the engine's latest statistics; the
per-model figures are a view of them, not a count of the node's own: each period the node hands
it ``SwappablePipeline.lifetime_stats()`` (every generation since start, warm-up frames left
out) through ``ModelSwitches.as_published`` (a disabled model's reused values count as skipped,
as they are published). ``build`` turns one period into a ``DiagnosticArray``:

* one status per model, ``"<node>: model <name>"``: ``fps`` (results computed per second over
  the period), ``latency_ms`` (mean of the period) and ``latency_last_ms`` (preprocess +
  inference + postprocess), ``queue_depth`` (frames in the engine's queue of the model plus
  tasks queued or running in its callback group), ``drops`` (frames the model never saw:
  dropped from its queue, or whole frames dropped or refused by the pipeline), and totals
  since start, across reloads: ``errors``, ``runs``, ``skipped``, ``reused`` (all of a source,
  the engine's ``ModelStats`` summed over sources);
* one status per input topic, ``"<node>: input <topic>"``: ``received``, ``rejected`` (bad
  input), ``refused`` (the pipeline was full), ``fps_in``, ``frames_in`` (= received) and
  ``publishers`` (matched); WARN with "no frame ... although N publisher(s) matched" while an
  input with a matched publisher stays silent (docs/ros.md, "Camera-size images");
* one status ``"<node>: pipeline"``: the engine's frame counters (``frames_in``, ``frames_out``,
  ``frames_failed``, ``frames_dropped``, ``frames_rejected``, ``pending``);
* one status per model on a remote (KServe v2) server, ``"<node>: backend <name>"``: its
  ``url``, ``served_model``, ``version``, ``state`` and the request counters of
  ``BackendStats``; level OK when connected, WARN on local fallback, ERROR when unreachable.

Level: ERROR when a model failed on every frame of the period, WARN when it had errors or
drops in the period (or an input had rejected/refused frames), OK otherwise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


@dataclass
class _ModelCounts:
    """The engine's counters of one model (all sources) and how much of them was reported."""

    runs: int = 0
    skipped: int = 0
    reused: int = 0
    errors: int = 0
    engine_dropped: int = 0
    engine_queue: int = 0
    latency_total_ms: float = 0.0
    latency_last_ms: float = 0.0
    reported_runs: int = 0
    reported_errors: int = 0
    reported_frames: int = 0
    reported_latency_ms: float = 0.0
    reported_drops: int = 0

    @property
    def frames(self) -> int:
        """Outcomes of every status."""
        return self.runs + self.skipped + self.reused + self.errors


@dataclass
class _InputCounts:
    received: int = 0
    rejected: int = 0
    refused: int = 0
    period_received: int = 0
    reported_problems: int = 0
    publishers: int = 0
    silent_s: float = 0.0
    lost: int = 0


@dataclass
class _State:
    models: dict[str, _ModelCounts] = field(default_factory=dict)
    inputs: dict[str, _InputCounts] = field(default_factory=dict)
    pipeline: dict[str, int] = field(default_factory=dict)
    frames_lost: int = 0  # whole frames the pipeline dropped or refused
    backends: tuple[Any, ...] = ()  # BackendStats of the remote models, latest snapshot


def _kv(key: str, value: Any) -> KeyValue:
    return KeyValue(key=key, value=f"{value:.2f}" if isinstance(value, float) else str(value))


class DiagnosticsCollector:
    """The node's intake counters and its view of the engine's, between two diagnostics messages.

    Args:
        node_name: Prefix of every status name (the node's fully qualified name).
        hardware_id: ``DiagnosticStatus.hardware_id`` (the pipeline configuration file).
        models: Model names, in configuration order.
        topics: Input topics.
    """

    def __init__(self, node_name: str, hardware_id: str, models: Iterable[str], topics: Iterable[str]) -> None:
        """Start with every counter at zero."""
        self._name = node_name
        self._hardware_id = hardware_id
        self._lock = threading.Lock()
        self._state = _State(
            models={name: _ModelCounts() for name in models},
            inputs={topic: _InputCounts() for topic in topics},
        )
        self._period_start = time.monotonic()
        #: What the node did about huge pages (``huge_pages.py``), a value of the "pipeline" status.
        self.huge_pages = "off (huge_pages:=false)"
        #: The models' replicas for frames that back up (engine/replicas.py), a value of the "pipeline" status.
        self.replicas = "off (replicas:=false)"

    # -- counting (any thread) -----------------------------------------------------------

    def received(self, topic: str) -> None:
        """An image arrived on ``topic``."""
        with self._lock:
            counts = self._state.inputs.setdefault(topic, _InputCounts())
            counts.received += 1
            counts.period_received += 1

    def rejected(self, topic: str) -> int:
        """An image of ``topic`` was bad input; returns the topic's rejected total."""
        with self._lock:
            counts = self._state.inputs.setdefault(topic, _InputCounts())
            counts.rejected += 1
            return counts.rejected

    def refused(self, topic: str) -> None:
        """The pipeline refused a frame of ``topic`` (full; ``submit`` returned False)."""
        with self._lock:
            self._state.inputs.setdefault(topic, _InputCounts()).refused += 1

    def matched(self, topic: str, publishers: int, silent_s: float, lost: int = 0) -> None:
        """``topic`` has ``publishers`` matched, no frame for ``silent_s`` s (0: frames flow), ``lost`` lost."""
        with self._lock:
            counts = self._state.inputs.setdefault(topic, _InputCounts())
            counts.publishers, counts.silent_s, counts.lost = publishers, silent_s, lost

    def engine(self, stats: Any) -> None:
        """Take the engine's counters (a ``PipelineStats``: the node's lifetime view, see the module)."""
        per_model: dict[str, _ModelCounts] = {}
        for row in stats.models:  # one row per (source, model)
            counts = per_model.setdefault(row.model, _ModelCounts())
            counts.runs += row.runs
            counts.skipped += row.skipped
            counts.reused += row.reused
            counts.errors += row.errors
            counts.engine_dropped += row.dropped
            counts.engine_queue += row.queue_depth
            counts.latency_total_ms += row.latency_total_ms
            if row.runs:
                counts.latency_last_ms = row.latency_last_ms
        frames = {key: int(getattr(stats, key)) for key in
                  ("frames_in", "frames_out", "frames_failed", "frames_dropped", "frames_rejected", "pending")}
        with self._lock:
            for model, new in per_model.items():
                counts = self._state.models.setdefault(model, _ModelCounts())
                counts.runs, counts.skipped = new.runs, new.skipped
                counts.reused, counts.errors = new.reused, new.errors
                counts.engine_dropped, counts.engine_queue = new.engine_dropped, new.engine_queue
                counts.latency_total_ms = new.latency_total_ms
                if new.runs:
                    counts.latency_last_ms = new.latency_last_ms
            self._state.pipeline = frames
            self._state.backends = tuple(getattr(stats, "backends", ()))
            self._state.frames_lost = frames["frames_dropped"] + frames["frames_rejected"]

    def totals(self) -> dict[str, dict[str, int]]:
        """Totals per model, per input and of the pipeline (for tests and the demo summary)."""
        with self._lock:
            lost = self._state.frames_lost
            out = {f"model {name}": {"runs": c.runs, "skipped": c.skipped, "reused": c.reused,
                                     "errors": c.errors, "drops": c.engine_dropped + lost}
                   for name, c in self._state.models.items()}
            out.update({f"input {topic}": {"received": c.received, "rejected": c.rejected, "refused": c.refused,
                                           "publishers": c.publishers}
                        for topic, c in self._state.inputs.items()})
            out["pipeline"] = dict(self._state.pipeline)
            return out

    # -- reporting (the diagnostics timer) -----------------------------------------------

    def build(self, stamp: Any, queue_depth: Callable[[str], int]) -> DiagnosticArray:
        """Close the current period and return its ``DiagnosticArray``.

        Args:
            stamp: ``builtin_interfaces/Time`` of the message.
            queue_depth: Model name -> tasks queued or running in its callback group.
        """
        now = time.monotonic()
        statuses = []
        with self._lock:
            elapsed = max(now - self._period_start, 1e-6)
            self._period_start = now
            for name, c in self._state.models.items():
                drops = c.engine_dropped + self._state.frames_lost
                new_drops = drops - c.reported_drops
                period_runs, period_errors = c.runs - c.reported_runs, c.errors - c.reported_errors
                period_frames = c.frames - c.reported_frames
                mean = (c.latency_total_ms - c.reported_latency_ms) / period_runs if period_runs > 0 else 0.0
                fps = max(period_runs, 0) / elapsed
                if period_errors > 0 and period_errors == period_frames:
                    level, message = DiagnosticStatus.ERROR, f"failed on all {period_frames} frames"
                elif period_errors > 0 or new_drops:
                    level = DiagnosticStatus.WARN
                    message = f"{period_errors} errors, {new_drops} drops in {elapsed:.1f} s"
                else:
                    level, message = DiagnosticStatus.OK, f"{fps:.1f} fps, {mean:.1f} ms"
                values = {"fps": fps, "latency_ms": mean, "latency_last_ms": c.latency_last_ms,
                          "queue_depth": c.engine_queue + queue_depth(name), "drops": drops, "errors": c.errors,
                          "runs": c.runs, "skipped": c.skipped, "reused": c.reused}
                statuses.append(self._status(level, f"model {name}", message, values))
                c.reported_drops = drops
                c.reported_runs, c.reported_errors, c.reported_frames = c.runs, c.errors, c.frames
                c.reported_latency_ms = c.latency_total_ms
            for topic, i in self._state.inputs.items():
                problems = i.rejected + i.refused
                level = DiagnosticStatus.WARN if problems > i.reported_problems else DiagnosticStatus.OK
                fps_in = i.period_received / elapsed
                message = f"{fps_in:.1f} fps in, {i.rejected} rejected, {i.refused} refused"
                if i.lost > i.received:
                    level = DiagnosticStatus.WARN
                    message = (f"frames lost by DDS: frames_in {i.received}, frames_lost {i.lost}, "
                               f"publishers {i.publishers}")
                if i.silent_s:
                    level = DiagnosticStatus.WARN
                    message = (f"no frame for {i.silent_s:.1f} s although {i.publishers} publisher(s) matched: "
                               f"frames_in {i.received}, publishers {i.publishers}")
                values = {"received": i.received, "rejected": i.rejected, "refused": i.refused, "fps_in": fps_in,
                          "frames_in": i.received, "frames_lost": i.lost, "publishers": i.publishers}
                statuses.append(self._status(level, f"input {topic}", message, values))
                i.reported_problems = problems
                i.period_received = 0
            if self._state.pipeline:
                frames = self._state.pipeline
                message = f"{frames['pending']} pending, {frames['frames_out']} out of {frames['frames_in']}"
                statuses.append(self._status(DiagnosticStatus.OK, "pipeline", message,
                                             {**frames, "huge_pages": self.huge_pages,
                                              "replicas": self.replicas}))
            statuses.extend(self._backend_status(b) for b in self._state.backends)
        array = DiagnosticArray(status=statuses)
        array.header.stamp = stamp
        return array

    def _backend_status(self, b: Any) -> DiagnosticStatus:
        """The status of one remote model (``BackendStats``)."""
        served = f"model {b.served_model!r}" + (f" version {b.version!r}" if b.version else "") + f" on {b.url}"
        if b.state == "connected":
            level, message = DiagnosticStatus.OK, f"connected: {served}"
        elif b.state == "fallback":
            level, message = DiagnosticStatus.WARN, f"server unreachable, running the local file: {served}"
        else:
            level, message = DiagnosticStatus.ERROR, f"server unreachable: {served}"
        keys = ("url", "served_model", "version", "state", "shared_memory", "requests", "errors", "timeouts",
                "unreachable", "fallback_runs", "reconnects", "in_flight", "last_error")
        return self._status(level, f"backend {b.model}", message, {key: getattr(b, key) for key in keys})

    def _status(self, level: bytes, what: str, message: str, values: dict[str, Any]) -> DiagnosticStatus:
        return DiagnosticStatus(level=level, name=f"{self._name}: {what}", message=message,
                                hardware_id=self._hardware_id, values=[_kv(k, v) for k, v in values.items()])


__all__ = ["DiagnosticsCollector"]
