"""Reload without ROS: building beside, swapping at a frame boundary, session reuse, switches (real models)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.generations import SwappablePipeline
from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ResultStatus
from ros_vision_pipe.engine.reload import PipelineBuilder, ReloadError, SessionCache, config_hash

REPO = Path(__file__).resolve().parents[2]
SSD_MODEL = REPO / "models" / "ssdlite_person.onnx"
SSD_SCRIPT = REPO / "config" / "scripts" / "ssd_person.lua"
FRAME = np.zeros((120, 160, 3), np.uint8)


def write_config(folder: Path, *, label: str = "person", model: Path = SSD_MODEL, threshold: float = 0.5) -> Path:
    script = SSD_SCRIPT.read_text(encoding="utf-8")
    script = script.replace('local LABELS = { "person" }', f'local LABELS = {{ "{label}" }}')
    script = script.replace("local SCORE_THRESHOLD = 0.5", f"local SCORE_THRESHOLD = {threshold}")
    (folder / "ssd.lua").write_text(script, encoding="utf-8")
    path = folder / "person.lua"
    path.write_text("return { mode = 'serial', models = {\n"
                    f"  {{ name = 'person', path = {str(model)!r}, script = 'ssd.lua' }},\n"
                    "  { name = 'count', path = " + repr(str(model)) + ", script = 'count.lua' },\n} }\n",
                    encoding="utf-8")
    (folder / "count.lua").write_text(
        "function preprocess(ctx)\n  if ctx.results.person == nil then return nil end\n"
        "  return vp.expand_dims(vp.resize(vp.image(ctx, 'rgb8'), 300, 300), 1)\nend\n"
        "function postprocess(outputs, ctx) return { n = #ctx.results.person.detections } end\n", encoding="utf-8")
    return path


def test_a_script_edit_reuses_every_session_and_changes_the_config_hash(tmp_path: Path) -> None:
    builder = PipelineBuilder(onnx_session_factory)
    config = write_config(tmp_path)
    first = builder.build(config, warm_up=False)
    write_config(tmp_path, threshold=0.6)
    second = builder.build(config, FRAME, "bgr8")
    try:
        assert (first.number, second.number) == (1, 2)
        assert second.sessions_reused == 2 and builder.sessions.misses == 2  # one session per model name
        assert first.config_hash != second.config_hash == config_hash(second.pipeline.spec)
        assert second.pipeline.models["person"].session is first.pipeline.models["person"].session
        assert second.pipeline.models["person"].script is not first.pipeline.models["person"].script
    finally:
        first.pipeline.close()
        second.pipeline.close()


def test_a_new_model_file_gets_a_new_session_and_unused_ones_are_forgotten(tmp_path: Path) -> None:
    builder = PipelineBuilder(onnx_session_factory)
    assert isinstance(builder.sessions, SessionCache)
    first = builder.build(write_config(tmp_path), warm_up=False)
    copy = tmp_path / "copy.onnx"
    shutil.copyfile(SSD_MODEL, copy)
    second = builder.build(write_config(tmp_path, model=copy), FRAME, "bgr8")
    try:
        assert second.sessions_reused == 0
        builder.sessions.retain(second.pipeline.models.values())
        assert {id(s) for s in builder.sessions._sessions.values()} == {
            id(m.session) for m in second.pipeline.models.values()}
    finally:
        first.pipeline.close()
        second.pipeline.close()


def test_a_broken_config_or_a_failing_warm_up_frame_raises_a_reload_error_with_the_engine_message(
        tmp_path: Path) -> None:
    builder = PipelineBuilder(onnx_session_factory)
    config = write_config(tmp_path)
    (tmp_path / "ssd.lua").write_text("function preprocess(ctx) return nil end\n", encoding="utf-8")
    with pytest.raises(ReloadError, match=r"ScriptError: .*ssd.lua does not define a global function postprocess"):
        builder.build(config)
    write_config(tmp_path)
    (tmp_path / "count.lua").write_text(
        "function preprocess(ctx) error('boom in warm-up') end\nfunction postprocess(o, c) return {} end\n",
        encoding="utf-8")
    with pytest.raises(ReloadError, match=r"boom in warm-up"):
        builder.build(config, FRAME, "bgr8")
    assert builder.build(write_config(tmp_path), warm_up=False).number == 1  # failures take no number


def test_swapping_mid_stream_keeps_frame_indices_continuous_and_results_in_order(tmp_path: Path) -> None:
    builder = PipelineBuilder(onnx_session_factory)
    config = write_config(tmp_path)
    pipeline = SwappablePipeline(builder.build(config, warm_up=False))
    collected = []
    try:
        for _ in range(5):
            assert pipeline.submit(FRAME, source="cam", encoding="bgr8")
        write_config(tmp_path, label="edited")
        pipeline.swap(builder.build(config, FRAME, "bgr8"))  # frames 0-4 still in flight in generation 1
        for _ in range(5):
            assert pipeline.submit(FRAME, source="cam", encoding="bgr8")
        while len(collected) < 10:
            item = pipeline.wait_result(timeout=30)
            assert item is not None
            collected.append((item[0].number, item[1].frame_id))
        assert collected == [(1, i) for i in range(5)] + [(2, i) for i in range(5, 10)]
        assert len(pipeline.pipelines()) == 1  # generation 1 drained and closed
    finally:
        pipeline.close()
    with pytest.raises(PipelineClosedError):
        pipeline.wait_result(0.1)


def test_a_disabled_model_is_skipped_with_its_reason_and_serial_dependents_see_nil(tmp_path: Path) -> None:
    builder = PipelineBuilder(onnx_session_factory)
    generation = builder.build(write_config(tmp_path), warm_up=False)
    pipeline: Pipeline = generation.pipeline
    try:
        builder.switches.set_enabled("person", False, "person is off")
        result, reasons = builder.switches.apply(pipeline.run(FRAME, source="cam", encoding="bgr8"))
        assert {n: o.status for n, o in result.outcomes.items()} == {
            "person": ResultStatus.SKIPPED, "count": ResultStatus.SKIPPED}
        assert reasons == {"person": "person is off"}  # count skipped itself: person was nil
        builder.switches.set_enabled("person", True)
        result, reasons = builder.switches.apply(pipeline.run(FRAME, source="cam", encoding="bgr8"))
        assert result.outcomes["person"].status is ResultStatus.OK and reasons == {}
        assert result.outcomes["count"].value == {"n": 0}
    finally:
        pipeline.close()


def test_a_value_reused_from_before_the_switch_is_published_as_skipped_with_the_reason() -> None:
    from types import MappingProxyType

    from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome
    from ros_vision_pipe.engine.reload import ModelSwitches

    switches = ModelSwitches()
    outcomes = MappingProxyType({
        "main": ModelOutcome("main", ResultStatus.OK, {"n": 1}, 7),
        "scene": ModelOutcome("scene", ResultStatus.REUSED, {"label": "street"}, 4, age=3)})
    result = FrameResult(7, "cam", 0.0, Mode.PARALLEL_ASYNC, outcomes)
    assert switches.apply(result) == (result, {})
    switches.set_enabled("scene", False, "scene is off")
    published, reasons = switches.apply(result)
    assert reasons == {"scene": "scene is off"}
    assert published.outcomes["scene"].status is ResultStatus.SKIPPED and published.outcomes["scene"].value is None
    assert published.outcomes["main"] is outcomes["main"]


def test_lifetime_stats_add_up_every_generation_and_leave_out_the_warm_up_frame(tmp_path: Path) -> None:
    builder = PipelineBuilder(onnx_session_factory)
    config = write_config(tmp_path)
    pipeline = SwappablePipeline(builder.build(config, warm_up=False))
    try:
        for _ in range(4):
            assert pipeline.submit(FRAME, source="cam", encoding="bgr8")
        pipeline.swap(builder.build(config, FRAME, "bgr8"))  # its warm-up frame runs both models once
        for _ in range(3):
            assert pipeline.submit(FRAME, source="cam", encoding="bgr8")
        for _ in range(7):
            assert pipeline.wait_result(timeout=30) is not None
        assert len(pipeline.pipelines()) == 1  # generation 1 retired: its counters live on in the totals
        serving, lifetime = pipeline.stats(), pipeline.lifetime_stats()
    finally:
        pipeline.close()
    assert serving.model("person", "cam").runs == 3 and serving.model("person", "reload-warmup").runs == 1
    assert [(row.source, row.model) for row in lifetime.models] == [("cam", "person"), ("cam", "count")]
    person, count = lifetime.model("person", "cam"), lifetime.model("count", "cam")
    assert (person.runs, count.runs, person.errors + count.errors) == (7, 7, 0)
    assert (lifetime.frames_in, lifetime.frames_out, lifetime.pending) == (7, 7, 0)
    assert person.latency_total_ms > 0 and person.latency_last_ms > 0


def test_a_disabled_models_reused_values_count_as_skipped_in_the_published_view() -> None:
    from types import MappingProxyType

    from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome, ModelStats, PipelineStats
    from ros_vision_pipe.engine.reload import ModelSwitches

    switches = ModelSwitches()
    engine = PipelineStats(Mode.PARALLEL_ASYNC, (ModelStats("cam", "main", runs=9),
                                                 ModelStats("cam", "scene", runs=2, reused=7)))
    assert switches.as_published(engine) is engine
    switches.set_enabled("scene", False, "scene is off")
    for frame in (7, 8):
        outcomes = MappingProxyType({
            "main": ModelOutcome("main", ResultStatus.OK, {"n": 1}, frame),
            "scene": ModelOutcome("scene", ResultStatus.REUSED, {"label": "street"}, 4, age=frame - 4)})
        switches.apply(FrameResult(frame, "cam", 0.0, Mode.PARALLEL_ASYNC, outcomes))
    published = switches.as_published(engine)
    assert published.model("scene", "cam") == ModelStats("cam", "scene", runs=2, reused=5, skipped=2)
    assert published.model("main", "cam") == engine.model("main", "cam")
