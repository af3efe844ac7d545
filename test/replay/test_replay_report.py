"""The replay report: per-model table, JSON summary, PNG plot and progress bar."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ros_vision_pipe.replay.bag_replay import replay_bag
from ros_vision_pipe.replay.image_bag import Storage
from ros_vision_pipe.replay.options import ReplayOptions
from ros_vision_pipe.replay.progress import NoProgress, make_progress
from ros_vision_pipe.replay.report import ReplayReport
from ros_vision_pipe.replay.report_output import format_table, plot_report, report_dict, write_json


@pytest.fixture
def async_report(make_bag: Callable[..., Path], async_config: Path) -> ReplayReport:
    """A lossless parallel_async replay of 9 frames (person every frame, slow every 3rd)."""
    return replay_bag(ReplayOptions(config=async_config, bags=(make_bag(Storage.MCAP, frames=9, compressed=False),)))


def test_table_has_a_row_per_model_with_counts_and_latency_percentiles(async_report: ReplayReport) -> None:
    lines = format_table(async_report).splitlines()
    assert lines[0].endswith("offline lossless replay, parallel_async pipeline 'async.lua'")
    assert lines[1].startswith("9 frames read, 9 processed in ")
    assert all(len(line) <= 100 for line in lines[1:])
    lines = lines[1:]
    assert lines[1].split() == ["model", "run", "skipped", "reused", "errors", "dropped", "mean", "ms", "p50", "ms",
                                "p95", "ms", "max", "ms"]
    person, slow = lines[2].split(), lines[3].split()
    assert person[:6] == ["person", "9", "0", "0", "0", "0"]
    assert slow[:6] == ["slow", "3", "0", "6", "0", "0"]
    assert 0 < float(person[7]) <= float(person[8]) <= float(person[9])  # p50 <= p95 <= max


def test_json_summary_is_machine_readable_without_per_frame_records_by_default(
        async_report: ReplayReport, tmp_path: Path) -> None:
    data = json.loads(write_json(async_report, tmp_path / "summary.json").read_text())
    assert data["replay_mode"] == "lossless" and data["pipeline_mode"] == "parallel_async"
    assert [m["model"] for m in data["models"]] == ["person", "slow"]
    assert data["models"][1]["age_max"] == 2 and data["frames_processed"] == 9
    assert "frames" not in data
    assert len(report_dict(async_report, frames=True)["frames"]) == 9


def test_plot_draws_latency_and_async_freshness_to_a_png(async_report: ReplayReport, tmp_path: Path) -> None:
    path = plot_report(async_report, tmp_path / "latency.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_progress_bar_counts_frames_and_shows_drops() -> None:
    stream = io.StringIO()
    progress = make_progress(3, "replay", enabled=True, stream=stream)
    for _ in range(3):
        progress.update(1, dropped=1)
    progress.close()
    assert "3/3" in stream.getvalue() and "dropped=1" in stream.getvalue()
    assert isinstance(make_progress(3, "replay", stream=io.StringIO()), NoProgress)  # not a terminal


def test_plot_series_are_one_per_topic_and_model_with_gaps_where_the_model_did_not_run(
        make_bag: Callable[..., Path]) -> None:
    from replay_support import COMPRESSED_TOPIC, PERSON_POSE, RAW_TOPIC

    from ros_vision_pipe.replay.report_output import latency_series

    bag = make_bag(frames=6)  # raw and compressed; the cyclist (so pose) from the 4th frame on
    report = replay_bag(ReplayOptions(config=PERSON_POSE, bags=(bag,)))
    series = latency_series(report)
    assert set(series) == {(t, m) for t in (RAW_TOPIC, COMPRESSED_TOPIC) for m in ("person", "pose")}
    xs, person = series[(RAW_TOPIC, "person")]
    assert len(xs) == 6 and np.all(np.diff(xs) > 0) and np.isfinite(person).all()
    _, pose = series[(RAW_TOPIC, "pose")]
    assert np.isnan(pose[:3]).all() and np.isfinite(pose[3:]).all()  # a gap, not a line from 0 to frame 3


def test_a_models_run_count_is_the_engines_count_and_the_frames_give_it_only_without_one() -> None:
    from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome, ModelStats, PipelineStats, ResultStatus
    from ros_vision_pipe.replay.report import ReplayMode, ReportCollector
    from ros_vision_pipe.replay.timeline import TimingAnomalies

    collector = ReportCollector(["det"], ["/cam"])
    for index in range(3):
        outcome = ModelOutcome("det", ResultStatus.OK, {"n": index}, index, latency_ms=2.0)
        collector.processed("/cam", index, index, index,
                            FrameResult(index, "/cam", 0.0, Mode.SINGLE, outcomes={"det": outcome}))

    def build(engine: PipelineStats | None) -> ReplayReport:
        return collector.build(bag="b", output=None, config="c", pipeline_mode=Mode.SINGLE,
                               replay_mode=ReplayMode.LOSSLESS, rate=None, wall_s=1.0, timing=TimingAnomalies(),
                               engine=engine)

    engine = PipelineStats(mode=Mode.SINGLE, models=(ModelStats(source="/cam", model="det", runs=2),))
    assert build(engine).model("det").run == 2  # the engine is the one counter of runs
    assert build(None).model("det").run == 3
