"""Recorded time -> replay time, robust to bags that loop, jump or disorder their stamps.

Pacing is computed from the *differences* between consecutive log times, never from
absolute stamps, so nothing can make replay wait for ever or fall behind for good (the way a
flow limiter keyed on monotonic timestamps does when a bag loops):

* log time going backwards (a looping bag, a reset simulation clock): the message is due
  immediately (delta 0), counted in ``backward_jumps``;
* a forward gap longer than ``max_gap_s`` (a paused recording, a clock jump): the wait is
  clamped to ``max_gap_s``, counted in ``forward_gaps``, the time not waited in ``skipped_s``;
* header stamps that go back or repeat on a topic are counted, and passed on unchanged
  (the output carries the input headers as they are).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """The time source of real-time replay (tests may inject a fake one)."""

    def monotonic(self) -> float:
        """Seconds of a monotonic clock."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (> 0)."""
        ...


class SystemClock:
    """``time.monotonic`` and ``time.sleep``."""

    def monotonic(self) -> float:
        """Seconds of the system's monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``."""
        time.sleep(seconds)


@dataclass(frozen=True)
class TimingAnomalies:
    """What the timeline met in the bag's times.

    Attributes:
        backward_jumps: Messages whose log time is earlier than the previous message's.
        forward_gaps: Gaps between consecutive log times longer than ``max_gap_s``.
        skipped_s: Recorded seconds not waited for because gaps were clamped.
        stamps_out_of_order: Header stamps earlier than the previous one on the same topic.
        stamps_repeated: Header stamps equal to an earlier one on the same topic.
    """

    backward_jumps: int = 0
    forward_gaps: int = 0
    skipped_s: float = 0.0
    stamps_out_of_order: int = 0
    stamps_repeated: int = 0

    @property
    def any(self) -> bool:
        """Whether anything unusual was met."""
        return bool(self.backward_jumps or self.forward_gaps or self.stamps_out_of_order or self.stamps_repeated)


class Timeline:
    """Schedules messages at their recorded pace, scaled by ``rate``.

    Args:
        rate: Replay speed (1.0 = recorded rate, 2.0 = twice as fast); > 0.
        max_gap_s: Longest recorded gap waited for, seconds (before scaling); > 0.

    Raises:
        ValueError: ``rate`` or ``max_gap_s`` is not positive.
    """

    def __init__(self, rate: float = 1.0, max_gap_s: float = 1.0) -> None:
        """Start at offset 0."""
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate!r}")
        if not max_gap_s > 0:
            raise ValueError(f"max_gap_s must be > 0, got {max_gap_s!r}")
        self.rate = rate
        self.max_gap_s = max_gap_s
        self._previous: int | None = None
        self._offset = 0.0
        self._backward = self._forward = 0
        self._skipped = 0.0
        self._last_stamp: dict[str, int] = {}
        self._seen: defaultdict[str, set[int]] = defaultdict(set)
        self._out_of_order = self._repeated = 0

    def schedule(self, log_time_ns: int) -> float:
        """Replay offset of the next message, seconds after the first one (never decreasing)."""
        if self._previous is not None:
            delta = (log_time_ns - self._previous) * 1e-9
            if delta < 0:
                self._backward += 1
                delta = 0.0
            elif delta > self.max_gap_s:
                self._forward += 1
                self._skipped += delta - self.max_gap_s
                delta = self.max_gap_s
            self._offset += delta / self.rate
        self._previous = log_time_ns
        return self._offset

    def observe_stamp(self, topic: str, stamp_ns: int) -> None:
        """Count a header stamp that goes back or repeats on ``topic``."""
        last = self._last_stamp.get(topic)
        if last is not None and stamp_ns < last:
            self._out_of_order += 1
        seen = self._seen[topic]
        if stamp_ns in seen:
            self._repeated += 1
        seen.add(stamp_ns)
        self._last_stamp[topic] = stamp_ns

    def anomalies(self) -> TimingAnomalies:
        """The anomalies met so far."""
        return TimingAnomalies(self._backward, self._forward, self._skipped, self._out_of_order, self._repeated)


class Pacer:
    """Waits until each scheduled offset is due on a clock.

    Args:
        clock: Time source.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        """Start the replay clock at the first ``wait``."""
        self.clock: Clock = clock or SystemClock()
        self._start: float | None = None

    def wait(self, offset_s: float) -> float:
        """Sleep until ``offset_s`` after the first call; return how late it is (seconds, >= 0)."""
        now = self.clock.monotonic()
        if self._start is None:
            self._start = now
        remaining = self._start + offset_s - now
        if remaining > 0:
            self.clock.sleep(remaining)
            return 0.0
        return -remaining


__all__ = ["Clock", "Pacer", "SystemClock", "Timeline", "TimingAnomalies"]
