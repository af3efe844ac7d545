"""single and serial modes: errors and the skip logic of docs/execution-modes.md."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
from support import make_scale_model

from ros_vision_pipe.engine.errors import InferenceError, InputError, ScriptError
from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ModelSpec, ResultStatus
from ros_vision_pipe.engine.session import InferenceSession

Writer = Callable[[str, str], Path]
IMAGE = np.zeros((4, 6, 3), np.uint8)

ROW = """
function preprocess(ctx)
  if ctx.frame_id % 2 == 1 then return nil end
  return vp.from_table({{ctx.width, ctx.height, ctx.frame_id}}, "float32")
end
function postprocess(outputs, ctx)
  return { w = outputs.y:at(1, 1), h = outputs[1]:at(1, 2), frame = ctx.frame_id }
end
"""


def single(write: Writer, script: str) -> Pipeline:
    write("m.lua", script)
    path = write("p.lua", 'return { mode = "single", models = { { name = "det", path = "scale.onnx", script = "m.lua" } } }')
    return Pipeline.from_config(path)


def test_single_mode_runs_preprocess_inference_postprocess(write: Writer, scale_model: Path) -> None:
    with single(write, ROW) as pipeline:
        result = pipeline.run(IMAGE)
    outcome = result.outcomes["det"]
    assert outcome.status is ResultStatus.OK
    assert outcome.value == {"w": 12, "h": 8, "frame": 0}
    assert result.results == {"det": {"w": 12, "h": 8, "frame": 0}}
    assert outcome.latency_ms > 0


def test_single_mode_skips_inference_and_returns_empty_result_when_preprocess_returns_nil(
    write: Writer, scale_model: Path
) -> None:
    with single(write, ROW) as pipeline:
        pipeline.run(IMAGE)
        result = pipeline.run(IMAGE)
    assert result.frame_id == 1
    assert result.outcomes["det"].status is ResultStatus.SKIPPED
    assert result.results == {}


def test_single_mode_propagates_an_inference_failure_with_expected_and_got_shapes(
    write: Writer, scale_model: Path
) -> None:
    script = ROW.replace('{{ctx.width, ctx.height, ctx.frame_id}}', '{{1, 2}}')
    with single(write, script) as pipeline, pytest.raises(
        InferenceError, match=r"input 'x': expected float32 \[\?,3\], got float32 \[1,2\] \(model 'det', frame 0\)"
    ):
        pipeline.run(IMAGE)


def test_single_mode_propagates_a_wrong_dtype_with_expected_and_got(write: Writer, scale_model: Path) -> None:
    script = ROW.replace('"float32"', '"int64"')
    with single(write, script) as pipeline, pytest.raises(
        InferenceError, match=r"expected float32 \[\?,3\], got int64 \[1,3\]"
    ):
        pipeline.run(IMAGE)


def test_single_mode_propagates_a_postprocess_failure_naming_script_line_model_and_frame(
    write: Writer, scale_model: Path
) -> None:
    script = ROW.replace("return { w =", "local broken = nil\n  local x = broken.field\n  return { w =")
    with single(write, script) as pipeline, pytest.raises(
        ScriptError,
        match=r"m\.lua:\d+ in postprocess: attempt to index a nil value \(local 'broken'\) \(model 'det', frame 0\)",
    ):
        pipeline.run(IMAGE)


def test_preprocess_error_carries_the_lua_traceback(write: Writer, scale_model: Path) -> None:
    with single(write, 'function preprocess(ctx) error("no camera") end\nfunction postprocess(o, c) return {} end') as pipeline:
        with pytest.raises(ScriptError, match=r"(?s)m\.lua:1 in preprocess: no camera \(model 'det', frame 0\).*stack traceback"):
            pipeline.run(IMAGE)


def test_host_api_error_points_at_the_calling_script_line(write: Writer, scale_model: Path) -> None:
    script = 'function preprocess(ctx)\n  local t = vp.resize(ctx.image, -3, 10)\n  return t\nend\nfunction postprocess(o, c) return {} end'
    with single(write, script) as pipeline, pytest.raises(ScriptError, match=r"m\.lua:2 in preprocess: vp\.resize: .*-3"):
        pipeline.run(IMAGE)


def test_context_is_read_only_for_scripts(write: Writer, scale_model: Path) -> None:
    script = 'function preprocess(ctx) ctx.frame_id = 5 end\nfunction postprocess(o, c) return {} end'
    with single(write, script) as pipeline, pytest.raises(ScriptError, match=r"ctx is read-only \(tried to set frame_id\)"):
        pipeline.run(IMAGE)


def test_pipeline_rejects_an_image_that_is_not_hwc_uint8(write: Writer, scale_model: Path) -> None:
    with single(write, ROW) as pipeline:
        with pytest.raises(InputError, match=r"must be H x W x C uint8, got float32 with shape \(4, 6, 3\) \(source 'default', frame 0\)"):
            pipeline.run(IMAGE.astype(np.float32))
        with pytest.raises(InputError, match=r"has 3 channels but encoding 'mono8' needs 1"):
            pipeline.run(IMAGE, encoding="mono8")
        with pytest.raises(InputError, match=r"image is empty"):
            pipeline.run(np.zeros((0, 4, 3), np.uint8))


SERIAL_CONFIG = """
return { mode = "serial", models = {
  { name = "det", path = "scale.onnx", script = "det.lua" },
  { name = "pose", path = "scale.onnx", script = "pose.lua" },
  { name = "count", path = "scale.onnx", script = "count.lua" },
} }
"""


def test_serial_mode_skips_model_when_preprocess_returns_nil_and_later_models_still_run(
    write: Writer, scale_model: Path
) -> None:
    # det finds "people" on even frames only; pose runs per person; count always runs and sees pose's state.
    write("det.lua", """
      function preprocess(ctx) return vp.from_table({{ctx.frame_id, 0, 0}}, "float32") end
      function postprocess(outputs, ctx)
        if ctx.frame_id % 2 == 1 then return { detections = {} } end
        return { detections = { { box = {1, 2, 3, 4}, score = 0.9 } } }
      end
    """)
    write("pose.lua", """
      function preprocess(ctx)
        if #ctx.results.det.detections == 0 then return nil end
        return vp.from_table({{ctx.results.det.detections[1].box[3], 0, 0}}, "float32")
      end
      function postprocess(outputs, ctx) return { x = outputs.y:at(1, 1) } end
    """)
    write("count.lua", """
      function preprocess(ctx)
        local v = 0
        if ctx.results.pose == nil then v = -1 else v = ctx.results.pose.x end
        return vp.from_table({{v, 0, 0}}, "float32")
      end
      function postprocess(outputs, ctx) return { seen = outputs.y:at(1, 1) } end
    """)
    path = write("p.lua", SERIAL_CONFIG)
    with Pipeline.from_config(path) as pipeline:
        even, odd = pipeline.run(IMAGE), pipeline.run(IMAGE)
    assert even.outcomes["pose"].status is ResultStatus.OK
    assert even.results["pose"] == {"x": 6}
    assert even.results["count"] == {"seen": 12}
    assert odd.results["det"] == {"detections": []}
    assert odd.outcomes["pose"].status is ResultStatus.SKIPPED
    assert "pose" not in odd.results
    assert odd.outcomes["count"].status is ResultStatus.OK
    assert odd.results["count"] == {"seen": -2}


class CountingSession:
    """A real ONNX session that counts its runs and their batch sizes."""

    def __init__(self, inner: InferenceSession) -> None:
        self.inner = inner
        self.batches: list[int] = []

    @property
    def inputs(self):  # type: ignore[no-untyped-def]
        return self.inner.inputs

    @property
    def outputs(self):  # type: ignore[no-untyped-def]
        return self.inner.outputs

    @property
    def metadata(self):  # type: ignore[no-untyped-def]
        return self.inner.metadata

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        self.batches.append(next(iter(feeds.values())).shape[0])
        return self.inner.run(feeds)


@pytest.mark.parametrize(("shape", "expected_runs"), [(("N", 3), [5]), ((1, 3), [1, 1, 1, 1, 1])])
def test_per_crop_model_runs_a_batch_at_once_or_one_by_one_when_batch_is_fixed_at_one(
    write: Writer, tmp_path: Path, shape: tuple[object, ...], expected_runs: list[int]
) -> None:
    make_scale_model(tmp_path / "scale.onnx", shape=shape)
    sessions: list[CountingSession] = []

    def factory(spec: ModelSpec, threads: int, spinning: bool) -> InferenceSession:
        sessions.append(CountingSession(onnx_session_factory(spec, threads, spinning)))
        return sessions[-1]

    script = """
      function preprocess(ctx) return vp.from_table({{1,0,0},{2,0,0},{3,0,0},{4,0,0},{5,0,0}}, "float32") end
      function postprocess(outputs, ctx)
        local out = {}
        for i = 1, outputs.y:dim(1) do out[i] = outputs.y:at(i, 1) end
        return out
      end
    """
    write("m.lua", script)
    path = write("p.lua", 'return { mode = "single", models = { { name = "crops", path = "scale.onnx", script = "m.lua" } } }')
    with Pipeline.from_config(path, session_factory=factory) as pipeline:
        result = pipeline.run(IMAGE)
    assert result.results["crops"] == [2, 4, 6, 8, 10]
    assert sessions[0].batches == expected_runs


def test_frames_of_different_sources_have_their_own_counters(write: Writer, scale_model: Path) -> None:
    with single(write, ROW) as pipeline:
        ids = [(s, pipeline.run(IMAGE, source=s).frame_id) for s in ("left", "left", "right", "left")]
    assert ids == [("left", 0), ("left", 1), ("right", 0), ("left", 2)]
