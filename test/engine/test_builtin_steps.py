"""Built-in steps (``vp.steps``): the engine runs them itself, with the Lua functions' results.

The shipped person detector script names both of its functions as built-in steps; these tests hold
it to the Lua it replaces, on real frames of the cyclist clip and the real SSDLite model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from support import CONFIG_DIR, MODELS_DIR

from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import ScriptError, ScriptMemoryError
from ros_vision_pipe.engine.lua.limits import ScriptLimits
from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.vision.formats import DetectionList
from ros_vision_pipe.frames import iter_frames

Writer = Callable[[str, str], Path]
SSD_MODEL = MODELS_DIR / "ssdlite_person.onnx"
SHIPPED = CONFIG_DIR / "scripts" / "ssd_person.lua"

#: ssd_person.lua's two functions written in Lua (as its comments say they are).
WRITTEN_OUT = """
local SCORE_THRESHOLD = 0.5
local LABELS = { "person" }
function preprocess(ctx)
  return vp.model_input(ctx.image, 300, 300, { src = ctx.encoding, dst = "rgb8" })
end
function postprocess(outputs, ctx)
  return { detections = vp.select_detections(outputs["detection_boxes:0"], outputs["detection_scores:0"],
    SCORE_THRESHOLD, { class_ids = outputs["detection_classes:0"], labels = LABELS, format = "yxyx",
                       scale = { ctx.width, ctx.height } }) }
end
"""

#: The steps called from functions of the script's own: their Lua side.
CALLED_FROM_LUA = """
local input = vp.steps.model_input(300, 300, { dst = "rgb8" })
local select = vp.steps.select_detections("detection_boxes:0", "detection_scores:0", 0.5, {
  class_ids = "detection_classes:0", labels = { "person" }, format = "yxyx", scale = "image" })
