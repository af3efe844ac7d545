"""Compare two result bags: per-model agreement of two model versions, two modes, two machines.

A result bag is what offline replay writes, or what ``ros2 bag record`` took from the live
node: ``FusedResult`` messages (all models of a frame in one message) or, when no fused topic
was recorded, the ``ModelResult`` topics. Frames are paired by input source and header stamp
(the n-th occurrence of a stamp pairs with the n-th, so bags that loop still pair up), never
by frame index, which differs between lossless and real-time runs.

For each model: frames present in both runs, status agreement, detection counts and their
differences, detections matched one-to-one by IoU (same class when both have one), recall
(matched / detections of A), precision (matched / detections of B), mean IoU and keypoint
distance of the matches, top-1 classification agreement, and the frames where the two runs
agree completely (same count, every detection matched).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ros_vision_pipe.engine.vision.boxes import pairwise_iou as box_iou
from ros_vision_pipe.messages.result_mapping import FUSED_RESULT, MODEL_RESULT, status_name
from ros_vision_pipe.replay.errors import BagOpenError, ResultBagError

#: Frame key: (source, header stamp ns, occurrence of that stamp on that source).
FrameKey = tuple[str, int, int]


@dataclass(frozen=True)
class ModelView:
    """One model's result on one frame, reduced to what is compared.

    Attributes:
        status: ``ok``, ``skipped``, ``error`` or ``reused``.
        boxes: N x 4 float (x_min, y_min, x_max, y_max), original-image pixels.
        scores: N scores.
        class_ids: N class ids (-1 when none).
        keypoints: Per detection, K x 2 keypoint coordinates.
        top_class: Label (or id) of the first classification, None when none.
    """

    status: str
    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    keypoints: tuple[np.ndarray, ...] = ()
    top_class: str | None = None


@dataclass(frozen=True)
class ResultRun:
    """The frames of one result bag.

    Attributes:
        path: The bag.
        topics: Topics read.
        frames: Frame key -> model name -> view.
        metadata: The bag's ``ros_vision_pipe.*`` custom data (config, mode...), if any.
    """

    path: str
    topics: tuple[str, ...]
    frames: dict[FrameKey, dict[str, ModelView]]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """Models seen, in first-seen order."""
        names: dict[str, None] = {}
        for views in self.frames.values():
            names.update(dict.fromkeys(views))
        return list(names)


@dataclass(frozen=True)
class ModelComparison:
    """Agreement of one model between runs A and B.

    Attributes:
        model: Model name.
        frames: Frames where both runs have the model's result.
        status_equal: Of those, frames with the same status.
        detections_a: Detections of A on those frames.
        detections_b: Detections of B on those frames.
        count_equal: Frames with as many detections in A as in B.
        count_diff_mean: Mean of |count A - count B| per frame.
        count_diff_max: Largest |count A - count B|.
        matched: Detections paired one-to-one with IoU >= the threshold.
        recall: ``matched / detections_a`` (1.0 when both have none).
        precision: ``matched / detections_b`` (1.0 when both have none).
        iou_mean: Mean IoU of the matched pairs.
        keypoint_dist_mean_px: Mean distance between corresponding keypoints of matched pairs.
        classification_frames: Frames where both runs have a classification.
        classification_equal: Of those, frames with the same top-1 class.
        frames_agree: Frames with equal status, equal count and every detection matched.
    """

    model: str
    frames: int = 0
    status_equal: int = 0
    detections_a: int = 0
    detections_b: int = 0
    count_equal: int = 0
    count_diff_mean: float = 0.0
    count_diff_max: int = 0
    matched: int = 0
    recall: float = 1.0
    precision: float = 1.0
    iou_mean: float = float("nan")
    keypoint_dist_mean_px: float = float("nan")
    classification_frames: int = 0
    classification_equal: int = 0
    frames_agree: int = 0

    @property
    def agreement(self) -> float:
        """Share of common frames on which the two runs agree completely."""
        return self.frames_agree / self.frames if self.frames else 1.0


@dataclass(frozen=True)
class Comparison:
    """Runs A and B compared.

    Attributes:
        a: Bag of run A.
        b: Bag of run B.
        iou_threshold: IoU from which two detections match.
        frames_a: Frames of A.
        frames_b: Frames of B.
        frames_common: Frames in both.
        models: Per-model agreement (models of A, then those only in B).
        only_a: Models only in A.
        only_b: Models only in B.
        metadata_a: Run A's ``ros_vision_pipe.*`` custom data (config, mode, replay mode).
        metadata_b: The same for run B.
    """

    a: str
    b: str
    iou_threshold: float
    frames_a: int
    frames_b: int
    frames_common: int
    models: tuple[ModelComparison, ...]
    only_a: tuple[str, ...] = ()
    only_b: tuple[str, ...] = ()
    metadata_a: dict[str, str] = field(default_factory=dict)
    metadata_b: dict[str, str] = field(default_factory=dict)

    def model(self, name: str) -> ModelComparison:
        """The comparison of model ``name``."""
        for row in self.models:
            if row.model == name:
                return row
        raise KeyError(name)

    @property
    def identical(self) -> bool:
        """Same frames, same models, and every model agreeing on every frame."""
        return (self.frames_a == self.frames_b == self.frames_common and not self.only_a and not self.only_b
                and all(row.frames_agree == row.frames for row in self.models))


def _view(msg: Any) -> ModelView:
    detections = list(msg.detections)
    boxes = np.array([[d.x_min, d.y_min, d.x_max, d.y_max] for d in detections], dtype=np.float64).reshape(-1, 4)
    top = None
    if len(msg.classifications):
        first = msg.classifications[0]
        top = first.label or str(first.class_id)
    return ModelView(
        status=status_name(msg.status),
        boxes=boxes,
        scores=np.array([d.score for d in detections], dtype=np.float64),
        class_ids=np.array([d.class_id for d in detections], dtype=np.int64),
        keypoints=tuple(np.array([[k.x, k.y] for k in d.keypoints], dtype=np.float64).reshape(-1, 2)
                        for d in detections),
        top_class=top,
    )


def load_results(path: Path | str, topics: list[str] | None = None) -> ResultRun:
    """Read a result bag: its ``FusedResult`` topics, else its ``ModelResult`` topics.

    Args:
        path: A rosbag2 folder or an ``.mcap``/``.db3`` file.
        topics: Read only these topics (either type).

    Raises:
        BagOpenError: The bag cannot be opened.
        ResultBagError: It holds no result message (or a requested topic is missing).
    """
    from rosbags.highlevel import AnyReader

    from ros_vision_pipe.messages.typestore import package_typestore

    bag = Path(path)
    if not bag.exists():
        raise BagOpenError(f"no such bag: {str(bag)!r}")
    typestore = package_typestore()
    try:
        reader = AnyReader([bag])
        reader.open()
    except Exception as error:
        raise BagOpenError(f"{bag}: cannot open bag: {error}") from error
    try:
        by_type: dict[str, list[Any]] = defaultdict(list)
        for connection in reader.connections:
            by_type[connection.msgtype].append(connection)
        if topics:
            known = {c.topic: c for c in reader.connections if c.msgtype in (FUSED_RESULT, MODEL_RESULT)}
            missing = [t for t in topics if t not in known]
            if missing:
                raise ResultBagError(f"{bag}: no result topic {missing!r}; result topics: {sorted(known)!r}")
            connections = [known[t] for t in topics]
        else:
            connections = by_type[FUSED_RESULT] or by_type[MODEL_RESULT]
        if not connections:
            raise ResultBagError(
                f"{bag}: no {FUSED_RESULT} or {MODEL_RESULT} topic; topics: {sorted(reader.topics)!r}")
        frames: dict[FrameKey, dict[str, ModelView]] = {}
        seen: Counter[tuple[str, str, int]] = Counter()
        for connection, _, data in reader.messages(connections=connections):
            try:
                msg: Any = typestore.deserialize_cdr(data, connection.msgtype)
            except Exception as error:
                raise ResultBagError(f"{bag}: a {connection.msgtype} message on {connection.topic!r} does not "
                                     f"deserialize with this package's definition: {error}") from error
            stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
            results = list(msg.results) if connection.msgtype == FUSED_RESULT else [msg]
            for result in results:
                counter_key = (msg.source, result.model, stamp)
                occurrence = seen[counter_key]
                seen[counter_key] += 1
                frames.setdefault((msg.source, stamp, occurrence), {})[result.model] = _view(result)
        metadata: dict[str, str] = {}
        for one in reader.readers:  # rosbag2: DirectoryReader metadata's custom_data
            custom = getattr(getattr(getattr(one, "storage", None), "metadata", None), "custom", None)
            if isinstance(custom, dict):
                metadata.update({k: str(v) for k, v in custom.items() if k.startswith("ros_vision_pipe.")})
    finally:
        reader.close()
    return ResultRun(str(bag), tuple(c.topic for c in connections), frames, metadata)


def match_detections(a: ModelView, b: ModelView, threshold: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching, highest IoU first: (index in a, index in b, IoU) with IoU >= ``threshold``.

    Detections whose class ids are both set (>= 0) and differ never match.
    """
    iou = box_iou(a.boxes, b.boxes)
    if iou.size == 0:
        return []
    classes_differ = (a.class_ids[:, None] >= 0) & (b.class_ids[None, :] >= 0) & (
        a.class_ids[:, None] != b.class_ids[None, :])
    iou[classes_differ] = 0.0
    pairs = []
    order = np.dstack(np.unravel_index(np.argsort(-iou, axis=None, kind="stable"), iou.shape))[0]
    used_a: set[int] = set()
    used_b: set[int] = set()
    for i, j in order:
        value = float(iou[i, j])
        if value < threshold or value <= 0.0:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(int(i))
        used_b.add(int(j))
        pairs.append((int(i), int(j), value))
    return pairs


