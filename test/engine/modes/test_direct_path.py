"""The direct path: each model's three steps as one task on its task queue (docs/execution-modes.md)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.session import InferenceSession

MakePipeline = Callable[..., Any]


def _collect(pipeline: Any, count: int) -> list[Any]:
    results = []
    for _ in range(count):
        result = pipeline.wait_result(timeout=20)
        assert result is not None, "a result did not come back"
        results.append(result)
    return results


def test_serial_frames_on_the_direct_path_give_the_results_of_run_without_stage_or_dispatcher_threads(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    inline = make_pipeline("serial", [("a", scripts.echo, ""), ("b", scripts.echo, "")])
    expected = [inline.run(image).results for _ in range(5)]
    direct = make_pipeline("serial", [("a", scripts.echo, ""), ("b", scripts.echo, "")], direct=True)
    for _ in range(5):
        assert direct.submit(image)
    results = _collect(direct, 5)
    assert [r.results for r in results] == expected
    assert [r.frame_id for r in results] == [0, 1, 2, 3, 4]
    names = {thread.name for thread in threading.enumerate()}
    assert not any(name.startswith(("vp-a-", "vp-b-")) for name in names)  # no stage threads
    assert not direct_has_dispatcher(direct)  # frames start in submit or in the task that frees model a
    stats = direct.stats()
    assert (stats.frames_in, stats.frames_out, stats.model("a").runs, stats.model("b").runs) == (5, 5, 5, 5)


def direct_has_dispatcher(pipeline: Any) -> bool:
    return pipeline._frame_pipeline()._thread is not None  # noqa: SLF001


class _Timeline:
    """A session factory whose sessions record (model, start, end) of every inference."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.runs: list[tuple[str, float, float, str]] = []
        self.lock = threading.Lock()

    def __call__(self, spec: ModelSpec, threads: int, allow_spinning: bool) -> InferenceSession:
        return _Recorded(onnx_session_factory(spec, threads, allow_spinning), spec.name, self)


class _Recorded:
    """A real session that sleeps ``delay_s``, then runs and records when, and in which thread."""

    def __init__(self, inner: InferenceSession, name: str, timeline: _Timeline) -> None:
        self.inner, self.name, self.timeline = inner, name, timeline
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        start = time.monotonic()
        time.sleep(self.timeline.delay_s)
        out = self.inner.run(feeds)
        with self.timeline.lock:
            self.timeline.runs.append((self.name, start, time.monotonic(), threading.current_thread().name))
        return out


