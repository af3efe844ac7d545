"""parallel_sync mode (docs/execution-modes.md): concurrent models, barrier, fusion, fail-fast errors."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.errors import InferenceError, ScriptError
from ros_vision_pipe.engine.records import Mode, ResultStatus
from ros_vision_pipe.engine.runners import default_intra_op_threads

FUSION = """
fusion = function(results)
  local frames = {}
  for name, value in pairs(results) do frames[name] = value.frame end
  return { frames = frames, sum = results.a.y + results.b.y }
end
"""


def test_fusion_sees_every_models_result_of_the_same_frame(make_pipeline: Any, scripts: Any, image: np.ndarray) -> None:
    pipeline = make_pipeline("parallel_sync", [("a", scripts.echo, ""), ("b", scripts.echo, "")], FUSION)
    for frame in range(5):
        result = pipeline.run(image)
        assert result.frame_id == frame
        assert result.mode is Mode.PARALLEL_SYNC
        assert result.has_fused
        assert result.fused == {"frames": {"a": frame, "b": frame}, "sum": 4.0 * frame}
        assert [o.status for o in result.outcomes.values()] == [ResultStatus.OK, ResultStatus.OK]
        assert list(result.outcomes) == ["a", "b"]


def test_parallel_sync_models_do_not_see_each_others_results(make_pipeline: Any, scripts: Any,
                                                             image: np.ndarray) -> None:
    pipeline = make_pipeline("parallel_sync", [("a", scripts.echo, ""), ("b", scripts.echo, "")])
    result = pipeline.run(image)
    assert result.results["a"]["seen"] == [] and result.results["b"]["seen"] == []


def test_a_model_whose_postprocess_raises_fails_the_frame_with_its_name_and_nothing_hangs(
    make_pipeline: Any, scripts: Any, within: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("parallel_sync", [("a", scripts.echo, ""), ("b", scripts.failing("postprocess", 1), "")],
                             FUSION)
    within(5, lambda: pipeline.run(image))
    with pytest.raises(ScriptError, match=r"b\.lua:\d+ in postprocess: .*boom on purpose \(model 'b', frame 1\)"):
        within(5, lambda: pipeline.run(image))
    assert within(5, lambda: pipeline.run(image)).fused["frames"] == {"a": 2, "b": 2}
    stats = pipeline.stats()
    assert stats.model("b").errors == 1 and stats.model("b").runs == 2
    assert stats.frames_failed == 1


def test_a_failing_inference_fails_the_frame_at_once_without_waiting_for_the_slow_model(
    make_pipeline: Any, scripts: Any, sessions: Any, within: Any, image: np.ndarray
) -> None:
    factory = sessions(delays={"slow": 0.5}, fail_calls={"bad": [0]})
    pipeline = make_pipeline("parallel_sync", [("slow", scripts.echo, ""), ("bad", scripts.echo, "")],
                             session_factory=factory)
    start = time.perf_counter()
    with pytest.raises(InferenceError, match=r"inference failed: device lost on purpose \(model 'bad', frame 0\)"):
        within(5, lambda: pipeline.run(image))
    assert time.perf_counter() - start < 0.4, "fail-fast: the frame failed before the slow model ended"
    result = within(5, lambda: pipeline.run(image))
    assert result.frame_id == 1 and result.results["slow"]["frame"] == 1


def test_inferences_of_one_frame_run_concurrently(make_pipeline: Any, scripts: Any, sessions: Any,
                                                   image: np.ndarray) -> None:
    factory = sessions(delays={"a": 0.2, "b": 0.2, "c": 0.2})
    pipeline = make_pipeline("parallel_sync", [("a", scripts.echo, ""), ("b", scripts.echo, ""),
                                               ("c", scripts.echo, "")], session_factory=factory)
    pipeline.run(image)
    start = time.perf_counter()
    pipeline.run(image)
    assert time.perf_counter() - start < 0.45, "three 0.2 s inferences should overlap (serial: 0.6 s)"


def test_a_model_whose_preprocess_returns_nil_is_skipped_and_fusion_still_runs(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    skip_odd = scripts.echo.replace("function preprocess(ctx)",
                                    "function preprocess(ctx)\n  if ctx.frame_id % 2 == 1 then return nil end")
    fusion = 'fusion = function(results) return { has_b = results.b ~= nil } end'
    pipeline = make_pipeline("parallel_sync", [("a", scripts.echo, ""), ("b", skip_odd, "")], fusion)
    pipeline.run(image)
    result = pipeline.run(image)
    assert result.outcomes["b"].status is ResultStatus.SKIPPED
    assert result.fused == {"has_b": False}
    assert pipeline.stats().model("b").skipped == 1


def test_automatic_intra_op_threads_share_the_cores_between_concurrent_models() -> None:
    assert default_intra_op_threads(Mode.PARALLEL_SYNC, 2, cpu_count=2) == 1
    assert default_intra_op_threads(Mode.PARALLEL_SYNC, 2, cpu_count=16) == 8
    assert default_intra_op_threads(Mode.PARALLEL_ASYNC, 3, cpu_count=2) == 1
    assert default_intra_op_threads(Mode.SINGLE, 1, cpu_count=8) == 0
    assert default_intra_op_threads(Mode.SINGLE, 1, cpu_count=8, frame_pipeline=True) == 4


def test_a_models_intra_op_threads_option_overrides_the_automatic_share(
    make_pipeline: Any, scripts: Any, sessions: Any
) -> None:
    factory = sessions()
    make_pipeline("parallel_sync", [("a", scripts.echo, "intra_op_threads = 3"), ("b", scripts.echo, "")],
                  session_factory=factory)
    assert factory.threads["a"] == 3
    assert factory.threads["b"] == default_intra_op_threads(Mode.PARALLEL_SYNC, 2)