def _compare_model(name: str, pairs: list[tuple[ModelView, ModelView]], threshold: float) -> ModelComparison:
    status_equal = count_equal = matched = agree = 0
    det_a = det_b = 0
    diffs: list[int] = []
    ious: list[float] = []
    distances: list[float] = []
    cls_frames = cls_equal = 0
    for a, b in pairs:
        status_equal += a.status == b.status
        n_a, n_b = len(a.boxes), len(b.boxes)
        det_a += n_a
        det_b += n_b
        diffs.append(abs(n_a - n_b))
        count_equal += n_a == n_b
        matches = match_detections(a, b, threshold)
        matched += len(matches)
        for i, j, value in matches:
            ious.append(value)
            ka, kb = a.keypoints[i], b.keypoints[j]
            if len(ka) and len(ka) == len(kb):
                distances.extend(np.hypot(*(ka - kb).T).tolist())
        if a.top_class is not None and b.top_class is not None:
            cls_frames += 1
            cls_equal += a.top_class == b.top_class
        same_class = a.top_class == b.top_class
        agree += a.status == b.status and n_a == n_b and len(matches) == n_a and same_class
    return ModelComparison(
        model=name, frames=len(pairs), status_equal=status_equal, detections_a=det_a, detections_b=det_b,
        count_equal=count_equal, count_diff_mean=float(np.mean(diffs)) if diffs else 0.0,
        count_diff_max=max(diffs, default=0), matched=matched,
        recall=matched / det_a if det_a else (1.0 if not det_b else 0.0),
        precision=matched / det_b if det_b else (1.0 if not det_a else 0.0),
        iou_mean=float(np.mean(ious)) if ious else float("nan"),
        keypoint_dist_mean_px=float(np.mean(distances)) if distances else float("nan"),
        classification_frames=cls_frames, classification_equal=cls_equal, frames_agree=agree,
    )


