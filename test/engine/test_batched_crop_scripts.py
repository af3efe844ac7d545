"""The shipped per-box scripts (pose, face mesh) on real models: one ``vp`` call for all crops gives
exactly the results of the per-crop formulation they replaced (crop_boxes + normalize, then one
take / map_points / sigmoid / concat per person)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support import CONFIG_DIR, MODELS_DIR

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.frames import Frame, iter_frames, sample_image

#: pose.lua as it was: every crop and every person's keypoints one `vp` call at a time.
PER_PERSON_POSE = """
function preprocess(ctx)
  local people = ctx.results.person
  if people == nil or #people.detections == 0 then return nil end
  local boxes = vp.boxes(people.detections)
  local crops, transforms = vp.crop_boxes(vp.image(ctx, "rgb8"), boxes, 256, 256, { scale = 1.25, square = true })
  return vp.normalize(crops, { scale = 1 / 255 }), { boxes = boxes, transforms = transforms }
end
function postprocess(outputs, ctx, state)
  local n = outputs.Identity:dim(1)
  local landmarks = vp.slice(vp.reshape(outputs.Identity, { n, 39, 5 }), 2, 1, 33)
  local people = {}
  for i = 1, n do
    local points = vp.map_points(vp.squeeze(vp.take(landmarks, { i }), 1), state.transforms[i])
    people[i] = vp.concat({ vp.slice(points, 2, 1, 3), vp.sigmoid(vp.slice(points, 2, 4, 4)) }, 2)
  end
  return { detections = vp.detections(state.boxes, vp.squeeze(outputs.Identity_1, 2),
                                      vp.add(vp.zeros({ n }, "int64"), 1), { "person" }, vp.stack(people, 1)) }
end
"""

#: face_mesh.lua as it was.
PER_FACE_MESH = """
function preprocess(ctx)
  local faces = ctx.results.face
  if faces == nil or #faces.detections == 0 then return nil end
  local boxes = vp.boxes(faces.detections)
  local crops, transforms = vp.crop_boxes(vp.image(ctx, "rgb8"), boxes, 192, 192, { scale = 1.5, square = true })
  return vp.normalize(crops, { scale = 1 / 255 }), { boxes = boxes, transforms = transforms }
end
function postprocess(outputs, ctx, state)
  local n = outputs.conv2d_21:dim(1)
  local mesh = vp.reshape(outputs.conv2d_21, { n, 468, 3 })
  local faces = {}
  for i = 1, n do faces[i] = vp.map_points(vp.squeeze(vp.take(mesh, { i }), 1), state.transforms[i]) end
  return { detections = vp.detections(state.boxes, vp.sigmoid(vp.reshape(outputs.conv2d_31, { n })), nil, nil,
                                      vp.stack(faces, 1)) }
end
"""

#: A person "detector" running SSDLite whose result is five fixed boxes, two across the border.
FIXED_PEOPLE = """
function preprocess(ctx)
  return vp.expand_dims(vp.resize(vp.image(ctx, "rgb8"), 300, 300), 1)
end
function postprocess(outputs, ctx)
  local boxes = vp.from_table({{-30, 40, 90, 300}, {100, 20, 180, 250}, {200, 60, 330, 400},
                               {500, 300, 700, 520}, {260, 100, 300, 130}}, "float32")
  return { detections = vp.detections(boxes, vp.from_table({0.9, 0.8, 0.7, 0.6, 0.5}, "float32"),
                                      nil, { "person" }) }
end
"""


def comparable(value: Any) -> Any:
    """``value`` with NaN made equal to itself and each number tagged with its type."""
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return (type(value).__name__, value)


def run_with(folder: Path, config: str, model: str, script: str, source: str, frames: list[Frame],
             detector: str | None = None) -> list[Any]:
    """Run ``config`` with ``script`` replaced by ``source`` (and the detector's script, when given)."""
    shutil.copytree(CONFIG_DIR, folder / "config")
    (folder / "models").symlink_to(MODELS_DIR)
    (folder / "config" / "scripts" / script).write_text(source, encoding="utf-8")
    if detector is not None:
        (folder / "config" / "scripts" / "ssd_person.lua").write_text(detector, encoding="utf-8")
    with Pipeline.from_config(folder / "config" / config) as pipeline:
        return [comparable(pipeline.run(frame.image, encoding=frame.encoding).results.get(model))
                for frame in frames]


@pytest.mark.parametrize("detector", [None, FIXED_PEOPLE], ids=["real_person_boxes", "five_boxes_across_borders"])
def test_shipped_pose_script_gives_exactly_the_per_person_results(tmp_path: Path, detector: str | None) -> None:
    bikes = list(iter_frames("sample:bikes", limit=106))
    frames = [bikes[i] for i in (0, 30, 76, 104)]
    shipped = (CONFIG_DIR / "scripts" / "pose.lua").read_text(encoding="utf-8")
    got = run_with(tmp_path / "shipped", "person_pose.lua", "pose", "pose.lua", shipped, frames, detector)
    want = run_with(tmp_path / "reference", "person_pose.lua", "pose", "pose.lua", PER_PERSON_POSE, frames, detector)
    people = [len(result["detections"]) if isinstance(result, dict) else 0 for result in got]
    assert people == ([0, 1, 1, 1] if detector is None else [5, 5, 5, 5])
    assert got == want


def test_shipped_face_mesh_script_gives_exactly_the_per_face_results(tmp_path: Path) -> None:
    astronaut = sample_image("astronaut")
    two_faces = np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, ::-1]], axis=1))
    frames = [Frame(0, astronaut, "rgb8", 0.0), Frame(1, two_faces, "rgb8", 0.0)]
    shipped = (CONFIG_DIR / "scripts" / "face_mesh.lua").read_text(encoding="utf-8")
    got = run_with(tmp_path / "shipped", "face_landmarks.lua", "mesh", "face_mesh.lua", shipped, frames)
    want = run_with(tmp_path / "reference", "face_landmarks.lua", "mesh", "face_mesh.lua", PER_FACE_MESH, frames)
    assert [len(result["detections"]) for result in got] == [1, 2]
    assert got == want
