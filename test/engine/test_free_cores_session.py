"""Sessions sized by the cores other processes leave free (engine/cores.py, ``FREE_CORES``)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from ros_vision_pipe.engine.cores import FreeCores, available_cores
from ros_vision_pipe.engine.session import FREE_CORES, OnnxSession

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "ssdlite_person.onnx"


@contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` child processes spinning in a loop (CPU hogs), killed on exit."""
    children = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_free_cores_counts_a_busy_process_elsewhere_as_a_taken_core() -> None:
    free = FreeCores(period=0.1)
    with busy_processes(1):
        time.sleep(0.6)
        free.free()  # a sample that starts with the hog running
        time.sleep(0.4)
        seen = free.free()
    assert seen <= free.cores - 0.5


def test_free_cores_subtracts_what_other_processes_used_and_not_what_this_one_used() -> None:
    readings = iter([(0, 0, 0), (150, 200, 100), (200, 400, 190), (400, 600, 190)])
    free = FreeCores(cores=2, period=0.0, sample=lambda: next(readings), machine_cpus=2)
    assert free.free() == pytest.approx(1.5)  # 150 busy of 200 ticks, 100 of them ours: others 0.5 core
    assert free.free() == pytest.approx(2.0)  # 50 busy, 90 "ours" (rounding): nobody else
    assert free.free() == pytest.approx(0.0)  # 200 busy of 200, none ours: both cores taken


def test_free_cores_without_proc_counts_every_core_as_free() -> None:
    free = FreeCores(cores=4, period=0.0, sample=lambda: None)
    assert free.free() == 4.0


@pytest.mark.skipif(available_cores() < 2, reason="one core: FREE_CORES is a plain one-thread session")
def test_an_adaptive_session_stops_spinning_while_the_cores_are_busy_elsewhere_with_the_same_outputs() -> None:
    session = OnnxSession(MODEL, model_name="person", intra_op_threads=FREE_CORES, allow_spinning=True)
    feeds = {"image_tensor:0": np.random.default_rng(1).integers(0, 255, (1, 300, 300, 3), dtype=np.uint8)}
    with busy_processes(available_cores()):
        time.sleep(0.8)
        quiet_before = session.quiet_runs
        for _ in range(3):
            session.run(feeds)
            time.sleep(0.3)
        assert session.quiet_runs > quiet_before
    spinning = session._session.run(None, feeds)  # noqa: SLF001  (the spinning session, whatever the load)
    quiet = session._quiet.run(None, feeds)  # noqa: SLF001
    for got, want in zip(quiet, spinning, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_free_cores_on_a_remote_or_gpu_provider_list_is_a_plain_session() -> None:
    session = OnnxSession(MODEL, model_name="person", providers=("CPUExecutionProvider",), intra_op_threads=1)
    assert session._quiet is None  # noqa: SLF001  (only FREE_CORES builds two)
    feeds = {"image_tensor:0": np.zeros((1, 300, 300, 3), np.uint8)}
    session.run(feeds)
    assert (session.spinning_runs, session.quiet_runs) == (0, 0)
