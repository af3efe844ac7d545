"""Engine results -> ROS message fields, without ROS: one mapping for the node and for bag replay.

Two steps, so that any message library can be filled (docs/ros.md has the mapping with examples):

1. ``model_result_fields`` / ``fused_result_fields`` turn a ``ModelOutcome`` / ``FrameResult`` into
   nested plain dicts keyed by the field names of ``ModelResult`` / ``FusedResult`` (msg/*.msg);
   numeric sequences are numpy arrays. A postprocess result's ``detections``, ``classifications``,
   ``features`` and ``masks`` fill the typed fields, every other key goes to ``extra_json``; a result
   that does not fit becomes ``STATUS_ERROR`` with the reason (never an exception).
2. ``fill(factory, type_name, fields)`` builds the message bottom-up (``MESSAGE_FIELDS`` says which
   fields are messages); values that are already messages, e.g. the input ``Header``, are kept.
   ``RCLPY_FACTORY`` builds rclpy messages, ``RosbagsFactory(typestore)`` rosbags dataclasses.

Example::

    messages = frame_messages(result, RosbagsFactory(typestore), header=header, models=["person", "pose"])
    writer.write(connection, timestamp, typestore.serialize_cdr(messages.fused, FUSED_RESULT))
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome, ResultStatus
from ros_vision_pipe.engine.vision._args import VisionOpError
from ros_vision_pipe.engine.vision.formats import Detection, DetectionList
from ros_vision_pipe.messages.factories import RCLPY_FACTORY, MessageFactory, RosbagsFactory, rclpy_factory

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
_DETECTION_KEYS = {"box", "score", "class_id", "label", "keypoints"}


class ResultMappingError(ValueError):
    """A model's result does not fit the message it is mapped to."""


# -- payloads -----------------------------------------------------------------------------


def _show(value: Any) -> str:
    """``repr`` for error messages, cut to 80 characters (results may hold large tensors)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: Any, what: str, *, nan_ok: bool = True) -> float:
    if isinstance(value, (bool, str)) or not isinstance(value, (int, float, np.number)):
        raise ResultMappingError(f"{what} must be a number, got {_show(value)}")
    number = float(value)
    if math.isnan(number) and not nan_ok:
        raise ResultMappingError(f"{what} must not be NaN")
    return number


def _looks_like_detection(value: Any) -> bool:
    return isinstance(value, Mapping) and "box" in value


def _detection(value: Any, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (Detection fields, keys that fit no field); parsed by ``Detection.from_lua``."""
    if not _looks_like_detection(value):
        raise ResultMappingError(f"{what} must be a table with box = {{x1, y1, x2, y2}}, got {_show(value)}")
    try:
        detection = Detection.from_lua(value, what, finite=False)
    except VisionOpError as error:
        raise ResultMappingError(str(error)) from None
    fields = {
        "x_min": detection.x1, "y_min": detection.y1, "x_max": detection.x2, "y_max": detection.y2,
        "score": detection.score,
        "class_id": detection.class_id,
        "label": detection.label,
        "keypoints": [{"x": k.x, "y": k.y, "z": k.z, "score": k.score} for k in detection.keypoints or ()],
    }
    return fields, {k: v for k, v in value.items() if k not in _DETECTION_KEYS}


