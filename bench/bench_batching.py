"""Batched vs per-crop inference of a per-crop model in serial mode.

A per-crop model after a detector gets all crops of a frame at once. The engine runs them in
one batched inference when the model accepts a batch dimension, and one by one when its batch
is fixed at 1. This script runs the OCR chain (text detection -> angle -> recognition) on a
frame with >= 10 text lines twice: as is (recogniser batched), and with the recogniser's
session declaring a batch fixed at 1 (the engine then splits the batch), and prints the
recogniser's latency per frame for both.

    python bench/bench_batching.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.session import InferenceSession, TensorSpec
from ros_vision_pipe.frames import sample_image

REPO = Path(__file__).resolve().parents[1]
PER_CROP_MODELS = ("angle", "rec")  # the per-line models of config/ocr.lua


class FixedBatchSession:
    """A real session that declares its batch dimension fixed at 1."""

    def __init__(self, inner: InferenceSession) -> None:
        self.inner = inner
        self.inputs = tuple(replace(s, shape=(1, *s.shape[1:])) for s in inner.inputs)
        self.outputs: tuple[TensorSpec, ...] = inner.outputs
        self.metadata = inner.metadata

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.inner.run(feeds)


def factory(fixed: bool):  # type: ignore[no-untyped-def]
    def build(spec: ModelSpec, threads: int, spinning: bool) -> InferenceSession:
        session = onnx_session_factory(spec, threads, spinning)
        return FixedBatchSession(session) if fixed and spec.name in PER_CROP_MODELS else session
    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    page = sample_image("page")
    frame = np.ascontiguousarray(np.concatenate([page, page], axis=0))  # 14 text lines
    rows = []
    texts: dict[bool, list[str]] = {}
    for fixed in (False, True):
        with Pipeline.from_config(REPO / "config" / "ocr.lua", session_factory=factory(fixed)) as pipeline:
            pipeline.run(frame)
            samples: dict[str, list[float]] = {name: [] for name in PER_CROP_MODELS}
            for _ in range(args.repeats):
                result = pipeline.run(frame)
                for name in PER_CROP_MODELS:
                    samples[name].append(result.outcomes[name].latency_ms)
            texts[fixed] = [line["text"] for line in result.results["rec"]["lines"]]
        for name in PER_CROP_MODELS:
            rows.append((name, "one by one" if fixed else "batched", statistics.median(samples[name]),
                         float(np.percentile(samples[name], 95))))
    assert texts[False] == texts[True], "batched and per-crop recognition disagree"
    print(f"OCR chain on one frame with {len(texts[False])} text lines ({frame.shape[1]}x{frame.shape[0]}), "
          f"{args.repeats} frames; per-line models batched vs one crop per inference")
    print(f"{'model':<8} {'run':<12} {'median ms':>10} {'p95 ms':>8}")
    for name, how, median, p95 in rows:
        print(f"{name:<8} {how:<12} {median:>10.1f} {p95:>8.1f}")
    for name in PER_CROP_MODELS:
        batched = next(r[2] for r in rows if r[0] == name and r[1] == "batched")
        single = next(r[2] for r in rows if r[0] == name and r[1] == "one by one")
        print(f"{name:<8} {'speed-up':<12} {single / batched:>9.2f}x")


if __name__ == "__main__":
    main()
