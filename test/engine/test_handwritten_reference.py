"""The hand-written node of bench/bench_vs_handwritten.py computes what our Lua scripts compute.

The bench compares our node with a hand-written rclpy node on the assumption that both give the
same detections (it checks them over ROS too, and fails when they differ); this test keeps the
hand-written cv2/numpy pre/post-processing in step with ssd_person.lua and scene_nsfw.lua without
ROS, on frames of the cyclist clip, through the same message mapping the node uses.
"""

from __future__ import annotations

from types import ModuleType

import cv2
import numpy as np
import onnxruntime
import pytest
from support import load_bench

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.frames import iter_frames
from ros_vision_pipe.messages.result_mapping import payload_fields


def bench_module() -> ModuleType:
    return load_bench("bench_vs_handwritten")


def node_module() -> ModuleType:
    return load_bench("handwritten_node")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    clip = [f.image for f in iter_frames("sample:bikes", 200)]
    return [cv2.resize(clip[i], (640, 480)) for i in (60, 120, 190)]


def test_the_hand_written_node_finds_the_same_people_and_scene_as_the_lua_scripts(frames: list[np.ndarray]) -> None:
    bench, node = bench_module(), node_module()
    person = onnxruntime.InferenceSession(str(node.PERSON_MODEL))
    scene = onnxruntime.InferenceSession(str(node.scene_model_path()))
    names = [o.name for o in person.get_outputs()]
    found = 0
    with Pipeline.from_config(bench.TWO_MODEL_CONFIG) as pipeline:
        for image in frames:
            result = pipeline.run(image, encoding="bgr8")
            ours = payload_fields(result.outcomes["person"].value)["detections"]
            outputs = dict(zip(names, person.run(None, {person.get_inputs()[0].name: node.person_preprocess(image)}),
                               strict=True))
            hand = node.person_postprocess(outputs, 640, 480)
            assert len(hand) == len(ours)
            for (box, score, class_id), mine in zip(hand, ours, strict=True):
                assert box == pytest.approx([mine["x_min"], mine["y_min"], mine["x_max"], mine["y_max"]], abs=1.0)
                assert (score, class_id) == (pytest.approx(mine["score"], abs=1e-3), mine["class_id"])
            found += len(hand)
            probs = scene.run(None, {scene.get_inputs()[0].name: node.scene_preprocess(image)})[0][0]
            classification = payload_fields(result.outcomes["scene"].value)["classifications"][0]
            assert classification["class_id"] == int(np.argmax(probs))
            assert classification["score"] == pytest.approx(float(probs.max()), abs=1e-3)
    assert found > 0, "the cyclist is no longer found: the comparison would compare empty lists"


def test_two_results_that_differ_by_more_than_a_pixel_are_told_apart() -> None:
    bench = bench_module()
    detection = ((10.0, 20.0, 110.0, 220.0), 0.9, 1, "person")
    moved = ((10.0, 20.0, 111.5, 220.0), 0.9, 1, "person")
    assert bench.differences((0, "", (detection,), ()), (0, "", (detection,), ())) == ""
    assert "detection" in bench.differences((0, "", (detection,), ()), (0, "", (moved,), ()))
    assert "1 vs 0 detections" in bench.differences((0, "", (detection,), ()), (0, "", (), ()))
