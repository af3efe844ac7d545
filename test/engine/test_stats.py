"""Arithmetic on statistics snapshots: ``combine`` (several pipelines as one) and ``subtract`` (since a snapshot)."""

from __future__ import annotations

import pytest

from ros_vision_pipe.engine.records import Mode, ModelStats, PipelineStats
from ros_vision_pipe.engine.stats import combine, subtract


def snapshot(*rows: ModelStats, frames_in: int = 0, pending: int = 0) -> PipelineStats:
    return PipelineStats(Mode.SERIAL, rows, frames_in=frames_in, frames_out=frames_in - pending, pending=pending)


def test_combine_adds_counters_per_source_and_model_and_keeps_the_latest_latency_figures() -> None:
    old = snapshot(ModelStats("cam", "det", runs=5, errors=1, latency_mean_ms=10.0, latency_samples=5,
                              latency_total_ms=50.0, latency_last_ms=9.0), frames_in=6)
    new = snapshot(ModelStats("cam", "det", runs=2, queue_depth=1, latency_mean_ms=4.0, latency_samples=2,
                              latency_total_ms=8.0, latency_last_ms=3.0),
                   ModelStats("cam2", "det", skipped=3), frames_in=5, pending=1)
    both = combine([old, new])
    assert both.model("det", "cam") == ModelStats("cam", "det", runs=7, errors=1, queue_depth=1, latency_mean_ms=4.0,
                                                  latency_samples=2, latency_total_ms=58.0, latency_last_ms=3.0)
    assert both.model("det", "cam2").skipped == 3
    assert (both.frames_in, both.frames_out, both.pending) == (11, 10, 1)
    idle = snapshot(ModelStats("cam", "det", skipped=1))
    assert combine([old, idle]).model("det", "cam").latency_mean_ms == 10.0  # no runs: the older figures stay


def test_subtract_counts_since_a_snapshot_and_drops_rows_seen_only_before_it() -> None:
    warm = snapshot(ModelStats("warm-up", "det", runs=1, latency_total_ms=30.0), frames_in=1)
    later = snapshot(ModelStats("warm-up", "det", runs=1, latency_total_ms=30.0),
                     ModelStats("cam", "det", runs=4, latency_total_ms=20.0), frames_in=5)
    since = subtract(later, warm)
    assert since.models == (ModelStats("cam", "det", runs=4, latency_total_ms=20.0),)
    assert since.frames_in == 4


def test_combine_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="combine: no snapshot"):
        combine([])
