"""A postprocess (or fusion) result -> the payload fields of a ``ModelResult``, without ROS.

``payload_fields`` is step 1 of ``result_mapping`` for a result's value: ``detections``,
``classifications``, ``features`` and ``masks`` fill the typed fields, every other key goes to
``extra_json`` (``to_json``); a typed key that does not fit raises ``ResultMappingError`` naming the
key, the index and the value. The table of what maps where is in docs/ros.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ros_vision_pipe.engine.vision._args import VisionOpError
from ros_vision_pipe.engine.vision.formats import Detection, DetectionList

_DETECTION_KEYS = {"box", "score", "class_id", "label", "keypoints"}


class ResultMappingError(ValueError):
    """A model's result does not fit the message it is mapped to."""


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


__all__ = ["ResultMappingError", "payload_fields", "to_json"]
