"""OCR (config/ocr.lua) against the reference PP-OCR pipeline of the ``rapidocr`` package.

Both sides run the same three ONNX models from the installed ``rapidocr`` package
(PP-OCRv6 det small, mobile v2.0 angle classifier, PP-OCRv6 rec small) on the same pages:
ours through ``Pipeline.from_config("config/ocr.lua")`` (Lua pre/post-processing), the
reference through rapidocr's own Python API (``rapidocr.RapidOCR``, its default settings).
Prints, per page, each line's text side by side with its character accuracy against the
page's known text, then the time per page and per stage (median of ``--repeat`` runs after
one warm-up), with the ratio ours / reference.

Pages: ``sample:page`` (scikit-image's photo of a book page, ground truth typed from it) and
``synthetic`` (12 lines rendered with OpenCV's Hershey font: a long page, many line crops).

Needs the reference's dependencies: ``pip install --no-deps -r requirements/bench.txt``
(tools/setup_env.sh installs them).

    python bench/bench_ocr.py                 # both pages, 5 timed runs each
    python bench/bench_ocr.py --repeat 10 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ros_vision_pipe.engine.pipeline import Pipeline  # noqa: E402
from ros_vision_pipe.frames import sample_image  # noqa: E402

#: What sample:page says (typed from the image).
PAGE_TRUTH = [
    "Region-based segmentation",
    "Let us first determine markers of the coins and the",
    "background. These markers are pixels that we can label",
    "unambiguously as either object or background. Here,",
    "the markers are found at the two extreme parts of the",
    "histogram of grey values:",
    ">>> markers = np.zeros_like(coins)",
]

SYNTHETIC_TRUTH = [
    "ONNX Runtime runs each model of the pipeline",
    "and a small Lua script prepares its input.",
    "Text detection finds one box per line,",
    "the angle classifier turns upside-down lines,",
    "and the recogniser reads every line crop.",
    "Serial mode: detection -> angle -> recognition.",
    "Frames 0 to 249 of the cyclist clip, 25 fps.",
    "Latency p50 38 ms, p95 67 ms on two cores.",
    "The quick brown fox jumps over the lazy dog.",
    "PACK MY BOX WITH FIVE DOZEN LIQUOR JUGS",
    "1234567890 + - = ( ) [ ] / : ; , .",
    "short line",
]


def synthetic_page() -> np.ndarray:
    """``SYNTHETIC_TRUTH`` rendered black on white, 960 pixels wide, as RGB."""
    image = np.full((40 * len(SYNTHETIC_TRUTH) + 30, 960, 3), 255, np.uint8)
    for i, line in enumerate(SYNTHETIC_TRUTH):
        cv2.putText(image, line, (20, 40 + 40 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2, cv2.LINE_AA)
    return image


def pages() -> dict[str, tuple[np.ndarray, list[str]]]:
    """Name -> (RGB image, true lines)."""
    return {"sample:page": (sample_image("page"), PAGE_TRUTH), "synthetic": (synthetic_page(), SYNTHETIC_TRUTH)}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (characters)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_accuracy(text: str, truth: str) -> float:
    """``1 - edit distance / len(truth)`` (at least 0)."""
    return max(0.0, 1.0 - edit_distance(text, truth) / max(1, len(truth)))


def best_match(truth: str, texts: list[str]) -> str:
    """The recognised line closest to ``truth`` (lines are paired by text, not by order)."""
    return min(texts, key=lambda t: edit_distance(t, truth)) if texts else ""


@dataclass(frozen=True)
class Reading:
    """One side's reading of a page: its lines and times (ms, medians)."""

    texts: list[str]
    total_ms: float
    stages_ms: dict[str, float]


def read_ours(image: np.ndarray, repeat: int, threads: int | None) -> Reading:
    """config/ocr.lua through the engine: lines of the ``rec`` model, per-model latency."""
    config = REPO / "config" / "ocr.lua"
    if threads:  # a copy of the configuration in a temporary folder, threads set per model
        import tempfile

        text = config.read_text(encoding="utf-8").replace(
            'script = "scripts/', f'intra_op_threads = {threads}, script = "{config.parent}/scripts/')
        config = Path(tempfile.mkdtemp(prefix="bench_ocr_")) / "ocr.lua"
        config.write_text(text, encoding="utf-8")
    with Pipeline.from_config(config) as pipe:
        pipe.run(image, encoding="rgb8")  # warm-up
        totals, stages = [], {"det": [], "cls": [], "rec": []}
        result = None
        for _ in range(repeat):
            start = time.perf_counter()
            result = pipe.run(image, encoding="rgb8")
            totals.append((time.perf_counter() - start) * 1e3)
            for stage, model in (("det", "text"), ("cls", "angle"), ("rec", "rec")):
                stages[stage].append(result.outcomes[model].latency_ms)
    assert result is not None
    rec = result.outcomes["rec"].value or {"lines": []}
    return Reading([line["text"] for line in rec["lines"]], statistics.median(totals),
                   {k: statistics.median(v) for k, v in stages.items()})


