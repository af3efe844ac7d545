"""Comparing two result bags: frames paired by stamp, detections matched by IoU, per-model agreement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome, ResultStatus
from ros_vision_pipe.replay.bag_reader import BagFrame, BagImage, ImageKind, Stamp
from ros_vision_pipe.replay.compare import (
    ModelView,
    compare_bags,
    comparison_dict,
    format_comparison,
    match_detections,
)
from ros_vision_pipe.replay.errors import ResultBagError
from ros_vision_pipe.replay.result_bag import ResultBagWriter
from ros_vision_pipe.replay.typestore import package_typestore

Box = tuple[float, float, float, float]


def write_results(path: Path, frames: Sequence[Sequence[Box]], stamps: Sequence[int] | None = None) -> Path:
    """A result bag of model 'det' with the given boxes per frame (class 1, score 0.9)."""
    writer = ResultBagWriter(path, package_typestore(), ["det"])
    for index, boxes in enumerate(frames):
        stamp = Stamp.from_ns((stamps or range(len(frames)))[index] * 40_000_000)
        source = BagImage("/cam", ImageKind.RAW, index, index, stamp.nanoseconds, b"", False)
        frame = BagFrame(source, stamp, "cam", np.zeros((2, 2, 3), np.uint8), "bgr8", None)
        value = {"detections": [{"box": list(box), "score": 0.9, "class_id": 1} for box in boxes]}
        outcome = ModelOutcome("det", ResultStatus.OK, value, index)
        writer.write(frame, FrameResult(index, "/cam", stamp.seconds, Mode.SINGLE, MappingProxyType({"det": outcome})))
    writer.close()
    return path


def view(*boxes: Box, classes: Sequence[int] | None = None) -> ModelView:
    array = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    ids = np.array(classes if classes is not None else [1] * len(boxes), dtype=np.int64)
    return ModelView("ok", array, np.ones(len(boxes)), ids)


def test_detections_match_one_to_one_by_iou_and_never_across_classes() -> None:
    a = view((0, 0, 10, 10), (20, 20, 30, 30), (50, 50, 60, 60), classes=[1, 1, 2])
    b = view((1, 0, 11, 10), (0, 0, 10, 10), (50, 50, 60, 60), classes=[1, 1, 3])
    pairs = match_detections(a, b, 0.5)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]  # (0,0,10,10) once; the class-2/3 pair never
    assert pairs[0][2] == pytest.approx(1.0)


def test_compare_counts_missing_and_shifted_detections_per_model(tmp_path: Path) -> None:
    a = write_results(tmp_path / "a", [[(0, 0, 100, 100)], [(0, 0, 100, 100), (200, 0, 300, 100)], []])
    b = write_results(tmp_path / "b", [[(10, 0, 110, 100)], [(0, 0, 100, 100)], [(0, 0, 5, 5)]])
    comparison = compare_bags(a, b, iou_threshold=0.5)
    row = comparison.model("det")
    assert (comparison.frames_common, row.frames, row.detections_a, row.detections_b) == (3, 3, 3, 3)
    assert (row.count_equal, row.count_diff_max, row.matched) == (1, 1, 2)
    assert row.frames_agree == 1 and row.recall == pytest.approx(2 / 3) and row.precision == pytest.approx(2 / 3)
    assert row.iou_mean == pytest.approx((90 / 110 + 1.0) / 2)
    assert not comparison.identical
    table = format_comparison(comparison)
    assert table.splitlines()[4].split()[:2] == ["det", "3"] and "nan" not in table
    assert table.endswith("different:\n  - model 'det' disagrees on 2 of 3 common frames (detection count on 2, "
                          "1 detection(s) unmatched at IoU >= 0.5)")
    assert comparison_dict(comparison)["models"][0]["agreement"] == pytest.approx(1 / 3)


def test_frames_pair_by_stamp_so_a_run_with_drops_compares_on_common_frames(tmp_path: Path) -> None:
    boxes = [[(0, 0, 10, 10)]] * 4
    a = write_results(tmp_path / "a", boxes)
    b = write_results(tmp_path / "b", [boxes[0], boxes[2]], stamps=[0, 2])
    comparison = compare_bags(a, b)
    assert (comparison.frames_a, comparison.frames_b, comparison.frames_common) == (4, 2, 2)
    assert comparison.model("det").agreement == 1.0 and not comparison.identical


def test_a_bag_without_results_is_refused_naming_its_topics(make_bag: Callable[..., Path], tmp_path: Path) -> None:
    bag = make_bag(frames=1, compressed=False)
    results = write_results(tmp_path / "r", [[]])
    with pytest.raises(ResultBagError, match=r"no ros_vision_pipe/msg/FusedResult or ros_vision_pipe/msg/ModelResult "
                       r"topic; topics: \['/camera/image_raw'\]"):
        compare_bags(bag, results)
