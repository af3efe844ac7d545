"""Engine results -> ROS message fields, without ROS: one mapping for the node and for bag replay.

Two steps, so that any message library can be filled (docs/ros.md has the mapping with examples):

1. ``model_result_fields`` / ``fused_result_fields`` turn a ``ModelOutcome`` / ``FrameResult`` into
   nested plain dicts keyed by the field names of ``ModelResult`` / ``FusedResult`` (msg/*.msg);
   numeric sequences are numpy arrays. A postprocess result's value becomes the payload fields
   (``payload_fields``, payloads.py: ``detections``, ``classifications``, ``features``, ``masks``,
   every other key in ``extra_json``); a result that does not fit becomes ``STATUS_ERROR`` with the
   reason (never an exception).
2. ``fill(factory, type_name, fields)`` builds the message bottom-up (``MESSAGE_FIELDS`` says which
   fields are messages); values that are already messages, e.g. the input ``Header``, are kept.
   ``RCLPY_FACTORY`` builds rclpy messages, ``RosbagsFactory(typestore)`` rosbags dataclasses.

Example::

    messages = frame_messages(result, RosbagsFactory(typestore), header=header, models=["person", "pose"])
    writer.write(connection, timestamp, typestore.serialize_cdr(messages.fused, FUSED_RESULT))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome, ResultStatus
from ros_vision_pipe.messages.factories import RCLPY_FACTORY, MessageFactory, RosbagsFactory, rclpy_factory
from ros_vision_pipe.messages.payloads import ResultMappingError, payload_fields, to_json

FUSED_RESULT = "ros_vision_pipe/msg/FusedResult"
MODEL_RESULT = "ros_vision_pipe/msg/ModelResult"
DETECTION = "ros_vision_pipe/msg/Detection"
KEYPOINT = "ros_vision_pipe/msg/Keypoint"
CLASSIFICATION = "ros_vision_pipe/msg/Classification"
FEATURE_VECTOR = "ros_vision_pipe/msg/FeatureVector"
IMAGE = "sensor_msgs/msg/Image"
HEADER = "std_msgs/msg/Header"
TIME = "builtin_interfaces/msg/Time"

#: For each message type, its fields holding messages (single or sequence) and their type.
MESSAGE_FIELDS: dict[str, dict[str, str]] = {
    FUSED_RESULT: {"header": HEADER, "results": MODEL_RESULT, "fused": MODEL_RESULT},
    MODEL_RESULT: {
        "header": HEADER,
        "detections": DETECTION,
        "classifications": CLASSIFICATION,
        "features": FEATURE_VECTOR,
        "masks": IMAGE,
    },
    DETECTION: {"keypoints": KEYPOINT},
    IMAGE: {"header": HEADER},
    HEADER: {"stamp": TIME},
}

#: ``ModelResult.status`` codes.
STATUS_CODES: dict[ResultStatus, int] = {
    ResultStatus.OK: 0, ResultStatus.SKIPPED: 1, ResultStatus.ERROR: 2, ResultStatus.REUSED: 3}
#: ``ModelResult.status`` code -> the engine's status (the one reverse map: node, replay, demo).
STATUS_BY_CODE: dict[int, ResultStatus] = {code: status for status, code in STATUS_CODES.items()}
_STATUS_ERROR = STATUS_CODES[ResultStatus.ERROR]


def status_name(code: int) -> str:
    """The name of a ``ModelResult.status`` code (``"ok"``, ``"skipped"``...); an unknown code as digits."""
    status = STATUS_BY_CODE.get(int(code))
    return str(code) if status is None else status.value
# -- results ------------------------------------------------------------------------------


def header_fields(timestamp: float, frame_id: str = "") -> dict[str, Any]:
    """A ``std_msgs/Header`` as fields, for results whose input carried no header."""
    sec = math.floor(timestamp)
    return {"stamp": {"sec": int(sec), "nanosec": int(round((timestamp - sec) * 1e9)) % 1_000_000_000},
            "frame_id": frame_id}


def model_result_fields(
    outcome: ModelOutcome, *, header: Any, frame_index: int, source: str
) -> dict[str, Any]:
    """``ModelResult`` fields of one model's outcome on one frame.

    Args:
        outcome: The model's outcome.
        header: The input image's header (a message, or fields from ``header_fields``).
        frame_index: The frame's pipeline index.
        source: The input topic / source name.
    """
    fields: dict[str, Any] = {
        "header": header,
        "frame_index": int(frame_index),
        "source": source,
        "model": outcome.model,
        "status": STATUS_CODES[outcome.status],
        "error": outcome.error or "",
        "computed_on_frame": int(outcome.computed_on),
        "age_frames": int(outcome.age),
        "latency_ms": float(outcome.latency_ms),
        "skip_reason": "", "config_generation": 0, "config_hash": "",
    }
    try:
        fields.update(payload_fields(outcome.value, header))
    except ResultMappingError as error:
        fields.update(payload_fields(None))
        fields["status"] = _STATUS_ERROR
        fields["error"] = f"result of model {outcome.model!r} cannot be published: {error}"
    return fields


def default_model_result_fields() -> dict[str, Any]:
    """A default-initialised ``ModelResult`` as fields (what ``FusedResult.fused`` holds without fusion).

    Every field has its message default: zero stamp, empty ``frame_id``, ``model`` and ``source``,
    numbers 0, empty sequences. Consumers read ``FusedResult.has_fused`` before ``fused``.
    """
    return {
        "header": header_fields(0.0), "frame_index": 0, "source": "", "model": "", "status": 0, "error": "",
        "computed_on_frame": 0, "age_frames": 0, "latency_ms": 0.0, **payload_fields(None),
        "skip_reason": "", "config_generation": 0, "config_hash": "",
    }


def _missing_outcome(result: FrameResult, model: str) -> ModelOutcome:
    if getattr(result, "dropped", False):  # the frame never reached the model
        return ModelOutcome(model, ResultStatus.SKIPPED, None, result.frame_id, error=result.error)
    if result.error:
        return ModelOutcome(model, ResultStatus.ERROR, None, result.frame_id, error=result.error)
    return ModelOutcome(model, ResultStatus.SKIPPED, None, result.frame_id)


def fused_result_fields(
    result: FrameResult, *, header: Any = None, models: Sequence[str] | None = None
) -> dict[str, Any]:
    """``FusedResult`` fields of a frame (``results`` holds ``ModelResult`` fields).

    Args:
        result: The frame's result.
        header: The input header; defaults to ``result.stamp``, else one made from ``result.timestamp``.
        models: Configured model names, in order: a model without an outcome gets ``STATUS_SKIPPED``
            (with ``result.error`` as ``error`` when the frame was dropped), ``STATUS_ERROR`` with
            ``result.error`` (frame-level failure), or ``STATUS_SKIPPED``. Defaults to the outcomes.
    """
    frame = _FrameFields(result, header, models)
    return frame.fused({name: frame.model(name) for name in frame.names})


class _FrameFields:
    """The message fields of one frame, each model's made when first asked for."""

    def __init__(self, result: FrameResult, header: Any, models: Sequence[str] | None) -> None:
        if header is None:
            header = result.stamp if result.stamp is not None else header_fields(result.timestamp)
        self.result = result
        self.header = header
        self.names = tuple(result.outcomes) if models is None else tuple(models)

    def model(self, name: str) -> dict[str, Any]:
        """``ModelResult`` fields of ``name`` (see ``fused_result_fields`` for a model without an outcome)."""
        result = self.result
        outcome = result.outcomes.get(name) or _missing_outcome(result, name)
        return model_result_fields(outcome, header=self.header, frame_index=result.frame_id, source=result.source)

    def fused(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """``FusedResult`` fields, with ``results`` (model name -> fields or message) in order."""
        result, header = self.result, self.header
        frame, source = result.frame_id, result.source
        if result.has_fused:
            fused_name = "aggregator" if result.mode is Mode.PARALLEL_ASYNC else "fusion"
            fused = model_result_fields(ModelOutcome(fused_name, ResultStatus.OK, result.fused, frame),
                                        header=header, frame_index=frame, source=source)
        else:  # no fusion/aggregator: the field stays default-initialised (empty model, no status claim)
            fused = default_model_result_fields()
        return {
            "header": header,
            "frame_index": int(frame),
            "source": source,
            "mode": result.mode.value,
            "results": [results[name] for name in self.names],
            "has_fused": bool(result.has_fused),
            "fused": fused,
            "config_generation": 0,
            "config_hash": "",
        }


# -- building messages --------------------------------------------------------------------


def fill(factory: MessageFactory, type_name: str, fields: Mapping[str, Any],
         message_fields: Mapping[str, Mapping[str, str]] = MESSAGE_FIELDS) -> Any:
    """Build a message of ``type_name`` from nested fields.

    Dicts (and lists of dicts) in a field that ``message_fields`` (``MESSAGE_FIELDS``; the
    vision_msgs types: ``vision_msgs_mapping.VISION_MESSAGE_FIELDS``) marks as nested are built
    recursively; anything else (numbers, strings, numpy arrays, ready-made messages) is handed
    to ``factory`` unchanged.
    """
    nested = message_fields.get(type_name, {})
    built: dict[str, Any] = {}
    for key, value in fields.items():
        inner = nested.get(key)
        if inner is not None and isinstance(value, Mapping):
            value = fill(factory, inner, value, message_fields)
        elif inner is not None and isinstance(value, list):
            value = [fill(factory, inner, v, message_fields) if isinstance(v, Mapping) else v for v in value]
        built[key] = value
    return factory(type_name, built)


class FrameMessages:
    """The messages published for one frame, each built (fields included) when first asked for.

    A publisher nobody subscribes to needs no message: the node asks only for the ones it sends.

    Attributes:
        names: The models, in configuration order.
    """

    def __init__(self, frame: _FrameFields, factory: MessageFactory) -> None:
        """Messages of ``frame``, built by ``factory`` (``frame_messages``)."""
        self._frame = frame
        self._factory = factory
        self._built: dict[str, Any] = {}
        self._fused: Any = None
        self.names = frame.names

    def model(self, name: str) -> Any:
        """The ``ModelResult`` of ``name`` (the same object on every call)."""
        message = self._built.get(name)
        if message is None:
            if name not in self.names:
                raise KeyError(name)
            message = self._built[name] = fill(self._factory, MODEL_RESULT, self._frame.model(name))
        return message

    @property
    def models(self) -> dict[str, Any]:
        """Model name -> ``ModelResult``, in configuration order."""
        return {name: self.model(name) for name in self.names}

    @property
    def fused(self) -> Any:
        """The ``FusedResult``; its ``results`` are the same objects as ``model()``'s."""
        if self._fused is None:
            self._fused = fill(self._factory, FUSED_RESULT, self._frame.fused(self.models))
        return self._fused


def frame_messages(
    result: FrameResult, factory: MessageFactory, *, header: Any = None, models: Sequence[str] | None = None
) -> FrameMessages:
    """The messages of a frame (arguments as ``fused_result_fields``), each built on demand."""
    return FrameMessages(_FrameFields(result, header, models), factory)


__all__ = [
    "CLASSIFICATION", "DETECTION", "FEATURE_VECTOR", "FUSED_RESULT", "HEADER", "IMAGE", "KEYPOINT",
    "MESSAGE_FIELDS", "MODEL_RESULT", "RCLPY_FACTORY", "STATUS_CODES", "TIME", "FrameMessages", "MessageFactory",
    "ResultMappingError", "RosbagsFactory", "default_model_result_fields", "fill", "frame_messages",
    "fused_result_fields", "header_fields",
    "model_result_fields", "payload_fields", "rclpy_factory", "to_json",
]
