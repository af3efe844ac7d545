"""ModelResult detection fields -> vision_msgs/Detection2DArray fields, without ROS."""

from __future__ import annotations

import math
from types import SimpleNamespace

from ros_vision_pipe.result_mapping import payload_fields
from ros_vision_pipe.vision_msgs_mapping import DETECTION2D_ARRAY, detection2d_array_fields, fill_vision

HEADER = {"stamp": {"sec": 105, "nanosec": 123_456_789}, "frame_id": "cam"}


def test_boxes_become_centre_and_size_with_the_class_index_as_a_string() -> None:
    detections = payload_fields({"detections": [
        {"box": [329, 28, 487, 209], "score": 0.99, "class_id": 1, "label": "person"},
        {"box": {"x1": 10, "y1": 20, "x2": 30, "y2": 60}, "label": "sign"},
    ]})["detections"]
    fields = detection2d_array_fields({"header": HEADER, "detections": detections})
    first, second = fields["detections"]
    assert fields["header"] is HEADER and first["header"] is HEADER
    assert first["bbox"]["center"]["position"] == {"x": 408.0, "y": 118.5}
    assert (first["bbox"]["size_x"], first["bbox"]["size_y"], first["bbox"]["center"]["theta"]) == (158.0, 181.0, 0.0)
    assert first["results"][0]["hypothesis"]["class_id"] == "1"
    assert math.isclose(first["results"][0]["hypothesis"]["score"], 0.99, rel_tol=1e-6)
    assert second["results"][0]["hypothesis"]["class_id"] == "sign"  # no class index: the label
    assert math.isnan(second["results"][0]["hypothesis"]["score"])


def test_fill_vision_builds_nested_messages_bottom_up() -> None:
    fields = detection2d_array_fields({"header": HEADER, "detections": payload_fields(
        {"detections": [{"box": [0, 0, 4, 2], "score": 0.5, "class_id": 3}]})["detections"]})
    built = fill_vision(lambda name, values: SimpleNamespace(type=name, **values), DETECTION2D_ARRAY, fields)
    assert built.type == DETECTION2D_ARRAY and built.header.stamp.sec == 105
    (detection,) = built.detections
    assert detection.type == "vision_msgs/msg/Detection2D"
    assert detection.bbox.center.position.type == "vision_msgs/msg/Point2D" and detection.bbox.center.position.x == 2.0
    assert detection.results[0].hypothesis.class_id == "3"
