"""Command-line tool: run a pipeline configuration over a video, image folder, image or sample.

Examples::

    python -m ros_vision_pipe run config/person_pose.lua sample:bikes
    python -m ros_vision_pipe run config/ocr.lua sample:page --json
    ros-vision-pipe run config/face_landmarks.lua photos/ --max-frames 20
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from ros_vision_pipe.cli_output import RunSummary, all_failed_message, frame_lines, json_record
from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.extras import report_missing_dependency
from ros_vision_pipe.frames import FrameSourceError, iter_frames
from ros_vision_pipe.messages.result_mapping import to_json
from ros_vision_pipe.replay.progress import make_progress

#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (``--max-frames 0`` or ``-1`` is refused, naming the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of frames >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (a number of frames), got {value}")
    return value


def run_command(args: argparse.Namespace, out: TextIO) -> int:
    """The ``run`` sub-command: one line per frame (``--quiet``: a progress bar), then the summary.

    Returns 0, or 2 when every frame failed (said first, on stderr, before the summary). When
    the reader of the output goes away (``| head``), stops quietly with status 0.
    """
    try:
        return _run_frames(args, out)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # no second error when Python flushes stdout at exit
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run_frames(args: argparse.Namespace, out: TextIO) -> int:
    summary = RunSummary()
    quiet_bar = make_progress(args.max_frames, "run", enabled=None) if args.quiet and not args.json else None
    with Pipeline.from_config(args.config) as pipeline:
        start = time.perf_counter()
        for frame in iter_frames(args.source, limit=args.max_frames):
            result = pipeline.run(frame.image, encoding=frame.encoding, timestamp=frame.timestamp,
                                  source=args.source)
            summary.add(result)
            if args.json:
                print(to_json(json_record(result)), file=out, flush=True)
            elif quiet_bar is not None:
                quiet_bar.update(1, **({"failed": summary.failed} if summary.failed else {}))
            else:
                print("\n".join(frame_lines(result)), file=out, flush=True)
        wall = time.perf_counter() - start
        stats = pipeline.stats()
    if quiet_bar is not None:
        quiet_bar.close()
    if summary.all_failed:
        print(all_failed_message(summary), file=sys.stderr, flush=True)
    print(summary.table(wall, stats), file=sys.stderr if args.json else out)
    return 2 if summary.all_failed else 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the tool."""
    parser = argparse.ArgumentParser(prog="ros-vision-pipe", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a pipeline over frames and print the results")
    run.add_argument("config", help="pipeline configuration (.lua)")
    run.add_argument("source", help="video file, image folder, image file, or sample:NAME (e.g. sample:bikes)")
    run.add_argument("--max-frames", type=positive_int, default=None, help="stop after this many frames (>= 1)")
    run.add_argument("--json", action="store_true", help="print one JSON object per frame")
    run.add_argument("--quiet", action="store_true",
                     help="no per-frame lines: a progress bar (on a terminal), then the summary")
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
        except ModuleNotFoundError as error:
            return report_missing_dependency(error)


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