def compare_runs(a: ResultRun, b: ResultRun, iou_threshold: float = 0.5) -> Comparison:
    """Compare two result runs model by model (see the module docstring)."""
    common = [key for key in a.frames if key in b.frames]
    models_a, models_b = a.models, b.models
    rows = []
    for name in models_a + [m for m in models_b if m not in models_a]:
        if name not in models_a or name not in models_b:
            continue
        pairs = [(a.frames[k][name], b.frames[k][name]) for k in common
                 if name in a.frames[k] and name in b.frames[k]]
        rows.append(_compare_model(name, pairs, iou_threshold))
    return Comparison(
        a=a.path, b=b.path, iou_threshold=iou_threshold, frames_a=len(a.frames), frames_b=len(b.frames),
        frames_common=len(common), models=tuple(rows),
        only_a=tuple(m for m in models_a if m not in models_b), only_b=tuple(m for m in models_b if m not in models_a),
        metadata_a=dict(a.metadata), metadata_b=dict(b.metadata),
    )


def compare_bags(a: Path | str, b: Path | str, iou_threshold: float = 0.5,
                 topics: list[str] | None = None) -> Comparison:
    """``compare_runs`` of two result bags (see ``load_results``)."""
    return compare_runs(load_results(a, topics), load_results(b, topics), iou_threshold)


