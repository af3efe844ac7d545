"""One frame path: run and submit start frames the same way, are counted in one place, decided once."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine import context as context_module
from ros_vision_pipe.engine import pipeline as pipeline_module
from ros_vision_pipe.engine.errors import InputError, ScriptError
from ros_vision_pipe.engine.live_feed import Intake, collect_results, feed_lossless, submit_live
from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.records import FrameResult, Mode, ModelSpec
from ros_vision_pipe.engine.runners import session_options
from ros_vision_pipe.engine.session import FREE_CORES, InferenceSession

MakePipeline = Callable[..., Any]


@pytest.mark.parametrize("mode", ["single", "serial", "parallel_sync"])
def test_a_model_failing_in_run_is_counted_as_that_models_error_like_in_submit(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray, mode: str
) -> None:
    pipeline = make_pipeline(mode, [("det", scripts.failing("postprocess", 0), "")])
    with pytest.raises(ScriptError, match=r"model 'det', frame 0"):
        pipeline.run(image)
    assert pipeline.submit(image)
    fine = pipeline.wait_result(timeout=10)
    assert fine is not None and fine.error is None  # frame 1 runs fine
    stats = pipeline.stats()
    assert (stats.model("det").errors, stats.model("det").runs) == (1, 1)
    assert (stats.frames_in, stats.frames_out, stats.frames_failed) == (2, 1, 1)


def test_run_and_submit_of_a_serial_pipeline_give_the_same_results(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("serial", [("a", scripts.echo, ""), ("b", scripts.echo, "")])
    ran = pipeline.run(image, frame_id=7)
    assert pipeline.submit(image, frame_id=7)
    submitted = pipeline.wait_result(timeout=10)
    assert submitted is not None
    assert ran.results == submitted.results == {"a": {"frame": 7, "y": 14.0, "seen": []},
                                                "b": {"frame": 7, "y": 14.0, "seen": {"a": 7}}}


def test_the_image_of_a_frame_is_validated_once(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline("single", [("det", scripts.echo, "")])
    calls: list[int] = []
    original = context_module.validate_image

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(context_module, "validate_image", counting)
    monkeypatch.setattr(pipeline_module, "validate_image", counting)
    pipeline.run(image)
    assert pipeline.submit(image) and pipeline.wait_result(timeout=10) is not None
    assert len(calls) == 2  # one per frame
    with pytest.raises(InputError, match=r"source 'default', frame 2"):
        pipeline.run(np.zeros((4, 6), np.float32))
    assert pipeline.run(image).frame_id == 2  # the invalid image took no frame index


@pytest.mark.parametrize(("mode", "overlap", "shares", "spins"), [
    ("single", False, False, True), ("single", True, False, False), ("single", False, True, False),
    ("serial", False, True, False), ("parallel_sync", False, False, False),
])
def test_onnx_runtime_spinning_is_decided_once_by_the_pipeline(
    make_pipeline: MakePipeline, scripts: Any, mode: str, overlap: bool, shares: bool, spins: bool
) -> None:
    seen: list[bool] = []

    def factory(spec: ModelSpec, threads: int, allow_spinning: bool) -> InferenceSession:
        seen.append(allow_spinning)
        return onnx_session_factory(spec, threads, allow_spinning)

    make_pipeline(mode, [("det", scripts.echo, "")], session_factory=factory, overlap_frames=overlap,
                  shares_cores=shares)
    assert seen == [spins]
    assert session_options(Mode(mode), 1, overlap_frames=overlap, shares_cores=shares)[1] is spins


def test_direct_path_sessions_on_a_shared_machine_are_sized_by_the_free_cores_for_one_model_and_split_for_several(
) -> None:
    cores = os.cpu_count() or 1
    options = session_options
    assert options(Mode.SINGLE, 1, shares_cores=True, direct=True) == (FREE_CORES, True)
    assert options(Mode.SERIAL, 2, shares_cores=True, direct=True) == (max(1, cores // 2), False)
    assert options(Mode.PARALLEL_SYNC, 2, shares_cores=True, direct=True) == (max(1, cores // 2), False)
    assert options(Mode.SINGLE, 1) == (0, True)  # alone: every core, spinning
    assert options(Mode.SINGLE, 1, shares_cores=True) == (0, False)  # bag replay: unchanged


def test_live_intake_reports_invalid_and_refused_frames_without_raising(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("single", [("det", scripts.echo, "")], extra='max_pending_frames = 1, '
                             'submit_overflow = "reject"')
    intake, error = submit_live(pipeline, np.zeros((2, 2), np.float32), source="cam", encoding="rgb8",
                                timestamp=None, stamp="x")
    assert intake is Intake.INVALID and isinstance(error, InputError)
    assert submit_live(pipeline, image, source="cam", encoding="rgb8", timestamp=None, stamp=1)[0] is Intake.ACCEPTED
    outcomes = {submit_live(pipeline, image, source="cam", encoding="rgb8", timestamp=None, stamp=2)[0]
                for _ in range(3)}
    assert outcomes == {Intake.NOT_ACCEPTED}  # the accepted frame is pending until collected
    assert pipeline.stats().frames_rejected == 3
    collected: list[FrameResult] = []
    collect_results(lambda timeout: pipeline.wait_result(timeout=timeout), collected.append,
                    stop=lambda: pipeline.stats().pending == 0, timeout=0.05)
    assert [(r.stamp, r.error) for r in collected] == [(1, None)]


class _SourceBroke(Exception):
    pass


def test_lossless_feeding_delivers_every_frame_in_order_past_refusals_and_invalid_images(
    make_pipeline: MakePipeline, scripts: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("single", [("det", scripts.echo, "")], extra='max_pending_frames = 2, '
                             'submit_overflow = "reject"')
    frames = [("ok", i) for i in range(6)]
    frames.insert(3, ("bad", 99))
    delivered: list[tuple[Any, Any]] = []

    def submit(frame: tuple[str, int]) -> bool:
        picture = image if frame[0] == "ok" else np.zeros((2, 2), np.float32)
        return pipeline.submit(picture, source="cam", encoding="rgb8", frame_id=frame[1], stamp=frame)

    def failed(frame: tuple[str, int], error: Exception) -> FrameResult:
        return FrameResult.failed(frame[1], "cam", 0.0, Mode.SINGLE, error, stamp=frame)

    # a window of 4 over a pipeline that holds 2: refused frames wait for a result, none is lost
    feed_lossless(pipeline, frames, submit=submit, deliver=lambda f, r: delivered.append((f, r.error)),
                  failed=failed, window=4)
    assert [f for f, _ in delivered] == frames
    assert [error is None for _, error in delivered] == [True, True, True, False, True, True, True]
    assert pipeline.stats().frames_rejected > 0  # the pipeline did refuse frames on the way

    def broken() -> Any:
        yield ("ok", 10)
        yield ("ok", 11)
        raise _SourceBroke("the bag became unreadable")

    delivered.clear()
    with pytest.raises(_SourceBroke, match="unreadable"):
        feed_lossless(pipeline, broken(), submit=submit, deliver=lambda f, r: delivered.append((f, r.error)),
                      failed=failed, window=4, source_errors=(_SourceBroke,))
    assert delivered == [(("ok", 10), None), (("ok", 11), None)]  # the frames read before it are finished


def test_a_failed_result_names_the_error_type_and_message() -> None:
    result = FrameResult.failed(3, "cam", 1.5, Mode.SERIAL, InputError("bad image"), stamp="s")
    assert (result.frame_id, result.source, result.error, result.stamp) == (3, "cam", "InputError: bad image", "s")
    assert result.outcomes == {} and not result.dropped