def read_reference(image: np.ndarray, repeat: int, threads: int | None) -> Reading:
    """rapidocr.RapidOCR (its default settings and models) on the same image (BGR, as it expects)."""
    import logging

    from rapidocr import RapidOCR

    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    params = {"Global.log_level": "warning"}
    if threads:
        params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    engine = RapidOCR(params=params)
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    engine(bgr)  # warm-up
    totals, stages = [], {"det": [], "cls": [], "rec": []}
    output = None
    for _ in range(repeat):
        start = time.perf_counter()
        output = engine(bgr)
        totals.append((time.perf_counter() - start) * 1e3)
        for stage, seconds in zip(("det", "cls", "rec"), output.elapse_list, strict=True):
            stages[stage].append(seconds * 1e3)
    assert output is not None
    return Reading(list(output.txts or ()), statistics.median(totals),
                   {k: statistics.median(v) for k, v in stages.items()})


def crop_widths(image: np.ndarray) -> list[int]:
    """The recogniser's crop width of each detected line (height 48, aspect kept, at most 960)."""
    with Pipeline.from_config(REPO / "config" / "ocr.lua") as pipe:
        quads = np.asarray(pipe.run(image, encoding="rgb8").outcomes["text"].value["quads"], dtype=np.float64)
    widths = []
    for q in quads:
        w = max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[2] - q[3]))
        h = max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]))
        widths.append(int(min(960, np.ceil(48 * w / max(h, 1.0)))))
    return widths


def rec_batching(image: np.ndarray, repeat: int, threads: int | None) -> dict[str, float]:
    """ONNX Runtime time alone (ms, median) of the recogniser on the page's crop sizes, three ways:
    one batch padded to the widest crop (config/ocr.lua), rapidocr's batches of 6 sorted by width
    (each padded to its widest, at least 320), and one crop per call."""
    from importlib.util import find_spec

    import onnxruntime as ort

    spec = find_spec("rapidocr")
    assert spec is not None and spec.submodule_search_locations
    model = Path(list(spec.submodule_search_locations)[0]) / "models" / "PP-OCRv6_rec_small.onnx"
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    widths = sorted(crop_widths(image))
    rng = np.random.default_rng(0)

    def timed(shapes: list[tuple[int, int]]) -> float:
        inputs = [rng.random((n, 3, 48, w), dtype=np.float32) for n, w in shapes]
        for x in inputs:
            session.run(None, {name: x})
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            for x in inputs:
                session.run(None, {name: x})
            runs.append((time.perf_counter() - start) * 1e3)
        return statistics.median(runs)

    batches = [widths[i:i + 6] for i in range(0, len(widths), 6)]
    return {
        f"one batch of {len(widths)}, padded to {max(widths)} px (ours)": timed([(len(widths), max(widths))]),
        "batches of 6 sorted by width, >= 320 px (rapidocr)": timed([(len(b), max(320, max(b))) for b in batches]),
        "one crop per call, its own width": timed([(1, w) for w in widths]),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the side-by-side tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per page and side (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (both sides)")
    parser.add_argument("--pages", nargs="+", default=None, help="pages to read (default: all)")
    args = parser.parse_args(argv)
    timing_rows = []
    for name, (image, truth) in pages().items():
        if args.pages and name not in args.pages:
            continue
        ours = read_ours(image, args.repeat, args.threads)
        ref = read_reference(image, args.repeat, args.threads)
        print(f"\n## {name} ({image.shape[1]}x{image.shape[0]}): {len(ours.texts)} lines ours, "
              f"{len(ref.texts)} reference, {len(truth)} true")
        print(f"{'acc ours':>8} {'acc ref':>8}  true / ours / reference")
        acc_ours, acc_ref = [], []
        for line in truth:
            a, b = best_match(line, ours.texts), best_match(line, ref.texts)
            acc_ours.append(char_accuracy(a, line))
            acc_ref.append(char_accuracy(b, line))
            print(f"{acc_ours[-1]:>8.3f} {acc_ref[-1]:>8.3f}  {line}")
            if a != line:
                print(f"{'':>18}  ours: {a}")
            if b != line:
                print(f"{'':>18}  ref:  {b}")
        print(f"{np.mean(acc_ours):>8.3f} {np.mean(acc_ref):>8.3f}  mean character accuracy")
        timing_rows.append((name, ours, ref))
    for name, (image, _) in pages().items():
        if args.pages and name not in args.pages:
            continue
        print(f"\n## recogniser alone (ONNX Runtime), {name}: ms, median of {args.repeat}")
        for how, ms in rec_batching(image, args.repeat, args.threads).items():
            print(f"{ms:>9.1f}  {how}")
    print(f"\n## time per page, ms (median of {args.repeat}; threads {args.threads or 'default'})")
    print(f"{'page':<12} {'stage':<6} {'ours':>9} {'reference':>10} {'ours/ref':>9}")
    for name, ours, ref in timing_rows:
        for stage in ("det", "cls", "rec"):
            print(f"{name:<12} {stage:<6} {ours.stages_ms[stage]:>9.1f} {ref.stages_ms[stage]:>10.1f} "
                  f"{ours.stages_ms[stage] / ref.stages_ms[stage]:>9.2f}")
        print(f"{name:<12} {'total':<6} {ours.total_ms:>9.1f} {ref.total_ms:>10.1f} "
              f"{ours.total_ms / ref.total_ms:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