def _describe_run(metadata: dict[str, str]) -> str:
    parts = [f"{key.removeprefix('ros_vision_pipe.')} {value}" for key, value in sorted(metadata.items())
             if key != "ros_vision_pipe.input"]
    return f" ({', '.join(parts)})" if parts else ""


def differences(comparison: Comparison) -> list[str]:
    """Why two runs are not identical, one short reason each (empty when identical)."""
    reasons = []
    c = comparison
    if c.frames_a != c.frames_b:
        reasons.append(f"frame counts differ: {c.frames_a} in A, {c.frames_b} in B")
    if c.frames_common < max(c.frames_a, c.frames_b):
        reasons.append(f"{c.frames_a - c.frames_common} frame(s) of A and {c.frames_b - c.frames_common} of B "
                       f"have no partner (same source and header stamp) in the other run")
    if c.only_a:
        reasons.append(f"models only in A: {', '.join(c.only_a)}")
    if c.only_b:
        reasons.append(f"models only in B: {', '.join(c.only_b)}")
    for row in c.models:
        if row.frames_agree == row.frames:
            continue
        what = []
        if row.status_equal < row.frames:
            what.append(f"status differs on {row.frames - row.status_equal}")
        if row.count_equal < row.frames:
            what.append(f"detection count on {row.frames - row.count_equal}")
        unmatched = max(row.detections_a, row.detections_b) - row.matched
        if unmatched:
            what.append(f"{unmatched} detection(s) unmatched at IoU >= {c.iou_threshold:g}")
        if row.classification_equal < row.classification_frames:
            what.append(f"top-1 class on {row.classification_frames - row.classification_equal}")
        reasons.append(f"model {row.model!r} disagrees on {row.frames - row.frames_agree} of {row.frames} common "
                       f"frames" + (f" ({', '.join(what)})" if what else ""))
    return reasons


def _number(value: float, spec: str) -> str:
    """``value`` formatted, or ``-`` where there was nothing to measure (NaN)."""
    return format(value, spec) if np.isfinite(value) else "-"


def format_comparison(comparison: Comparison) -> str:
    """The per-model agreement table (100 columns; ``-`` where nothing was measured), then
    ``identical`` or ``different: <why>``."""
    lines = [
        f"A: {comparison.a}{_describe_run(comparison.metadata_a)}",
        f"B: {comparison.b}{_describe_run(comparison.metadata_b)}",
        f"frames: {comparison.frames_a} in A, {comparison.frames_b} in B, {comparison.frames_common} in both "
        f"(paired by source and header stamp); detections match at IoU >= {comparison.iou_threshold:g}",
        f"{'model':<12} {'frames':>6} {'agree':>6} {'status=':>7} {'dets A':>6} {'dets B':>6} {'count=':>6} "
        f"{'matched':>7} {'recall':>6} {'precis':>6} {'IoU':>5} {'kp px':>6} {'top1=':>6}",
    ]
    for row in comparison.models:
        top1 = f"{row.classification_equal}/{row.classification_frames}" if row.classification_frames else "-"
        name = row.model if len(row.model) <= 12 else row.model[:9] + "..."
        lines.append(
            f"{name:<12} {row.frames:>6} {row.agreement:>6.0%} {row.status_equal:>7} {row.detections_a:>6} "
            f"{row.detections_b:>6} {row.count_equal:>6} {row.matched:>7} {row.recall:>6.3f} {row.precision:>6.3f} "
            f"{_number(row.iou_mean, '.3f'):>5} {_number(row.keypoint_dist_mean_px, '.2f'):>6} {top1:>6}")
    reasons = differences(comparison)
    if reasons:
        lines.append("different:")
        lines.extend(f"  - {reason}" for reason in reasons)
    else:
        lines.append("identical")
    return "\n".join(lines)


def comparison_dict(comparison: Comparison) -> dict[str, Any]:
    """The comparison as JSON-ready data (NaN as null, with each model's ``agreement``)."""
    data = asdict(comparison)
    for row, model in zip(data["models"], comparison.models, strict=True):
        row["agreement"] = model.agreement
        for key, value in list(row.items()):
            if isinstance(value, float) and not np.isfinite(value):
                row[key] = None
    data["identical"] = comparison.identical
    data["differences"] = differences(comparison)
    return data


__all__ = [
    "Comparison",
    "ModelComparison",
    "ModelView",
    "ResultRun",
    "box_iou",
    "compare_bags",
    "compare_runs",
    "comparison_dict",
    "differences",
    "format_comparison",
    "load_results",
    "match_detections",
]
