"""Records exchanged with Lua scripts: geometric transforms and the standard detection.

Lua only sees plain tables, so each record converts to and from the table form
(``to_lua``/``from_lua``); inside Python the ops use the typed records.

Coordinates are continuous pixel coordinates: x right, y down, the origin at the
top-left corner of the top-left pixel (pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ros_vision_pipe.engine.vision._args import as_array, as_float, as_int, describe, fail

_LETTERBOX_KEYS = ("scale", "pad_x", "pad_y", "src_w", "src_h")
_CROP_KEYS = ("x0", "y0", "sx", "sy")


@dataclass(frozen=True)
class LetterboxInfo:
    """How ``letterbox`` placed an image: ``x_letterboxed = x_original * scale + pad_x``.

    Attributes:
        scale: Resize factor applied to the original image (same for x and y).
        pad_x: Left padding of the letterboxed image, pixels.
        pad_y: Top padding of the letterboxed image, pixels.
        src_w: Original image width, pixels.
        src_h: Original image height, pixels.
    """

    scale: float
    pad_x: float
    pad_y: float
    src_w: int
    src_h: int

    def to_lua(self) -> dict[str, float | int]:
        """Return the table Lua scripts see: ``{scale, pad_x, pad_y, src_w, src_h}``."""
        return {
            "scale": self.scale,
            "pad_x": self.pad_x,
            "pad_y": self.pad_y,
            "src_w": self.src_w,
            "src_h": self.src_h,
        }

    def to_original(
        self, x: NDArray[np.floating[Any]], y: NDArray[np.floating[Any]]
    ) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]:
        """Map letterboxed coordinates back to original-image pixels."""
        return (x - self.pad_x) / self.scale, (y - self.pad_y) / self.scale


@dataclass(frozen=True)
class CropTransform:
    """How a crop (or resize) relates to the original: ``x_original = x0 + x_crop * sx``.

    A plain resize from ``W x H`` to ``w x h`` is ``CropTransform(0, 0, W / w, H / h)``.

    Attributes:
        x0: Original x of the crop's left edge (may be negative: padded area).
        y0: Original y of the crop's top edge (may be negative).
        sx: Original pixels per crop pixel, horizontally.
        sy: Original pixels per crop pixel, vertically.
    """

    x0: float
    y0: float
    sx: float
    sy: float

    def to_lua(self) -> dict[str, float]:
        """Return the table Lua scripts see: ``{x0, y0, sx, sy}``."""
        return {"x0": self.x0, "y0": self.y0, "sx": self.sx, "sy": self.sy}

    def to_original(
        self, x: NDArray[np.floating[Any]], y: NDArray[np.floating[Any]]
    ) -> tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]:
        """Map crop coordinates back to original-image pixels."""
        return self.x0 + x * self.sx, self.y0 + y * self.sy


def transform_from_lua(value: Any, op: str) -> LetterboxInfo | CropTransform:
    """Parse a letterbox info or a crop transform table, telling them apart by their keys.

    Args:
        value: ``{scale, pad_x, pad_y, src_w, src_h}`` or ``{x0, y0, sx, sy}``.
        op: Lua name of the calling op.

    Raises:
        VisionOpError: neither form, a missing key, or a zero/negative scale.
    """
    if not isinstance(value, Mapping):
        raise fail(op, f"info must be a letterbox info or a crop transform table, got {describe(value)}")
    if "scale" in value:
        missing = [key for key in _LETTERBOX_KEYS if key not in value]
        if missing:
            raise fail(op, f"letterbox info is missing {missing[0]!r}, got {describe(value)}")
        scale = as_float(value["scale"], op, "info.scale")
        if scale <= 0:
            raise fail(op, f"info.scale must be > 0, got {scale!r}")
        return LetterboxInfo(
            scale=scale,
            pad_x=as_float(value["pad_x"], op, "info.pad_x"),
            pad_y=as_float(value["pad_y"], op, "info.pad_y"),
            src_w=as_int(value["src_w"], op, "info.src_w", minimum=1),
            src_h=as_int(value["src_h"], op, "info.src_h", minimum=1),
        )
    if "sx" in value or "x0" in value:
        missing = [key for key in _CROP_KEYS if key not in value]
        if missing:
            raise fail(op, f"crop transform is missing {missing[0]!r}, got {describe(value)}")
        sx = as_float(value["sx"], op, "info.sx")
        sy = as_float(value["sy"], op, "info.sy")
        if sx <= 0 or sy <= 0:
            raise fail(op, f"info.sx and info.sy must be > 0, got {sx!r}, {sy!r}")
        return CropTransform(
            x0=as_float(value["x0"], op, "info.x0"), y0=as_float(value["y0"], op, "info.y0"), sx=sx, sy=sy
        )
    raise fail(
        op,
        "info must have the keys {scale, pad_x, pad_y, src_w, src_h} (letterbox) "
        f"or {{x0, y0, sx, sy}} (crop), got {describe(value)}",
    )


@dataclass(frozen=True)
class Keypoint:
    """One keypoint of a detection, original-image pixels.

    Attributes:
        x: Horizontal position.
        y: Vertical position.
        z: Model-specific depth; NaN when the model gives none.
        score: Confidence / visibility; NaN when the model gives none.
    """

    x: float
    y: float
    z: float = math.nan
    score: float = math.nan

    def to_lua(self) -> dict[str, float]:
        """Return ``{x, y, z, score}``."""
        return {"x": self.x, "y": self.y, "z": self.z, "score": self.score}


@dataclass(frozen=True)
class Detection:
    """One detection in the project's standard detection format.

    Lua form (what ``vp.detections`` returns and what the ROS mapping expects)::

        { box = {x1 = .., y1 = .., x2 = .., y2 = ..}, score = s, class_id = c, label = "person",
          keypoints = { {x = .., y = .., z = .., score = ..}, ... } }  -- keypoints only when given

    Attributes:
        x1: Left edge, original-image pixels.
        y1: Top edge.
        x2: Right edge.
        y2: Bottom edge.
        score: Confidence; NaN when the model gives none.
        class_id: Class in the model's label space; -1 when the model has no classes.
        label: Class name; "" when unknown.
        keypoints: Keypoints, or ``None`` when the model gives none (key absent in Lua).
    """

    x1: float
    y1: float
    x2: float
    y2: float
    score: float = math.nan
    class_id: int = -1
    label: str = ""
    keypoints: tuple[Keypoint, ...] | None = None

    def to_lua(self) -> dict[str, Any]:
        """Return the standard detection table."""
        table: dict[str, Any] = {
            "box": {"x1": self.x1, "y1": self.y1, "x2": self.x2, "y2": self.y2},
            "score": self.score,
            "class_id": self.class_id,
            "label": self.label,
        }
        if self.keypoints is not None:
            table["keypoints"] = [keypoint.to_lua() for keypoint in self.keypoints]
        return table

    @classmethod
    def from_lua(cls, value: Any, op: str = "detection", *, finite: bool = True) -> Detection:
        """Parse a standard detection table: the one parser of a detection of the package.

        Used by ``vp`` ops (a detection or a list of them as an argument) and by the mapping of
        results to messages (``messages.result_mapping``, with ``finite=False``). Missing
        ``score``/``class_id``/``label`` take their defaults (NaN, -1, ""); the box may be
        ``{x1=, y1=, x2=, y2=}`` or ``{x1, y1, x2, y2}``; a keypoint given as an array
        ``{x, y [, z [, score]]}`` is accepted too.

        Args:
            value: The detection (a dict from Lua).
            op: Names the caller in errors.
            finite: Box corners must be finite (``False``: NaN and infinities pass through).

        Raises:
            VisionOpError: not a table, no ``box`` with x1, y1, x2, y2, or bad field types.
        """
        if not isinstance(value, Mapping) or "box" not in value:
            raise fail(
                op, f"a detection must be a table with a box = {{x1, y1, x2, y2}}, got {describe(value)}"
            )
        x1, y1, x2, y2 = box_corners(value["box"], op, "detection box", finite=finite)
        label = value.get("label", "")
        if not isinstance(label, str):
            raise fail(op, f"detection label must be a string, got {describe(label)}")
        keypoints: tuple[Keypoint, ...] | None = None
        if "keypoints" in value:
            raw = value["keypoints"]
            if not isinstance(raw, (list, tuple)):
                raise fail(op, f"detection keypoints must be an array table, got {describe(raw)}")
            keypoints = tuple(_keypoint_from_lua(item, op) for item in raw)
        score = value.get("score")
        return cls(
            x1=x1, y1=y1, x2=x2, y2=y2,
            score=math.nan if score is None else _float_or_nan(score, op, "score"),
            class_id=as_int(value.get("class_id", -1), op, "class_id"),
            label=label,
            keypoints=keypoints,
        )


def box_corners(value: Any, op: str, name: str = "box", *,
                finite: bool = True) -> tuple[float, float, float, float]:
    """``x1, y1, x2, y2`` of ``{x1=, y1=, x2=, y2=}``, a detection (its box) or ``{x1, y1, x2, y2}``.

    Raises:
        VisionOpError: a key is missing, not four numbers, or (``finite``) NaN / infinite.
    """
    number = as_float if finite else _number_or_nan
    if isinstance(value, Mapping) and isinstance(value.get("box"), Mapping):
        value = value["box"]
    if isinstance(value, Mapping):
        missing = [key for key in ("x1", "y1", "x2", "y2") if key not in value]
        if missing:
            raise fail(op, f"{name} is missing {missing[0]!r}, got {describe(value)}")
        return (number(value["x1"], op, f"{name}.x1"), number(value["y1"], op, f"{name}.y1"),
                number(value["x2"], op, f"{name}.x2"), number(value["y2"], op, f"{name}.y2"))
    array = as_array(value, op, name, dtype=np.float64)
    if array.shape != (4,):
        raise fail(op, f"{name} must be {{x1, y1, x2, y2}}, got {describe(value)}")
    if finite and not np.all(np.isfinite(array)):
        raise fail(op, f"{name} must be finite, got {describe(value)}")
    return float(array[0]), float(array[1]), float(array[2]), float(array[3])


def _number_or_nan(value: Any, op: str, name: str) -> float:
    """A number; NaN and infinities pass."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise fail(op, f"{name} must be a number, got {describe(value)}")
    return float(value)