function preprocess(ctx) return input(ctx) end
function postprocess(outputs, ctx) return select(outputs, ctx) end
"""


def load(path: Path, limits: ScriptLimits | None = None) -> Model:
    spec = ModelSpec(name="person", model_path=SSD_MODEL, script_path=path,
                     **({} if limits is None else {"script_limits": limits}))
    return Model.load(spec, intra_op_threads=1, allow_spinning=False)


def run(model: Model, ctx: FrameContext) -> tuple[np.ndarray, Any]:
    prepared = model.preprocess(ctx)
    assert prepared is not None
    outputs = model.infer_here(prepared, ctx.frame_id)
    return prepared.feeds["image_tensor:0"], model.postprocess(outputs, ctx, prepared)


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    """Frames of the cyclist clip at 640x480, bgr8 (a person in most, none in some)."""
    frames = [frame.image for frame in iter_frames("sample:bikes", limit=130)][60::2]
    return [cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), (640, 480)) for image in frames]


def test_shipped_script_runs_both_steps_without_calling_into_lua(clip: list[np.ndarray], monkeypatch: Any) -> None:
    model = load(SHIPPED)
    for name in ("call_on_frame", "call_with_outputs", "call"):
        monkeypatch.setattr(model.script, name, lambda *args, **kwargs: pytest.fail("a call into Lua"))
    feeds, result = run(model, FrameContext(frame_id=0, image=clip[0], encoding="bgr8"))
    assert feeds.shape == (1, 300, 300, 3) and feeds.dtype == np.uint8
    assert set(result) == {"detections"} and isinstance(result["detections"], DetectionList)


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8", "mono8", "bgra8"])
@pytest.mark.parametrize("other", [WRITTEN_OUT, CALLED_FROM_LUA], ids=["written_out", "called_from_lua"])
def test_steps_give_the_inputs_and_results_of_the_lua_they_replace(
        clip: list[np.ndarray], encoding: str, other: str, write: Writer) -> None:
    codes = {"bgr8": None, "rgb8": cv2.COLOR_BGR2RGB, "mono8": cv2.COLOR_BGR2GRAY, "bgra8": cv2.COLOR_BGR2BGRA}
    steps, lua = load(SHIPPED), load(write("lua.lua", other))
    found = 0
    for index, image in enumerate(clip):
        frame = image if codes[encoding] is None else cv2.cvtColor(image, codes[encoding])
        ctx = FrameContext(frame_id=index, image=frame, encoding=encoding)
        (feeds, result), (lua_feeds, lua_result) = run(steps, ctx), run(lua, ctx)
        assert feeds.dtype == lua_feeds.dtype and np.array_equal(feeds, lua_feeds), index
        assert result == lua_result and type(result["detections"]) is type(lua_result["detections"]), index
        found += len(result["detections"])
    assert found > 10  # the cyclist is found: the comparison covers real detections, not empty lists


def test_select_step_options_match_select_detections(clip: list[np.ndarray], write: Writer) -> None:
    options = 'labels = { [1] = "rider" }, format = "yxyx", limit = 1, scale = { 100, 50 }'
    steps = load(write("steps.lua", f"""
        preprocess = vp.steps.model_input(300, 300, {{ dst = "rgb8", interp = "nearest" }})
        postprocess = vp.steps.select_detections("detection_boxes:0", "detection_scores:0", 0.2, {{
          class_ids = "detection_classes:0", key = "people", {options} }})
        """))
    lua = load(write("lua.lua", f"""
        function preprocess(ctx)
          return vp.model_input(ctx.image, 300, 300, {{ src = ctx.encoding, dst = "rgb8", interp = "nearest" }})
        end
        function postprocess(outputs, ctx)
          return {{ people = vp.select_detections(outputs["detection_boxes:0"], outputs["detection_scores:0"], 0.2,
            {{ class_ids = outputs["detection_classes:0"], {options} }}) }}
        end
        """))
    counts = []
    for index, image in enumerate(clip[:12]):
        ctx = FrameContext(frame_id=index, image=image, encoding="bgr8")
        (feeds, result), (lua_feeds, lua_result) = run(steps, ctx), run(lua, ctx)
        assert np.array_equal(feeds, lua_feeds) and result == lua_result
        counts.append(len(result["people"]))
    assert max(counts) == 1 and all(d["label"] == "rider" for d in result["people"])


def test_a_step_that_does_not_fit_the_model_fails_at_load_naming_the_line(write: Writer) -> None:
    cases = {
        'preprocess = vp.steps.model_input(300, 300)\npostprocess = vp.steps.model_input(300, 300)':
            r"m\.lua:2: postprocess is vp\.steps\.model_input, but it is a preprocess step \(model 'person'\)",
        'preprocess = vp.steps.model_input(300, 300)\n'
        'postprocess = vp.steps.select_detections("boxes", "detection_scores:0", 0.5)':
            r"m\.lua:2: postprocess is vp\.steps\.select_detections, but the model has no output 'boxes'; "
            r"its outputs are \['num_detections:0', ",
        'preprocess = vp.steps.model_input(300, 300, { src = "bgr8" })':
            r"m\.lua:1 in main chunk: vp\.steps\.model_input: unknown option 'src'",
        'preprocess = vp.steps.model_input(300, 300, { dst = "rgb8", normalize = { mean = { 1, 2 } } })':
            r"m\.lua:1 in main chunk: vp\.steps\.model_input: opts\.normalize\.mean must have 3 entries",
        'postprocess = vp.steps.select_detections("b", "s", 0.5, { scale = "frame" })':
            r"m\.lua:1 in main chunk: vp\.steps\.select_detections: opts\.scale must be \"image\", \{sx, sy\} or \{s\}",
        'postprocess = vp.steps.select_detections("b", 2, 0.5)':
            r"m\.lua:1 in main chunk: vp\.steps\.select_detections: scores must be the name of a model output, got 2",
        'vp.steps.model_input = function() end':
            r"m\.lua:1 in main chunk: vp\.steps is read-only",
    }
    for source, message in cases.items():
        with pytest.raises(ScriptError, match=message):
            load(write("m.lua", source))


def test_a_frame_a_step_cannot_take_fails_as_the_script_would_naming_line_model_and_frame(write: Writer) -> None:
    write("m.lua", 'preprocess = vp.steps.model_input(300, 300, { dst = "rgb8" })\n'
                   'postprocess = vp.steps.select_detections("detection_boxes:0", "detection_scores:0", 0.5)\n')
    path = write("p.lua", f'return {{ mode = "single", models = {{ {{ name = "person", path = {str(SSD_MODEL)!r}, '
                          'script = "m.lua" } } }')
    with Pipeline.from_config(path) as pipeline:
        pipeline.run(np.zeros((48, 64, 3), np.uint8), encoding="bgr8")
        with pytest.raises(ScriptError, match=r"m\.lua:1 in preprocess: vp\.steps\.model_input: ctx\.image must be "
                                              r"a uint8 image .*float32\[48, 64, 1\] \(model 'person', frame 1\)$"):
            pipeline.run(np.zeros((48, 64, 1), np.float32), encoding="32FC1")  # a depth image
        result = pipeline.run(np.zeros((48, 64, 3), np.uint8), encoding="bgr8")  # the next frame runs
        assert result.results["person"] == {"detections": []}


def test_steps_made_in_a_loop_stay_within_the_script_memory_limit(write: Writer) -> None:
    source = ('local all = {}\nfor i = 1, 10000000 do all[i] = vp.steps.model_input(300, 300, { dst = "rgb8" }) end\n'
              'preprocess = all[1]\npostprocess = all[1]\n')
    with pytest.raises(ScriptMemoryError, match=r"m\.lua in main chunk: memory limit of 8 MiB exceeded"):
        load(write("m.lua", source), ScriptLimits(timeout_ms=20_000, memory_mb=8))


def test_a_model_input_too_large_is_refused_before_anything_is_allocated(write: Writer) -> None:
    with pytest.raises(ScriptError, match=r"m\.lua:1 in main chunk: vp\.steps\.model_input: a 100000 x 100000 x "
                                          r"up to 4 uint8 input would take 38147\.0 MiB, more than the 1024 MiB"):
        load(write("m.lua", "preprocess = vp.steps.model_input(100000, 100000)\npostprocess = preprocess\n"))
    # within that bound but over the script's memory limit, which the Lua function's arrays count against
    source = 'preprocess = vp.steps.model_input(3000, 3000, { dst = "rgb8" })\nfunction postprocess() return {} end\n'
    with pytest.raises(ScriptError, match=r"m\.lua:1: preprocess is vp\.steps\.model_input, but its input takes up "
                                          r"to 25\.7 MiB, more than the script's memory limit of 8 MiB "
                                          r"\(script_memory_mb\) \(model 'person'\)"):
        load(write("m.lua", source), ScriptLimits(memory_mb=8))
    # the same bound for vp.model_input in a script's own preprocess: an error for the frame, not an allocation
    write("lua.lua", "function preprocess(ctx)\n  local input = vp.model_input(ctx.image, 100000, 100000)\n"
                     "  return input\nend\n"
                     "function postprocess() return {} end\n")
    path = write("p.lua", f'return {{ mode = "single", models = {{ {{ name = "person", path = {str(SSD_MODEL)!r}, '
                          'script = "lua.lua" } } }')
    with Pipeline.from_config(path) as pipeline, pytest.raises(
            ScriptError, match=r"lua\.lua:2 in preprocess: vp\.model_input: a 100000 x 100000 x up to 4 uint8 input "
                               r"would take 38147\.0 MiB.* \(model 'person', frame 0\)"):
        pipeline.run(np.zeros((48, 64, 3), np.uint8), encoding="bgr8")
