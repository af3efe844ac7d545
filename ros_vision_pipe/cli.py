"""Command-line tool: run a pipeline configuration over a video, image folder, image or sample.

Examples::

    python -m ros_vision_pipe run config/person_pose.lua sample:bikes
    python -m ros_vision_pipe run config/ocr.lua sample:page --json
    ros-vision-pipe run config/face_landmarks.lua photos/ --max-frames 20
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import numpy as np

from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult, ResultStatus
from ros_vision_pipe.frames import FrameSourceError, iter_frames
from ros_vision_pipe.result_mapping import to_json


#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def describe_value(value: Any) -> str:
    """One short human-readable line for a model result."""
    if not isinstance(value, dict):
        return to_json(value)[:120]
    parts = []
    detections = value.get("detections")
    if isinstance(detections, list):
        parts.append(f"{len(detections)} detection(s)")
        for det in detections[:3]:
            box = det.get("box", {})
            coords = ",".join(f"{box.get(k, float('nan')):.0f}" for k in ("x1", "y1", "x2", "y2"))
            label = f"{det.get('label', '')} " if det.get("label") else ""
            keypoints = f" +{len(det['keypoints'])}kp" if det.get("keypoints") else ""
            parts.append(f"{label}[{coords}] {det.get('score', float('nan')):.2f}{keypoints}")
    for item in value.get("classifications", []) or []:
        parts.append(f"class {item.get('label')!s} {item.get('score', float('nan')):.2f}")
    for line in value.get("lines", []) or []:
        parts.append(repr(line.get("text")))
    return "; ".join(parts) if parts else to_json(value)[:120]


def print_frame(result: FrameResult, out: TextIO) -> None:
    """Print one frame's results, one line per model."""
    print(f"frame {result.frame_id}", file=out)
    for name, outcome in result.outcomes.items():
        detail = outcome.error if outcome.status is ResultStatus.ERROR else (
            "" if outcome.value is None else describe_value(outcome.value))
        print(f"  {name:<12} {outcome.status.value:<8} {outcome.latency_ms:7.1f} ms  {detail}", file=out)
    if result.has_fused:
        print(f"  {'fused':<12} {describe_value(result.fused)}", file=out)


def summary_table(results: Sequence[FrameResult], wall_s: float) -> str:
    """Per-model table: frames run / skipped / reused / errors, mean and p95 latency."""
    latencies: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, dict[ResultStatus, int]] = defaultdict(lambda: defaultdict(int))
    for result in results:
        for name, outcome in result.outcomes.items():
            counts[name][outcome.status] += 1
            if outcome.status is ResultStatus.OK:
                latencies[name].append(outcome.latency_ms)
    lines = [
        f"{len(results)} frames in {wall_s:.2f} s ({len(results) / wall_s if wall_s else 0:.1f} frames/s)",
        f"{'model':<12} {'ran':>5} {'skipped':>8} {'reused':>7} {'errors':>7} {'mean ms':>8} {'p95 ms':>8}",
    ]
    for name, by_status in counts.items():
        samples = latencies[name]
        mean = float(np.mean(samples)) if samples else float("nan")
        p95 = float(np.percentile(samples, 95)) if samples else float("nan")
        lines.append(
            f"{name:<12} {by_status[ResultStatus.OK]:>5} {by_status[ResultStatus.SKIPPED]:>8} "
            f"{by_status[ResultStatus.REUSED]:>7} {by_status[ResultStatus.ERROR]:>7} {mean:>8.1f} {p95:>8.1f}"
        )
    return "\n".join(lines)


def run_command(args: argparse.Namespace, out: TextIO) -> int:
    """The ``run`` sub-command."""
    results: list[FrameResult] = []
    with Pipeline.from_config(args.config) as pipeline:
        start = time.perf_counter()
        for frame in iter_frames(args.source, limit=args.max_frames):
            result = pipeline.run(frame.image, encoding=frame.encoding, timestamp=frame.timestamp,
                                  source=args.source)
            results.append(result)
            if args.json:
                print(to_json({
                    "frame_id": result.frame_id,
                    "results": {n: {"status": o.status.value, "latency_ms": o.latency_ms, "value": o.value}
                                for n, o in result.outcomes.items()},
                    "fused": result.fused,
                }), file=out)
            elif not args.quiet:
                print_frame(result, out)
        wall = time.perf_counter() - start
    print(summary_table(results, wall), file=sys.stderr if args.json else out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the tool."""
    parser = argparse.ArgumentParser(prog="ros-vision-pipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a pipeline over frames and print the results")
    run.add_argument("config", help="pipeline configuration (.lua)")
    run.add_argument("source", help="video file, image folder, image file, or sample:NAME (e.g. sample:bikes)")
    run.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    run.add_argument("--json", action="store_true", help="print one JSON object per frame")
    run.add_argument("--quiet", action="store_true", help="print only the summary")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ros-vision-pipe`` and ``python -m ros_vision_pipe``."""
    args = build_parser().parse_args(argv)
    with _ctrl_c_recorded() as interrupted:
        try:
            return run_command(args, sys.stdout)
        except (EngineError, FrameSourceError) as error:
            if interrupted.is_set():  # Ctrl-C reached a script as an error: still an interruption
                return _interrupted()
            print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # Ctrl-C: the pipeline closed on the way out (scripts interrupted)
            return _interrupted()


def _interrupted() -> int:
    print("interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


@contextlib.contextmanager
def _ctrl_c_recorded() -> Iterator[threading.Event]:
    """Within the block, SIGINT sets the event yielded, then raises KeyboardInterrupt as usual."""
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return

    def on_sigint(signum: int, frame: Any) -> None:
        interrupted.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