def _float_or_nan(value: Any, op: str, name: str) -> float:
    """Like ``as_float`` but NaN is allowed (it means "not given")."""
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return float(value)
    return as_float(value, op, name)


def _keypoint_from_lua(value: Any, op: str) -> Keypoint:
    """Parse ``{x=, y=, z=, score=}`` or ``{x, y [, z [, score]]}``."""
    if isinstance(value, Mapping):
        if "x" not in value or "y" not in value:
            raise fail(op, f"keypoint needs x and y, got {describe(value)}")
        return Keypoint(
            x=as_float(value["x"], op, "keypoint.x"),
            y=as_float(value["y"], op, "keypoint.y"),
            z=_float_or_nan(value.get("z", math.nan), op, "keypoint.z"),
            score=_float_or_nan(value.get("score", math.nan), op, "keypoint.score"),
        )
    if isinstance(value, (list, tuple, np.ndarray)) and 2 <= len(value) <= 4:
        numbers = [_float_or_nan(item, op, "keypoint") for item in value] + [math.nan] * (4 - len(value))
        return Keypoint(*numbers)
    raise fail(op, f"keypoint must be {{x=, y=, z=, score=}} or {{x, y, z, score}}, got {describe(value)}")


class DetectionList(list):  # type: ignore[type-arg]
    """Detections kept typed between models: a list of standard detection dicts.

    ``vp.detections`` returns one. It crosses into Lua as a read-only list view whose rows
    become Lua tables only when a script indexes them (``#dets``, ``dets[i]``, ``ipairs``),
    and back into Python as the same detections, without tables in between
    (``engine/lua/convert.py``). Python code sees a plain list of dicts.
    """


def detection_tables(boxes: list[list[float]], scores: list[float], class_ids: list[int], labels: list[str],
                     keypoints: list[list[list[float]]] | None = None) -> DetectionList:
    """The tables of ``Detection.to_lua``, built from columns without a record per row.

    ``vp.detections`` builds its result with it: a pose result of 10 people has 330 keypoints,
    and building them as records first cost as much as the rest of the script.

    Args:
        boxes: N rows ``x1, y1, x2, y2``.
        scores: N scores (NaN: none).
        class_ids: N class ids (-1: none).
        labels: N labels ("" : none).
        keypoints: None, or N lists of K rows ``x, y, z, score`` (NaN where not given).
    """
    result = DetectionList()
    for n, (x1, y1, x2, y2) in enumerate(boxes):
        table: dict[str, Any] = {
            "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
            "score": scores[n],
            "class_id": class_ids[n],
            "label": labels[n],
        }
        if keypoints is not None:
            table["keypoints"] = [{"x": x, "y": y, "z": z, "score": s} for x, y, z, s in keypoints[n]]
        result.append(table)
    return result
