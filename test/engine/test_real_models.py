"""The example pipelines on real models and real frames: outputs checked against known answers."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest
from support import CONFIG_DIR

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ResultStatus
from ros_vision_pipe.frames import Frame, iter_frames, sample_image


def inside(point: dict[str, float], box: dict[str, float], margin: float) -> bool:
    return (box["x1"] - margin <= point["x"] <= box["x2"] + margin
            and box["y1"] - margin <= point["y"] <= box["y2"] + margin)


@pytest.fixture(scope="module")
def bikes() -> list[Frame]:
    return list(iter_frames("sample:bikes", limit=106))


@pytest.fixture(scope="module")
def person_pose() -> Iterator[Pipeline]:
    with Pipeline.from_config(CONFIG_DIR / "person_pose.lua") as pipeline:
        yield pipeline


def test_person_pose_finds_the_cyclist_and_puts_every_keypoint_inside_the_person_box(
    person_pose: Pipeline, bikes: list[Frame]
) -> None:
    frame = bikes[105]
    result = person_pose.run(frame.image, encoding=frame.encoding, source="bikes")
    people = result.results["person"]["detections"]
    assert len(people) == 1
    person = people[0]
    assert person["label"] == "person" and person["score"] > 0.9
    assert 300 < person["box"]["x1"] < 360 and 460 < person["box"]["x2"] < 520
    pose = result.results["pose"]["detections"][0]
    assert pose["score"] > 0.9
    assert len(pose["keypoints"]) == 33
    assert all(inside(kp, person["box"], margin=10) for kp in pose["keypoints"])
    nose, left_ankle = pose["keypoints"][0], pose["keypoints"][27]
    assert nose["y"] < left_ankle["y"]


def test_person_pose_skips_pose_on_a_frame_without_a_person(person_pose: Pipeline, bikes: list[Frame]) -> None:
    frame = bikes[0]
    result = person_pose.run(frame.image, encoding=frame.encoding, source="bikes0")
    assert result.results["person"] == {"detections": []}
    assert result.outcomes["pose"].status is ResultStatus.SKIPPED
    assert "pose" not in result.results


def test_face_detector_finds_the_astronaut_face_with_five_landmarks() -> None:
    with Pipeline.from_config(CONFIG_DIR / "face_detector.lua") as pipeline:
        faces = pipeline.run(sample_image("astronaut")).results["face"]["detections"]
        nothing = pipeline.run(sample_image("coffee")).results["face"]["detections"]
    assert len(faces) == 1
    box = faces[0]["box"]
    assert faces[0]["score"] > 0.85
    assert abs(box["x1"] - 181) < 8 and abs(box["y1"] - 58) < 8
    assert abs(box["x2"] - 269) < 8 and abs(box["y2"] - 177) < 8
    assert len(faces[0]["keypoints"]) == 5
    assert all(inside(kp, box, margin=0) for kp in faces[0]["keypoints"])
    assert nothing == []


def test_face_mesh_runs_on_the_detected_face_and_lands_on_it() -> None:
    with Pipeline.from_config(CONFIG_DIR / "face_landmarks.lua") as pipeline:
        result = pipeline.run(sample_image("astronaut"))
    face = result.results["face"]["detections"][0]
    mesh = result.results["mesh"]["detections"][0]
    assert mesh["score"] > 0.9 and len(mesh["keypoints"]) == 468
    assert np.mean([inside(kp, face["box"], margin=15) for kp in mesh["keypoints"]]) > 0.95


@pytest.mark.parametrize(
    ("rotation", "expected"),
    [(None, 0), (cv2.ROTATE_90_CLOCKWISE, 90), (cv2.ROTATE_180, 180), (cv2.ROTATE_90_COUNTERCLOCKWISE, 270)],
)
def test_orientation_classifier_answers_the_rotation_applied_to_the_page(
    rotation: int | None, expected: int
) -> None:
    page = sample_image("page")
    image = page if rotation is None else np.ascontiguousarray(cv2.rotate(page, rotation))
    with Pipeline.from_config(CONFIG_DIR / "orientation.lua") as pipeline:
        result = pipeline.run(image).results["orientation"]
    assert result["angle"] == expected
    assert result["classifications"][0]["score"] > 0.8


def test_ocr_chain_reads_the_text_of_the_page() -> None:
    with Pipeline.from_config(CONFIG_DIR / "ocr.lua") as pipeline:
        result = pipeline.run(sample_image("page"))
    texts = [line["text"] for line in result.results["rec"]["lines"]]
    assert "Let us first determine markers of the coins and the" in texts
    assert "histogram of grey values:" in texts
    assert len(result.results["text"]["detections"]) == len(texts) >= 6
    assert all(angle == 0 for angle in result.results["angle"]["angles"][:4])
