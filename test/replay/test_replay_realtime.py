"""Real-time replay: frames at the recorded pace; what a slow pipeline cannot take is dropped and reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from replay_support import read_messages, stamp_ns

from ros_vision_pipe.replay.bag_replay import replay_bag
from ros_vision_pipe.replay.image_bag import Storage
from ros_vision_pipe.replay.options import ReplayOptions
from ros_vision_pipe.replay.report import ReplayMode
from ros_vision_pipe.replay.report_output import format_table


@pytest.mark.parametrize(("overflow", "reason"), [("reject", "refused"), ("drop_oldest", "dropped")])
def test_realtime_replay_loses_frames_as_the_node_would_and_reports_each_one(
        make_bag: Callable[..., Path], make_person_config: Callable[..., Path], tmp_path: Path,
        overflow: str, reason: str) -> None:
    bag = make_bag(Storage.SQLITE3, compressed=False)
    config = make_person_config(max_pending_frames=2, submit_overflow=overflow)
    output = tmp_path / "out"
    report = replay_bag(ReplayOptions(config=config, bags=(bag,), output=output, mode=ReplayMode.REALTIME,
                                      rate=40.0))  # 1000 frames/s: far faster than the detector
    assert report.frames_read == 30 and report.rate == 40.0
    lost = {d.index for d in report.dropped}
    assert lost and report.frames_processed + len(lost) == 30
    assert {d.reason for d in report.dropped} == {reason}
    assert report.model("person").dropped == len(lost) == report.topic("/camera/image_raw").dropped
    written = {stamp_ns(m.header) for _, _, m in read_messages(output, "/vision_pipeline/fused")}
    assert len(written) == report.frames_processed
    assert all(d.stamp_ns not in written for d in report.dropped)
    assert f"lost in real-time replay ({len(lost)} {reason}): /camera/image_raw#" in format_table(report)


def test_realtime_replay_at_half_rate_keeps_up_and_lasts_the_scaled_duration(
        make_bag: Callable[..., Path], person_config: Path) -> None:
    bag = make_bag(Storage.MCAP, compressed=False, frames=8)  # 7 intervals of 40 ms
    report = replay_bag(ReplayOptions(config=person_config, bags=(bag,), mode=ReplayMode.REALTIME, rate=0.5))
    assert report.frames_processed == 8 and not report.dropped
    assert report.wall_s >= 7 * 0.040 / 0.5
    assert abs(report.bag_duration_s - 0.28) < 1e-6
