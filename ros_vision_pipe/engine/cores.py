"""How many CPU cores other processes leave free: what sizes an adaptive inference.

A node shares its machine with the camera driver, other nodes and whatever else the robot
runs. ONNX Runtime is fastest with every core and threads that spin between operators, and
slowest when one of those cores is busy elsewhere: a worker thread that loses its core stalls
every operator of the inference (docs/performance.md, "Our node vs a hand-written node").
``FreeCores`` reads, at most every ``SAMPLE_PERIOD_S``, how much CPU the OTHER processes used
since its last look (``/proc/stat`` minus this process's ``/proc/self/stat``), so that
``session.OnnxSession`` can run each inference on the cores actually free.

Off Linux (no ``/proc``) every core counts as free.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

#: Seconds between two looks at /proc (a look costs two small file reads, ~20 us). Short enough that
#: the spinning session is back within ~0.1 s of the cores freeing up: with 0.25 s, a node that had
#: waited while another process computed ran ~7 % of a 150-frame burst on the quiet session
#: (docs/performance.md, "Fifth round"); /proc/stat counts in 10 ms ticks, 20 per look on 2 cores.
SAMPLE_PERIOD_S = 0.1


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _machine_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, or None without /proc/stat."""
    try:
        with open("/proc/stat", "rb") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if len(fields) < 8 or fields[0] != b"cpu":
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def _process_ticks() -> int | None:
    """Clock ticks of CPU this process used (user + system, all threads), or None."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    fields = text[text.rindex(b")") + 2:].split()  # after "pid (comm) ": state is fields[0]
    return int(fields[11]) + int(fields[12])  # utime, stime


class FreeCores:
    """The cores other processes left free during the last ``SAMPLE_PERIOD_S`` or so.

    Args:
        cores: Cores of this process (``available_cores()`` when omitted).
        period: Seconds between two samples.
        sample: Reads (machine busy ticks, machine total ticks, this process's ticks), or None
            where unknown (``read_ticks``: /proc; tests inject readings).
        machine_cpus: CPUs of the machine (``os.cpu_count()`` when omitted).

    Example::

        free = FreeCores()
        threads = 2 if free.free() >= 1.5 else 1
    """

    def __init__(self, cores: int | None = None, period: float = SAMPLE_PERIOD_S,
                 sample: Callable[[], tuple[int, int, int] | None] | None = None,
                 machine_cpus: int | None = None) -> None:
        """Take the first sample (until the next one, every core counts as free)."""
        self.cores = cores or available_cores()
        self._machine_cpus = machine_cpus or os.cpu_count() or self.cores
        self._period = period
        self._sample = sample or read_ticks
        self._lock = threading.Lock()
        self._free = float(self.cores)
        self._last_time = time.monotonic()
        self._last = self._sample()

    def free(self) -> float:
        """Cores not used by other processes in the last sample period (0 .. ``cores``)."""
        now = time.monotonic()
        if now - self._last_time < self._period or self._last is None:
            return self._free
        with self._lock:
            if now - self._last_time < self._period:
                return self._free
            sample = self._sample()
            if sample is not None:
                busy, total, own = (new - old for new, old in zip(sample, self._last, strict=True))
                if total > 0:  # ticks of all CPUs: a fraction of the machine, times its CPUs
                    others = max(0.0, (busy - own) / total) * self._machine_cpus
                    self._free = max(0.0, min(float(self.cores), self.cores - others))
                self._last = sample
            self._last_time = now
            return self._free


def read_ticks() -> tuple[int, int, int] | None:
    """(machine busy ticks, machine total ticks, this process's ticks) from /proc, or None."""
    machine, own = _machine_ticks(), _process_ticks()
    if machine is None or own is None:
        return None
    return machine[0], machine[1], own


_SHARED: FreeCores | None = None
_SHARED_LOCK = threading.Lock()


def shared_free_cores() -> FreeCores:
    """The process's one ``FreeCores`` (every adaptive session reads the same samples)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = FreeCores()
        return _SHARED


__all__ = ["SAMPLE_PERIOD_S", "FreeCores", "available_cores", "read_ticks", "shared_free_cores"]