def test_serial_direct_path_runs_model_one_on_the_next_frame_while_model_two_works(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    timeline = _Timeline(0.15)
    pipeline = make_pipeline("serial", [("a", scripts.echo, ""), ("b", scripts.echo, "")],
                             session_factory=timeline, direct=True)
    for _ in range(4):
        assert pipeline.submit(image)
    assert [r.error for r in _collect(pipeline, 4)] == [None] * 4
    a_runs = [(s, e) for name, s, e, _ in timeline.runs if name == "a"]
    b_runs = [(s, e) for name, s, e, _ in timeline.runs if name == "b"]
    overlapping = [(a, b) for a in a_runs for b in b_runs if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, "model a never ran while model b did"
    for name in ("a", "b"):  # one task queue per model: its inferences never overlap
        runs = sorted((s, e) for n, s, e, _ in timeline.runs if n == name)
        assert all(earlier[1] <= later[0] for earlier, later in zip(runs, runs[1:], strict=False))
    assert {thread for name, *_, thread in timeline.runs if name == "a"} != {
        thread for name, *_, thread in timeline.runs if name == "b"}  # each model on its own queue


def test_drop_oldest_on_the_direct_path_drops_frames_waiting_for_the_busy_model_never_the_running_one(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray, sessions: Any
) -> None:
    sessions = sessions(delays={"det": 0.4})
    pipeline = make_pipeline("single", [("det", scripts.echo, "")], session_factory=sessions, direct=True,
                             extra='max_pending_frames = 2, submit_overflow = "drop_oldest"')
    for _ in range(5):
        assert pipeline.submit(image) is True
        time.sleep(0.02)
    results = _collect(pipeline, 2)
    assert [r.frame_id for r in results] == [0, 4]  # 1, 2, 3 waited and were dropped for newer frames
    assert [r.results["det"]["frame"] for r in results] == [0, 4]
    assert pipeline.stats().frames_dropped == 3
    assert pipeline.try_get_result() is None


@pytest.mark.parametrize("direct", [False, True])
def test_a_failing_model_fails_its_frame_naming_it_and_the_stream_goes_on_on_both_paths_alike(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray, direct: bool
) -> None:
    pipeline = make_pipeline("serial", [("a", scripts.echo, ""), ("b", scripts.failing("postprocess", 1), "")],
                             direct=direct)
    for _ in range(3):
        assert pipeline.submit(image)
    results = _collect(pipeline, 3)
    assert results[1].error is not None and "model 'b', frame 1" in results[1].error
    assert [results[0].error, results[2].error] == [None, None]
    assert results[2].results["b"]["seen"] == {"a": 2}
    stats = pipeline.stats()
    assert (stats.model("a").runs, stats.model("b").runs, stats.model("b").errors) == (3, 2, 1)
    assert (stats.frames_in, stats.frames_failed, stats.frames_out) == (3, 1, 3)


def test_closing_a_pipeline_with_frames_waiting_on_the_direct_path_leaves_no_thread_behind(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray, engine_threads: Callable[[], list[Any]],
    sessions: Any,
) -> None:
    sessions = sessions(delays={"det": 0.3})
    pipeline = make_pipeline("single", [("det", scripts.echo, "")], session_factory=sessions, direct=True)
    for _ in range(3):
        pipeline.submit(image)
    time.sleep(0.05)
    pipeline.close()
    with pytest.raises(Exception, match="closed"):
        pipeline.wait_result(timeout=1)
    deadline = time.monotonic() + 3
    while any(t.name.startswith("rvp-model") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("rvp-model")]
    assert not engine_threads()


def test_a_runaway_script_on_the_direct_path_times_out_naming_model_and_frame_and_later_frames_run(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    runaway = scripts.echo.replace("function postprocess(outputs, ctx)",
                                   "function postprocess(outputs, ctx)\n  if ctx.frame_id == 1 then while true do end end")
    pipeline = make_pipeline("single", [("det", runaway, "script_timeout_ms = 150")], direct=True)
    for _ in range(3):
        assert pipeline.submit(image)
    results = _collect(pipeline, 3)
    assert results[1].error is not None
    assert re.search(r"det\.lua:\d+ in postprocess: time limit of 150 ms exceeded \(model 'det', frame 1\)",
                     results[1].error)
    assert [results[0].results["det"]["frame"], results[2].results["det"]["frame"]] == [0, 2]


def test_frames_submitted_unstarted_wait_for_start_waiting_and_on_ready_runs_in_the_thread_that_ends_each(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("single", [("det", scripts.echo, "")], direct=True)
    collected: list[Any] = []
    threads: list[str] = []

    def ready() -> None:  # what the ROS node does instead of a thread waiting in wait_result
        threads.append(threading.current_thread().name)
        while (result := pipeline.try_get_result()) is not None:
            collected.append(result)

    pipeline.on_ready(ready)
    for _ in range(3):
        assert pipeline.submit(image, start=False)
    assert not pipeline.wait_ready(0.2)  # nothing started
    assert pipeline.stats().model("det").runs == 0 and not collected
    pipeline.start_waiting()
    deadline = time.monotonic() + 20
    while len(collected) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.frame_id for r in collected] == [0, 1, 2]
    assert [r.results["det"]["frame"] for r in collected] == [0, 1, 2]
    assert threads and threading.current_thread().name not in threads  # the model's task thread
    assert pipeline.stats().frames_out == 3


def test_wait_ready_reports_a_ready_result_without_collecting_it(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("single", [("det", scripts.echo, "")], direct=True)
    assert not pipeline.wait_ready(0.05)
    assert pipeline.submit(image)
    assert pipeline.wait_ready(20)
    assert pipeline.wait_ready(0)  # still there
    result = pipeline.try_get_result()
    assert result is not None and result.frame_id == 0
    assert pipeline.try_get_result() is None
