"""Single mode vs raw ONNX Runtime on the same model with the same processing written in numpy.

Prints a table: median latency per frame of (a) the pipeline (config/scripts/ssd_person.lua's
preprocess/postprocess: built-in steps since issue 14's fourth round, Lua functions before; context,
checks, result conversion) and (b) a hand-written numpy + onnxruntime loop doing the
same work, and the ratio (goal <= 1.05). Runs are interleaved frame by frame so both see the
same machine load.

    python bench/bench_single.py [--frames 150] [--config config/person_pose.lua]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.frames import iter_frames

REPO = Path(__file__).resolve().parents[1]


def raw_person_detector(session: ort.InferenceSession, image_bgr: np.ndarray) -> list[dict[str, object]]:
    """What config/scripts/ssd_person.lua does, in numpy."""
    height, width = image_bgr.shape[:2]
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    tensor = cv2.resize(rgb, (300, 300), interpolation=cv2.INTER_LINEAR)[np.newaxis]
    boxes, scores, classes = session.run(
        ["detection_boxes:0", "detection_scores:0", "detection_classes:0"], {"image_tensor:0": tensor})
    keep = np.flatnonzero(scores[0] > 0.5)
    kept = boxes[0][keep][:, [1, 0, 3, 2]] * np.array([width, height, width, height], np.float32)
    return [
        {"box": {"x1": float(b[0]), "y1": float(b[1]), "x2": float(b[2]), "y2": float(b[3])},
         "score": float(s), "class_id": int(c), "label": "person"}
        for b, s, c in zip(kept, scores[0][keep], classes[0][keep], strict=False)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    args = parser.parse_args()

    frames = [f.image for f in iter_frames("sample:bikes", limit=args.frames)]
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    raw = ort.InferenceSession(str(REPO / "models/ssdlite_person.onnx"), options, providers=["CPUExecutionProvider"])
    single_config = REPO / "bench" / "configs" / "single_person.lua"
    pipe_ms, raw_ms = [], []
    with Pipeline.from_config(single_config) as pipeline:
        for image in frames[:10]:  # warm-up
            pipeline.run(image, encoding="bgr8")
            raw_person_detector(raw, image)
        for image in frames:
            start = time.perf_counter()
            result = pipeline.run(image, encoding="bgr8")
            pipe_ms.append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            expected = raw_person_detector(raw, image)
            raw_ms.append((time.perf_counter() - start) * 1e3)
            got = result.results["person"]["detections"]
            assert len(got) == len(expected), "pipeline and raw loop disagree"
    p, r = statistics.median(pipe_ms), statistics.median(raw_ms)
    print(f"single mode vs raw onnxruntime, SSDLite person detector, {len(frames)} frames of bikes.mp4 (640x272)")
    print(f"{'path':<28} {'median ms':>10} {'p95 ms':>8}")
    print(f"{'pipeline (ssd_person.lua)':<28} {p:>10.2f} {np.percentile(pipe_ms, 95):>8.2f}")
    print(f"{'raw numpy + onnxruntime':<28} {r:>10.2f} {np.percentile(raw_ms, 95):>8.2f}")
    print(f"{'ratio pipeline / raw':<28} {p / r:>10.3f}   (goal <= 1.05)")


if __name__ == "__main__":
    main()
