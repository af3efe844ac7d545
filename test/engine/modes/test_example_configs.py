"""The example configurations of the parallel modes, on real models and real frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ResultStatus
from ros_vision_pipe.frames import iter_frames, sample_image

CONFIG = Path(__file__).resolve().parents[3] / "config"


def test_parallel_sync_person_face_fusion_assigns_the_astronauts_face_to_her_person_box() -> None:
    with Pipeline.from_config(CONFIG / "parallel_sync_person_face.lua") as pipeline:
        result = pipeline.run(sample_image("astronaut"))
    assert [o.status for o in result.outcomes.values()] == [ResultStatus.OK, ResultStatus.OK]
    people = result.fused["people"]
    assert len(people) == 1 and result.fused["unassigned_faces"] == []
    (face,) = people[0]["faces"]
    assert face["score"] > 0.8
    assert face["box"]["x1"] == pytest.approx(181, abs=10) and face["box"]["y1"] == pytest.approx(58, abs=10)


def test_parallel_async_person_pose_scene_runs_pose_every_5th_and_scene_every_30th_frame() -> None:
    frames = [f.image for f in iter_frames("sample:bikes", limit=132)][100:]  # the cyclist is in view
    with Pipeline.from_config(CONFIG / "parallel_async_person_pose_scene.lua", lossless=True) as pipeline:
        results = [pipeline.run(image, encoding="bgr8") for image in frames]
    for frame, result in enumerate(results):
        pose, scene = result.outcomes["pose"], result.outcomes["scene"]
        assert result.outcomes["person"].status is ResultStatus.OK
        assert pose.computed_on == frame - frame % 5 and scene.computed_on == frame - frame % 30
        assert (scene.status is ResultStatus.OK) == (frame % 30 == 0)
        assert result.fused["pose_age"] == frame % 5 and result.fused["scene_age"] == frame % 30
        assert result.fused["scene"] == "sfw"
    posed = [r for r in results if r.outcomes["pose"].status is ResultStatus.OK]
    assert len(posed) >= 5, "pose ran on the person boxes of the previous frame"
    assert all(len(r.fused["poses"]) >= 1 and len(r.fused["poses"][0]["keypoints"]) == 33 for r in posed)
