"""Helpers of the replay tests (importable as ``replay_support``; this folder is on sys.path)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PERSON_POSE = REPO / "config" / "person_pose.lua"
SSD_SCRIPT = REPO / "config" / "scripts" / "ssd_person.lua"
SSD_MODEL = REPO / "models" / "ssdlite_person.onnx"
RAW_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
#: The clip used by the tests: CLIP_FRAMES frames of the cyclist clip from frame CLIP_FIRST on.
CLIP_FIRST = 100
CLIP_FRAMES = 30


def read_messages(bag: Path, topic: str | None = None) -> Iterator[tuple[str, int, Any]]:
    """(topic, log time, message) of a bag, deserialized with the package's typestore."""
    from rosbags.highlevel import AnyReader

    from ros_vision_pipe.replay.typestore import package_typestore

    typestore = package_typestore()
    with AnyReader([bag]) as reader:
        connections = [c for c in reader.connections if topic is None or c.topic == topic]
        for connection, log_time, data in reader.messages(connections=connections):
            yield connection.topic, log_time, typestore.deserialize_cdr(data, connection.msgtype)


def stamp_ns(header: Any) -> int:
    """A header's stamp in nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def without_latency(result: Any) -> tuple[Any, ...]:
    """A ModelResult's content with ``latency_ms`` left out (it is a wall-clock time)."""
    detections = tuple(
        (d.x_min, d.y_min, d.x_max, d.y_max, _nan(d.score), d.class_id, d.label,
         tuple((k.x, k.y, _nan(k.z), _nan(k.score)) for k in d.keypoints))
        for d in result.detections)
    return (stamp_ns(result.header), result.header.frame_id, result.frame_index, result.source, result.model,
            result.status, result.error, result.computed_on_frame, result.age_frames, detections,
            tuple((c.class_id, c.label, c.score) for c in result.classifications), result.extra_json)


def _nan(value: float) -> float | str:
    return "nan" if math.isnan(value) else value
