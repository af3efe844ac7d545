"""parallel_async mode (docs/execution-modes.md): intervals, worker queues, the aggregation table, per-worker errors."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.errors import PipelineClosedError, ScriptError
from ros_vision_pipe.engine.records import FrameResult, ResultStatus

OK, REUSED, SKIPPED, ERROR = ResultStatus.OK, ResultStatus.REUSED, ResultStatus.SKIPPED, ResultStatus.ERROR

#: The aggregation table of docs/execution-modes.md with intervals det 1, scene 10, anomaly 30: (status, computed_on) per frame.
def spec_table(frame: int) -> dict[str, tuple[ResultStatus, int]]:
    """What the aggregation table prescribes for ``frame`` (frames 0-30)."""
    scene, anomaly = frame - frame % 10, frame - frame % 30
    return {
        "det": (OK, frame),
        "scene": (OK if frame % 10 == 0 else REUSED, scene),
        "anomaly": (OK if frame % 30 == 0 else REUSED, anomaly),
    }


def table_models(scripts: Any, extra: str = "") -> list[tuple[str, str, str]]:
    return [
        ("det", scripts.echo, "frame_interval = 1"),
        ("scene", scripts.echo, f"frame_interval = 10, max_queue_size = 1{extra}"),
        ("anomaly", scripts.echo, f"frame_interval = 30, max_queue_size = 1{extra}"),
    ]


def provenance(result: FrameResult) -> dict[str, tuple[ResultStatus, int]]:
    return {name: (o.status, o.computed_on) for name, o in result.outcomes.items()}


def test_lossless_mode_reproduces_the_spec_aggregation_table_for_frames_0_to_30(
    make_pipeline: Any, scripts: Any, sessions: Any, image: np.ndarray
) -> None:
    # the slow models are slower than the main one: lossless still waits for them
    factory = sessions(delays={"scene": 0.01, "anomaly": 0.03})
    pipeline = make_pipeline("parallel_async", table_models(scripts), session_factory=factory, lossless=True)
    results = []
    for frame in range(31):  # frame-level pipeline: up to 5 frames in flight
        assert pipeline.submit(image)
        if frame >= 4:
            results.append(pipeline.wait_result(5))
    results += [pipeline.wait_result(5) for _ in range(4)]
    for frame, result in enumerate(results):
        assert result is not None and result.frame_id == frame
        assert provenance(result) == spec_table(frame), f"frame {frame}"
        for name, outcome in result.outcomes.items():
            assert outcome.age == frame - outcome.computed_on
            assert outcome.value["frame"] == outcome.computed_on, name
    stats = pipeline.stats()
    assert (stats.model("scene").runs, stats.model("scene").reused) == (4, 27)
    assert (stats.model("anomaly").runs, stats.model("anomaly").reused) == (2, 29)
    assert sum(row.dropped for row in stats.models) == 0


def test_live_mode_gives_the_same_table_when_the_slow_models_finish_before_the_main_model(
    make_pipeline: Any, scripts: Any, sessions: Any, image: np.ndarray
) -> None:
    factory = sessions(delays={"det": 0.03})
    pipeline = make_pipeline("parallel_async", table_models(scripts), session_factory=factory)
    for frame in range(31):
        assert provenance(pipeline.run(image)) == spec_table(frame), f"frame {frame}"


def test_a_model_without_any_result_yet_is_skipped_with_no_value_in_live_mode(
    make_pipeline: Any, scripts: Any, sessions: Any, image: np.ndarray
) -> None:
    factory = sessions(delays={"scene": 0.3})
    pipeline = make_pipeline("parallel_async", table_models(scripts)[:2], session_factory=factory)
    first = pipeline.run(image)
    assert first.outcomes["det"].status is OK
    scene = first.outcomes["scene"]
    assert (scene.status, scene.value, scene.computed_on) == (SKIPPED, None, -1)
    assert "scene" not in first.results
    time.sleep(0.5)
    later = pipeline.run(image)
    assert provenance(later)["scene"] == (REUSED, 0) and later.outcomes["scene"].age == 1


def test_a_slow_worker_with_a_queue_of_one_drops_the_oldest_and_counts_while_the_main_model_gets_every_frame(
    make_pipeline: Any, scripts: Any, sessions: Any, within: Any, image: np.ndarray
) -> None:
    factory = sessions(delays={"slow": 0.1})
    pipeline = make_pipeline("parallel_async", [("det", scripts.echo, ""),
                                                ("slow", scripts.echo, "max_queue_size = 1")],
                             session_factory=factory)
    results = [within(2, lambda: pipeline.run(image)) for _ in range(30)]
    assert [r.frame_id for r in results] == list(range(30))
    assert all(r.outcomes["det"].status is OK and r.error is None for r in results)
    deadline = time.monotonic() + 2
    while pipeline.stats().model("slow").runs + pipeline.stats().model("slow").dropped < 30:
        assert time.monotonic() < deadline, f"frames lost: {pipeline.stats().model('slow')}"
        time.sleep(0.05)
    stats = pipeline.stats()
    slow = stats.model("slow")
    assert slow.dropped > 10, "the slow model cannot keep up: its oldest queued frames are dropped"
    assert slow.runs + slow.dropped == 30 and slow.queue_depth == 0
    assert stats.model("det").dropped == 0 and stats.frames_dropped == 0
    assert all(r.outcomes["slow"].status in (OK, REUSED, SKIPPED) for r in results)


def test_a_worker_that_may_not_drop_blocks_the_dispatcher_and_computes_every_frame(
    make_pipeline: Any, scripts: Any, sessions: Any, image: np.ndarray
) -> None:
    factory = sessions(delays={"slow": 0.02})
    pipeline = make_pipeline("parallel_async", [
        ("det", scripts.echo, ""), ("slow", scripts.echo, "max_queue_size = 1, drop_on_overflow = false")],
        session_factory=factory)
    for _ in range(15):
        pipeline.run(image)
    time.sleep(0.1)
    slow = pipeline.stats().model("slow")
    assert (slow.runs, slow.dropped) == (15, 0)


def test_a_failing_worker_is_isolated_reported_with_its_frame_and_later_frames_reuse_its_last_good_value(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    models = table_models(scripts)
    models[1] = ("scene", scripts.failing("postprocess", 10), "frame_interval = 10")
    pipeline = make_pipeline("parallel_async", models, lossless=True)
    results = [pipeline.run(image) for _ in range(21)]
    failed = results[10].outcomes["scene"]
    assert failed.status is ERROR and failed.value is None and failed.computed_on == 10
    assert failed.error is not None
    assert "boom on purpose (model 'scene', frame 10)" in failed.error
    assert results[10].error is None and results[10].outcomes["det"].status is OK
    assert provenance(results[11])["scene"] == (REUSED, 0) and results[11].outcomes["scene"].age == 11
    assert provenance(results[20])["scene"] == (OK, 20)
    assert pipeline.stats().model("scene").errors == 1


def test_the_aggregator_function_shapes_the_combined_output_with_each_models_provenance(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    aggregator = """
    aggregator = function(results, meta)
      return { frame = meta.frame_id, det = results.det.frame, scene = results.scene.frame,
               scene_status = meta.models.scene.status, scene_age = meta.models.scene.age }
    end
    """
    pipeline = make_pipeline("parallel_async", table_models(scripts)[:2], aggregator, lossless=True)
    results = [pipeline.run(image) for _ in range(12)]
    assert results[10].fused == {"frame": 10, "det": 10, "scene": 10, "scene_status": "ok", "scene_age": 0}
    assert results[11].fused == {"frame": 11, "det": 11, "scene": 10, "scene_status": "reused", "scene_age": 1}
    assert results[11].has_fused


def test_a_failing_aggregator_fails_run_with_the_script_error(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    aggregator = 'aggregator = function(results, meta) error("no aggregation") end'
    pipeline = make_pipeline("parallel_async", table_models(scripts)[:2], aggregator)
    with pytest.raises(ScriptError, match=r"p\.lua:1 in aggregator: no aggregation \(model 'pipeline', frame 0\)"):
        pipeline.run(image)


def test_other_workers_see_the_results_of_the_last_emitted_frame(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("parallel_async", table_models(scripts)[:2], lossless=True)
    results = [pipeline.run(image) for _ in range(21)]
    assert results[0].results["scene"]["seen"] == []
    assert results[10].results["scene"]["seen"] == {"det": 9, "scene": 0}
    assert results[20].results["scene"]["seen"] == {"det": 19, "scene": 10}
    assert all(r.results["det"]["seen"] == [] for r in results)


def test_several_sources_have_their_own_counters_queues_and_aggregators_and_share_one_session_per_model(
    make_pipeline: Any, scripts: Any, sessions: Any, image: np.ndarray
) -> None:
    factory = sessions()
    pipeline = make_pipeline("parallel_async", table_models(scripts), session_factory=factory, lossless=True)
    by_source: dict[str, list[FrameResult]] = {"left": [], "right": []}
    for step in range(31):
        by_source["left"].append(pipeline.run(image, source="left"))
        if step % 2 == 0:
            by_source["right"].append(pipeline.run(image, source="right"))
    for source, results in by_source.items():
        for frame, result in enumerate(results):
            assert (result.source, result.frame_id) == (source, frame)
            assert provenance(result) == spec_table(frame), (source, frame)
    assert {name: len(built) for name, built in factory.built.items()} == {"det": 1, "scene": 1, "anomaly": 1}
    stats = pipeline.stats()
    assert stats.model("scene", "left").runs == 4 and stats.model("scene", "right").runs == 2
    assert stats.model("det", "right").runs == 16


@pytest.mark.parametrize("mode", ["parallel_async", "parallel_sync"])
def test_close_while_run_waits_ends_the_call_and_joins_every_thread_within_a_second(
    make_pipeline: Any, scripts: Any, sessions: Any, engine_threads: Any, image: np.ndarray, mode: str
) -> None:
    factory = sessions(delays={"det": 0.3})
    pipeline = make_pipeline(mode, [("det", scripts.echo, ""), ("other", scripts.echo, "")], session_factory=factory)
    ended: list[object] = []

    def run() -> None:
        try:  # the frame in inference may still complete; otherwise the call fails as closed
            ended.append(pipeline.run(image))
        except PipelineClosedError as error:
            ended.append(error)

    caller = threading.Thread(target=run)
    caller.start()
    time.sleep(0.05)
    start = time.perf_counter()
    pipeline.close()
    assert time.perf_counter() - start < 1.0
    caller.join(1)
    assert not caller.is_alive() and len(ended) == 1
    assert engine_threads() == []
    with pytest.raises(PipelineClosedError, match="the pipeline is closed"):
        pipeline.run(image)
