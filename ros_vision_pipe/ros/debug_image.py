"""The annotated debug image ``<ns>/debug_image``: what the pipeline saw, drawn on the input frame.

Boxes, labels and scores of every detection (OCR text is the label of its line), keypoints,
skeleton lines where the configuration names them, and each model's best classifications, every
model in its own colour (``PALETTE``, configuration order). The message is a ``sensor_msgs/Image``
(bgr8) with the input image's header.

Cost control: nothing is drawn, copied or converted unless the topic has a subscriber, and then at
most ``debug_image_rate`` times a second (``DebugImage.drawn`` counts the frames drawn; tests and
``bench/bench_node.py`` check it stays 0 while nobody listens).

Skeletons come from the configuration's optional ``debug_image`` table::

    debug_image = { skeleton = { pose = { {12, 14}, {14, 16}, ... } } }  -- 1-based keypoint indices
"""

from __future__ import annotations

import array
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.engine.lua.convert import from_lua
from ros_vision_pipe.engine.lua.convert import lua as _lua
from ros_vision_pipe.engine.records import ResultStatus
from ros_vision_pipe.messages.result_mapping import STATUS_CODES
from ros_vision_pipe.ros.debug_overlay import LuaOverlay

lua_type = _lua.lua_type

#: One BGR colour per model, in configuration order (then repeating).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 200, 255), (255, 120, 0), (60, 220, 60), (200, 60, 255), (0, 80, 255), (255, 255, 0), (180, 180, 180))
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SHOWN = (STATUS_CODES[ResultStatus.OK], STATUS_CODES[ResultStatus.REUSED])
_CONVERSIONS = {"rgb8": cv2.COLOR_RGB2BGR, "mono8": cv2.COLOR_GRAY2BGR, "rgba8": cv2.COLOR_RGBA2BGR,
                "bgra8": cv2.COLOR_BGRA2BGR}


def _debug_table(config: LoadedConfig) -> Any:
    table = config.script.main_result
    if isinstance(table, tuple):
        table = table[0] if table else None
    if lua_type(table) != "table":
        return None
    raw = table["debug_image"]
    return raw if lua_type(raw) == "table" else None


def skeletons_of(config: LoadedConfig) -> dict[str, list[tuple[int, int]]]:
    """Model name -> skeleton lines (0-based keypoint index pairs) from the config's ``debug_image`` table."""
    raw = _debug_table(config)
    skeletons: dict[str, list[tuple[int, int]]] = {}
    value = from_lua(raw["skeleton"]) if raw is not None and raw["skeleton"] is not None else None
    if isinstance(value, Mapping):
        for model, pairs in value.items():
            skeletons[str(model)] = [(int(a) - 1, int(b) - 1) for a, b in pairs]
    return skeletons


def overlay_of(config: LoadedConfig) -> LuaOverlay | None:
    """The config's ``debug_image.draw`` function as a ``LuaOverlay``, or None."""
    raw = _debug_table(config)
    function = raw["draw"] if raw is not None else None
    return LuaOverlay(config, function) if lua_type(function) == "function" else None


def to_bgr8(image: np.ndarray, encoding: str) -> np.ndarray:
    """A bgr8 copy of a decoded input image (16-bit and float images scaled to 0-255)."""
    if image.dtype != np.uint8:
        scaled = image.astype(np.float32)
        low, high = float(np.nanmin(scaled)), float(np.nanmax(scaled))
        image = np.nan_to_num((scaled - low) * (255.0 / max(high - low, 1e-6))).astype(np.uint8)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    conversion = _CONVERSIONS.get(encoding)
    if conversion is not None:
        return cv2.cvtColor(image, conversion)
    return np.ascontiguousarray(image[:, :, :3]).copy()