def _listed_detection(value: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Detection`` fields of a row of a ``DetectionList``: made by ``detection_tables`` from
    checked columns (floats, an int, a string, keypoint rows), so nothing to parse or leave over."""
    box = value["box"]
    return {
        "x_min": box["x1"], "y_min": box["y1"], "x_max": box["x2"], "y_max": box["y2"],
        "score": value["score"], "class_id": value["class_id"], "label": value["label"],
        "keypoints": list(value.get("keypoints") or ()),
    }


def _classification(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ResultMappingError(f"{what} must be {{class_id=, label=, score=}}, got {_show(value)}")
    label = value.get("label", "")
    if not isinstance(label, str):
        raise ResultMappingError(f"{what}.label must be a string, got {_show(label)}")
    return {
        "class_id": int(_number(value.get("class_id", -1), f"{what}.class_id", nan_ok=False)),
        "label": label,
        "score": _number(value.get("score", math.nan), f"{what}.score"),
    }


def _feature(name: Any, data: Any, shape: Any, what: str) -> dict[str, Any]:
    if not isinstance(name, str):
        raise ResultMappingError(f"{what}.name must be a string, got {name!r}")
    try:
        values = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ResultMappingError(f"{what} ({name!r}) is not numeric: {error}") from error
    dims = values.shape if shape is None else tuple(int(_number(d, f"{what}.shape")) for d in shape)
    if math.prod(dims) != values.size:
        raise ResultMappingError(f"{what} ({name!r}): shape {list(dims)} does not hold {values.size} values")
    return {"name": name, "shape": np.asarray(dims, dtype=np.uint32), "data": np.ascontiguousarray(values).reshape(-1)}


def _features(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):
        return [_feature(str(name), data, None, f"features.{name}") for name, data in value.items()]
    if isinstance(value, (list, tuple)):
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, Mapping) or "name" not in item or "data" not in item:
                raise ResultMappingError(f"features[{i + 1}] must be {{name=, data=}}, got {_show(item)}")
            out.append(_feature(item["name"], item["data"], item.get("shape"), f"features[{i + 1}]"))
        return out
    raise ResultMappingError(f"features must be {{name = tensor}} or a list of {{name=, data=}}, got {_show(value)}")


def _mask(value: Any, header: Any, what: str) -> dict[str, Any]:
    mask = np.asarray(value)
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[:, :, 0]
    if mask.ndim != 2 or mask.size == 0:
        raise ResultMappingError(f"{what} must be a non-empty H x W array, got shape {mask.shape}")
    if mask.dtype == np.bool_ or mask.dtype == np.uint8:
        encoding, mask = "mono8", mask.astype(np.uint8, copy=False)
    elif mask.dtype == np.uint16:
        encoding, mask = "mono16", mask.astype("<u2", copy=False)
    elif np.issubdtype(mask.dtype, np.floating) or np.issubdtype(mask.dtype, np.integer):
        encoding, mask = "32FC1", mask.astype("<f4", copy=False)
    else:
        raise ResultMappingError(f"{what} has unsupported dtype {mask.dtype}")
    height, width = mask.shape
    return {"header": header, "height": height, "width": width, "encoding": encoding, "is_bigendian": 0,
            "step": width * mask.itemsize, "data": np.ascontiguousarray(mask).reshape(-1).view(np.uint8)}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Compact JSON of a result value: tensors as nested lists, NaN/inf as null."""
    return json.dumps(_jsonable(value), separators=(",", ":"), allow_nan=False)


def payload_fields(value: Any, header: Any = None) -> dict[str, Any]:
    """Map a postprocess/fusion result onto the payload fields of ``ModelResult``.

    Args:
        value: The result converted from Lua (dict, list, scalar, ndarray or None).
        header: Header given to mask images (the input image's).

    Returns:
        ``detections``, ``classifications``, ``features``, ``masks`` and ``extra_json``.

    Raises:
        ResultMappingError: A typed key holds something of the wrong shape.
    """
    fields: dict[str, Any] = {
        "detections": [], "classifications": [], "features": [], "masks": [], "extra_json": "",
    }
    if value is None:
        return fields
    if isinstance(value, (list, tuple)) and value and all(_looks_like_detection(v) for v in value):
        value = {"detections": list(value)}
    elif isinstance(value, (list, tuple)) and not value:
        return fields
    elif not isinstance(value, Mapping):
        fields["extra_json"] = to_json({"value": value})
        return fields
    extra: dict[str, Any] = {}
    for key, item in value.items():
        if key == "detections":
            if type(item) is DetectionList:  # vp.detections' own rows, as the script got them
                fields["detections"] = [_listed_detection(d) for d in item]
                continue
            if not isinstance(item, (list, tuple)):
                raise ResultMappingError(f"detections must be a list, got {_show(item)}")
            pairs = [_detection(d, f"detections[{i + 1}]") for i, d in enumerate(item)]
            fields["detections"] = [p[0] for p in pairs]
            if any(p[1] for p in pairs):
                extra["detections_extra"] = [p[1] for p in pairs]
        elif key == "classifications":
            if not isinstance(item, (list, tuple)):
                raise ResultMappingError(f"classifications must be a list, got {_show(item)}")
            fields["classifications"] = [_classification(c, f"classifications[{i + 1}]") for i, c in enumerate(item)]
        elif key == "features":
            fields["features"] = _features(item)
        elif key == "masks":
            masks = [item] if isinstance(item, np.ndarray) else item
            if not isinstance(masks, (list, tuple)):
                raise ResultMappingError(f"masks must be a list of H x W arrays, got {_show(item)}")
            fields["masks"] = [_mask(m, header, f"masks[{i + 1}]") for i, m in enumerate(masks)]
        else:
            extra[str(key)] = item
    if extra:
        fields["extra_json"] = to_json(extra)
    return fields


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
