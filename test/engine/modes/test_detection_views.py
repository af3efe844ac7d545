"""Detections stay typed between models: Lua sees a lazy read-only view, Python the same detections."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ros_vision_pipe.engine.errors import ScriptError
from ros_vision_pipe.engine.lua import convert
from ros_vision_pipe.engine.vision.formats import DetectionList

MakePipeline = Callable[..., object]

#: Three detections with keypoints, built by vp.detections (as detector scripts do).
DETECTOR = """
function preprocess(ctx)
  return vp.from_table({{1, 0, 0}}, "float32")
end
function postprocess(outputs, ctx)
  local boxes = vp.from_table({{0, 0, 2, 2}, {1, 1, 3, 4}, {2, 2, 5, 5}}, "float32")
  local points = vp.zeros({3, 2, 3}, "float32")
  return { detections = vp.detections(boxes, vp.from_table({0.9, 0.8, 0.7}, "float32"),
                                      vp.from_table({1, 1, 2}), {"a", "b"}, points) }
end
"""

#: Reads the detector's detections every way a script may, and hands some to vp ops and back.
READER = """
function preprocess(ctx)
  return vp.from_table({{1, 0, 0}}, "float32")
end
function postprocess(outputs, ctx)
  local dets = ctx.results.det.detections
  local labels, walked = {}, 0
  for i, d in ipairs(dets) do labels[i] = d.label end
  for _ in pairs(dets) do walked = walked + 1 end
  local boxes = vp.boxes(dets)
  return { count = #dets, second_x2 = dets[2].box.x2, labels = labels, walked = walked,
           beyond = dets[4] == nil, box_rows = boxes:dim(1), kept = dets,
           metatable = tostring(getmetatable(dets)), keypoints = #dets[1].keypoints }
end
"""


def test_a_later_model_reads_detections_through_a_view_and_python_gets_them_back_unchanged(
    make_pipeline: MakePipeline, image: np.ndarray
) -> None:
    pipeline = make_pipeline("serial", [("det", DETECTOR, ""), ("reader", READER, "")])
    result = pipeline.run(image)  # type: ignore[attr-defined]
    detections = result.results["det"]["detections"]
    reader = result.results["reader"]
    assert type(detections) is DetectionList and len(detections) == 3
    assert detections[1]["box"] == {"x1": 1.0, "y1": 1.0, "x2": 3.0, "y2": 4.0}
    assert [d["label"] for d in detections] == ["a", "a", "b"]
    assert (reader["count"], reader["second_x2"], reader["walked"], reader["beyond"]) == (3, 3.0, 3, True)
    assert reader["labels"] == ["a", "a", "b"] and reader["box_rows"] == 3 and reader["keypoints"] == 2
    assert reader["metatable"] == "false"  # protected like every other view
    assert reader["kept"] == detections  # a view returned as it is comes back as the same detections


def test_a_detection_view_is_read_only(make_pipeline: MakePipeline, image: np.ndarray) -> None:
    writer = READER.replace("local dets = ctx.results.det.detections",
                            "local dets = ctx.results.det.detections\n  rawset(dets, 1, {})")
    pipeline = make_pipeline("serial", [("det", DETECTOR, ""), ("reader", writer, "")])
    with pytest.raises(ScriptError, match=r"detection list is read-only \(tried to set 1\).*model 'reader'"):
        pipeline.run(image)  # type: ignore[attr-defined]
    writer = READER.replace("local dets = ctx.results.det.detections",
                            "local dets = ctx.results.det.detections\n  dets[1] = {}")
    pipeline = make_pipeline("serial", [("det", DETECTOR, ""), ("reader", writer, "")])
    with pytest.raises(ScriptError, match=r"detection list is read-only \(tried to set 1\)"):
        pipeline.run(image)  # type: ignore[attr-defined]


def test_detections_no_script_indexes_never_become_lua_tables(
    make_pipeline: MakePipeline, image: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    ignoring = READER.replace("local dets = ctx.results.det.detections", "do return { n = 1 } end")
    pipeline = make_pipeline("serial", [("det", DETECTOR, ""), ("reader", ignoring, "")])
    pipeline.run(image)  # type: ignore[attr-defined]  # warm: every function loaded
    converted: list[object] = []
    original = convert.to_lua

    def counting(runtime: object, value: object, *args: object, **kwargs: object) -> object:
        if isinstance(value, dict) and "box" in value:
            converted.append(value)
        return original(runtime, value, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(convert, "to_lua", counting)
    for module in ("ros_vision_pipe.engine.lua.sandbox",):
        monkeypatch.setattr(f"{module}.to_lua", counting)
    result = pipeline.run(image)  # type: ignore[attr-defined]
    assert len(result.results["det"]["detections"]) == 3
    assert converted == []  # neither the reader's ctx nor the detector's result built a detection table


def test_the_conversion_bound_counts_the_detections_of_a_view(
    make_pipeline: MakePipeline, image: np.ndarray
) -> None:
    pipeline = make_pipeline("serial", [("det", DETECTOR, ""), ("reader", READER, "")])
    script = pipeline.models["reader"].script  # type: ignore[attr-defined]
    view = script.view(DetectionList([{"box": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}}] * 5))
    assert script.from_lua(view) == [{"box": {"x1": 0, "y1": 0, "x2": 1, "y2": 1}}] * 5
    with pytest.raises(convert.ConversionError, match="more than"):
        convert.from_lua(view, max_values=3, view_source=script.view_source)
    assert convert.from_lua(view) == []  # a runtime's views mean nothing to another conversion


#: Walks the detector's detections with next, as Lua code written for plain tables does.
NEXT_READER = """
function preprocess(ctx)
  return vp.from_table({{1, 0, 0}}, "float32")
end
function postprocess(outputs, ctx)
  local dets = ctx.results.det.detections
  local keys, labels, key, row = {}, {}, next(dets)
  while key ~= nil do
    keys[#keys + 1], labels[#labels + 1] = key, row.label
    key, row = next(dets, key)
  end
  local _, bad_key = pcall(next, dets, "x")
  local _, not_a_table = pcall(next, 5)
  return { keys = keys, labels = labels, bad_key = bad_key, not_a_table = not_a_table,
           plain = next({ a = 1 }), empty = next(vp.detections(vp.zeros({ 0, 4 }))) == nil,
           any = next(dets) ~= nil }
end
"""


def test_next_walks_a_detection_view_as_pairs_does(make_pipeline: MakePipeline, image: np.ndarray) -> None:
    pipeline = make_pipeline("serial", [("det", DETECTOR, ""), ("reader", NEXT_READER, "")])
    reader = pipeline.run(image).results["reader"]  # type: ignore[attr-defined]
    assert reader["keys"] == [1, 2, 3] and reader["labels"] == ["a", "a", "b"] and reader["any"] is True
    assert reader["bad_key"] == "invalid key to 'next' of a detection list"
    assert reader["not_a_table"] == "bad argument #1 to 'next' (table expected, got number)"
    assert reader["plain"] == "a" and reader["empty"] is True  # plain tables and empty views as Lua's next
