"""Recorded time -> replay time: loops, jumps and disordered stamps never stall or break pacing."""

from __future__ import annotations

import pytest

from ros_vision_pipe.replay.timeline import Pacer, Timeline

S = 1_000_000_000


class FakeClock:
    """A clock that advances only when slept."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_timeline_follows_recorded_deltas_divided_by_the_rate() -> None:
    timeline = Timeline(rate=2.0)
    offsets = [timeline.schedule(t) for t in (10 * S, 10 * S + S // 2, 11 * S)]
    assert offsets == pytest.approx([0.0, 0.25, 0.5])
    assert not timeline.anomalies().any


def test_a_bag_that_loops_back_in_time_plays_on_without_waiting() -> None:
    timeline = Timeline()
    offsets = [timeline.schedule(t) for t in (5 * S, 6 * S, 1 * S, 2 * S)]
    assert offsets == pytest.approx([0.0, 1.0, 1.0, 2.0])
    assert timeline.anomalies().backward_jumps == 1


def test_a_forward_time_jump_is_clamped_to_max_gap() -> None:
    timeline = Timeline(max_gap_s=0.5)
    offsets = [timeline.schedule(t) for t in (0, 3600 * S, 3600 * S + S // 10)]
    assert offsets == pytest.approx([0.0, 0.5, 0.6])
    anomalies = timeline.anomalies()
    assert anomalies.forward_gaps == 1
    assert anomalies.skipped_s == pytest.approx(3599.5)


def test_out_of_order_and_repeated_header_stamps_are_counted_per_topic() -> None:
    timeline = Timeline()
    for topic, stamp in [("/a", 3), ("/a", 1), ("/a", 3), ("/b", 1), ("/b", 2)]:
        timeline.observe_stamp(topic, stamp)
    anomalies = timeline.anomalies()
    assert (anomalies.stamps_out_of_order, anomalies.stamps_repeated) == (1, 1)


def test_pacer_sleeps_until_each_offset_and_reports_lateness() -> None:
    clock = FakeClock()
    pacer = Pacer(clock)
    assert pacer.wait(0.0) == 0.0
    assert pacer.wait(0.5) == 0.0
    clock.now += 1.0  # the consumer was slow
    assert pacer.wait(1.0) == pytest.approx(0.5)
    assert clock.sleeps == pytest.approx([0.5])


@pytest.mark.parametrize(("rate", "gap"), [(0.0, 1.0), (-1.0, 1.0), (1.0, 0.0)])
def test_timeline_rejects_non_positive_rate_or_gap(rate: float, gap: float) -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        Timeline(rate=rate, max_gap_s=gap)
