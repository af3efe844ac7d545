"""A model's detections -> ``vision_msgs/Detection2DArray`` fields, without ROS.

The optional interoperability output of the node (parameter ``vision_msgs.detections``): trackers,
Isaac ROS, depthai-ros and many other consumers read ``vision_msgs``. One ``Detection2DArray`` per
model and frame, built from the same ``ModelResult`` fields the node publishes
(``result_mapping.model_result_fields``):

=====================================  ==================================================
``ModelResult``                        ``vision_msgs``
=====================================  ==================================================
``header`` (the input image's)         ``Detection2DArray.header`` and each ``Detection2D.header``
``x_min, y_min, x_max, y_max``         ``bbox.center.position`` (box centre), ``bbox.size_x/size_y``
``class_id``                           ``results[0].hypothesis.class_id`` as a string (``"1"``);
                                       ``label`` when the model has no classes (``class_id`` -1)
``score``                              ``results[0].hypothesis.score`` (NaN when the model gives none)
=====================================  ==================================================

``bbox.center.theta`` is 0, ``results[0].pose`` default (no 3-D pose), ``id`` "" (no tracking).
Labels and keypoints stay in ``ModelResult``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ros_vision_pipe.messages.result_mapping import HEADER, fill

DETECTION2D_ARRAY = "vision_msgs/msg/Detection2DArray"
DETECTION2D = "vision_msgs/msg/Detection2D"
OBJECT_HYPOTHESIS_WITH_POSE = "vision_msgs/msg/ObjectHypothesisWithPose"
OBJECT_HYPOTHESIS = "vision_msgs/msg/ObjectHypothesis"
BOUNDING_BOX2D = "vision_msgs/msg/BoundingBox2D"
POSE2D = "vision_msgs/msg/Pose2D"
POINT2D = "vision_msgs/msg/Point2D"

#: Nested message fields of the vision_msgs types (as ``result_mapping.MESSAGE_FIELDS``).
VISION_MESSAGE_FIELDS: dict[str, dict[str, str]] = {
    DETECTION2D_ARRAY: {"header": HEADER, "detections": DETECTION2D},
    DETECTION2D: {"header": HEADER, "results": OBJECT_HYPOTHESIS_WITH_POSE, "bbox": BOUNDING_BOX2D},
    OBJECT_HYPOTHESIS_WITH_POSE: {"hypothesis": OBJECT_HYPOTHESIS},
    BOUNDING_BOX2D: {"center": POSE2D},
    POSE2D: {"position": POINT2D},
    HEADER: {"stamp": "builtin_interfaces/msg/Time"},
}


def hypothesis_class_id(detection: Mapping[str, Any]) -> str:
    """``ObjectHypothesis.class_id`` of a ``Detection`` field dict: the class index, else the label."""
    class_id = int(detection["class_id"])
    return str(class_id) if class_id >= 0 else str(detection.get("label", ""))


def detection2d_array_fields(model_fields: Mapping[str, Any]) -> dict[str, Any]:
    """``Detection2DArray`` fields of one model's ``ModelResult`` fields (its ``header`` is shared)."""
    header = model_fields["header"]
    detections = []
    for detection in model_fields.get("detections", []):
        width = float(detection["x_max"]) - float(detection["x_min"])
        height = float(detection["y_max"]) - float(detection["y_min"])
        detections.append({
            "header": header,
            "results": [{"hypothesis": {"class_id": hypothesis_class_id(detection),
                                        "score": float(detection["score"])}}],
            "bbox": {"center": {"position": {"x": float(detection["x_min"]) + width / 2,
                                             "y": float(detection["y_min"]) + height / 2},
                                "theta": 0.0},
                     "size_x": width, "size_y": height},
            "id": "",
        })
    return {"header": header, "detections": detections}


def fill_vision(factory: Any, type_name: str, fields: Mapping[str, Any]) -> Any:
    """Build a vision_msgs message bottom-up with a ``result_mapping.MessageFactory``."""
    return fill(factory, type_name, fields, VISION_MESSAGE_FIELDS)


__all__ = ["DETECTION2D", "DETECTION2D_ARRAY", "VISION_MESSAGE_FIELDS", "detection2d_array_fields",
           "fill_vision", "hypothesis_class_id"]