def label_at(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    (width, height), base = cv2.getTextSize(text, _FONT, 0.45, 1)
    y = max(y, height + base)
    cv2.rectangle(canvas, (x, y - height - base), (x + width, y), colour, cv2.FILLED)
    cv2.putText(canvas, text, (x, y - base), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)


def draw_results(canvas: np.ndarray, messages: Iterable[Any],
                 skeletons: Mapping[str, Sequence[tuple[int, int]]] | None = None) -> np.ndarray:
    """Draw ``ModelResult`` messages (OK or REUSED) onto ``canvas`` (bgr8, modified in place).

    Returns:
        ``canvas``.
    """
    skeletons = skeletons or {}
    text_rows = 0
    for index, message in enumerate(messages):
        colour = PALETTE[index % len(PALETTE)]
        if message.status not in _SHOWN:
            continue
        for detection in message.detections:
            x1, y1 = int(round(detection.x_min)), int(round(detection.y_min))
            x2, y2 = int(round(detection.x_max)), int(round(detection.y_max))
            points = [(kp.x, kp.y) for kp in detection.keypoints]
            cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1 if points else 2)  # thin under a skeleton
            for a, b in skeletons.get(message.model, ()):
                if 0 <= a < len(points) and 0 <= b < len(points):
                    cv2.line(canvas, (int(points[a][0]), int(points[a][1])),
                             (int(points[b][0]), int(points[b][1])), colour, 2, cv2.LINE_AA)
            for x, y in points:
                if np.isfinite(x) and np.isfinite(y):
                    cv2.circle(canvas, (int(x), int(y)), 3, colour, cv2.FILLED)
            score = "" if not np.isfinite(detection.score) else f" {detection.score:.2f}"
            # the first model's label sits on the box's top edge, the next models' ones below it
            label_at(canvas, f"{message.model}: {detection.label or detection.class_id}{score}", x1,
                   y1 + 16 * index, colour)
        for classification in list(message.classifications)[:2]:
            text_rows += 1
            label_at(canvas, f"{message.model}: {classification.label or classification.class_id} "
                           f"{classification.score:.2f}", 4, 4 + 18 * text_rows, colour)
    return canvas


class DebugImage:
    """Publishes ``<ns>/debug_image``, drawing only while subscribed and at most ``rate`` times a second.

    Args:
        node: The node that owns the publisher.
        topic: The topic (``<ns>/debug_image``).
        rate: Most messages per second (> 0).
        qos: QoS of the publisher.
        publisher_factory: ``node.create_publisher`` or a lifecycle node's ``create_lifecycle_publisher``.
    """

    def __init__(self, node: Node, topic: str, rate: float, qos: QoSProfile, publisher_factory: Any = None) -> None:
        """Create the publisher; nothing is drawn yet."""
        factory = publisher_factory or node.create_publisher
        self.publisher = factory(Image, topic, qos)
        self.period = 1.0 / rate
        self.skeletons: dict[str, list[tuple[int, int]]] = {}
        self.overlay: LuaOverlay | None = None
        self.overlay_error: str | None = None
        self.drawn = 0
        self._next = 0.0
        self._lock = threading.Lock()

    def due(self) -> bool:
        """True when a subscriber listens and the rate allows a frame now (reserves that slot)."""
        if self.publisher.get_subscription_count() == 0:
            return False
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                return False
            self._next = now + self.period
            return True

    def configure(self, config: LoadedConfig) -> None:
        """Take the skeletons and the ``draw`` overlay of a (new) configuration."""
        self.skeletons = skeletons_of(config)
        self.overlay = overlay_of(config)

    def publish(self, image: np.ndarray, encoding: str, header: Any, messages: Iterable[Any],
                result: Any = None) -> None:
        """Draw ``messages`` (and the Lua overlay on ``result``) on a bgr8 copy of ``image``; publish it."""
        canvas = draw_results(to_bgr8(image, encoding), messages, self.skeletons)
        if self.overlay is not None and result is not None:
            try:
                self.overlay.draw(canvas, result.frame_id, result.source, result.results)
                self.overlay_error = None
            except EngineError as error:  # the standard drawing still goes out; the node logs this
                self.overlay_error = str(error)
        self.drawn += 1
        message = Image(header=header, height=canvas.shape[0], width=canvas.shape[1], encoding="bgr8",
                        is_bigendian=0, step=canvas.shape[1] * 3)
        data = array.array("B")
        data.frombytes(canvas.tobytes())
        message.data = data
        self.publisher.publish(message)


__all__ = ["PALETTE", "DebugImage", "draw_results", "label_at", "overlay_of", "skeletons_of", "to_bgr8"]
