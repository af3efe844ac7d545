"""``python -m ros_vision_pipe.replay``: replay, play, compare and make-bag sub-commands.

Examples::

    # offline, lossless: every frame, results into a new bag, table + JSON + PNG
    python -m ros_vision_pipe.replay replay config/person_pose.lua run_42 -o run_42_results \\
        --json run_42.json --plot run_42.png
    # real time (recorded rate x2): drops and async intervals as live
    python -m ros_vision_pipe.replay replay config/person_pose.lua run_42 --rate 2 -o rt_results
    # publish the bag's images over DDS at recorded timing, for the running node
    python -m ros_vision_pipe.replay play run_42 --remap /cam/image_raw:=/camera/image_raw
    # per-model agreement of two result bags
    python -m ros_vision_pipe.replay compare run_42_results rt_results
    # a test bag from a clip
    python -m ros_vision_pipe.replay make-bag sample:bikes bikes_bag --max-frames 60 --compressed

Exit status: 0 done, 1 ``compare --check`` found differences, 2 error (nothing or not
everything done, or every frame failed), 3 the bag is truncated or corrupt (what was readable
was processed).

``replay`` without ``--topics`` takes one image topic per camera (``X`` rather than
``X/compressed`` when a bag has both); ``make-bag`` removes its partial bag when it fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ros_vision_pipe.cli import positive_int
from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.frames import FrameSourceError
from ros_vision_pipe.replay.errors import CorruptBagError, ReplayError
from ros_vision_pipe.replay.image_bag import ImageTopicSpec, Storage
from ros_vision_pipe.replay.options import Driver, ReplayOptions
from ros_vision_pipe.replay.progress import make_progress
from ros_vision_pipe.replay.report import ReplayMode, ReplayReport
from ros_vision_pipe.replay.report_output import failure_line, format_table, plot_report, write_json
from ros_vision_pipe.replay.result_bag import DEFAULT_NAMESPACE

EXIT_DIFFERENT = 1
EXIT_ERROR = 2
EXIT_CORRUPT = 3


def _progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar (default: when stderr is a terminal)")


def build_parser() -> argparse.ArgumentParser:
    """The sub-commands and their arguments."""
    parser = argparse.ArgumentParser(prog="python -m ros_vision_pipe.replay",
                                     description="Run pipelines over rosbags, play bags over DDS, compare runs.")
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="run a pipeline over a bag's image topics (no ROS needed)")
    replay.add_argument("config", type=Path, help="pipeline configuration (.lua)")
    replay.add_argument("bags", type=Path, nargs="+",
                        help="rosbag2 folder, .mcap or .db3 file, or ROS 1 .bag file(s)")
    replay.add_argument("-o", "--output", type=Path, help="output rosbag2 folder for the result messages")
    replay.add_argument("--topics", nargs="+", help="image topics to replay (default: every image topic)")
    replay.add_argument("--storage", choices=["sqlite3", "mcap"], default="sqlite3", help="output storage")
    replay.add_argument("--namespace", default=DEFAULT_NAMESPACE,
                        help=f"namespace of the result topics (default {DEFAULT_NAMESPACE}, the node's)")
    replay.add_argument("--copy-images", action="store_true", help="copy the input images into the output bag")
    replay.add_argument("--realtime", action="store_true",
                        help="feed frames at the recorded rate (drops and async intervals as live)")
    replay.add_argument("--rate", type=float, help="real-time speed factor (implies --realtime; default 1)")
    replay.add_argument("--max-gap", type=float, default=1.0,
                        help="real-time: longest recorded gap waited for, seconds (default 1)")
    replay.add_argument("--pipelined", action="store_true",
                        help="lossless: several frames in flight (frame-level pipeline) instead of one")
    replay.add_argument("--max-frames", type=positive_int, help="stop after this many frames (>= 1)")
    replay.add_argument("--json", type=Path, help="write the machine-readable summary here")
    replay.add_argument("--json-frames", action="store_true", help="include every frame's record in the JSON")
    replay.add_argument("--plot", type=Path, help="write a PNG of per-model latency (and freshness) here")
    replay.add_argument("--quiet", action="store_true", help="do not print the table")
    _progress_flag(replay)

    play = commands.add_parser("play", help="publish a bag's image topics over DDS at recorded timing (rclpy)")
    play.add_argument("bags", type=Path, nargs="+", help="rosbag2 folder, .mcap or .db3 file, or ROS 1 .bag file(s)")
    play.add_argument("--topics", nargs="+", help="image topics to publish (default: every image topic)")
    play.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO", help="publish FROM on TO")
    play.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1)")
    play.add_argument("--max-gap", type=float, default=1.0, help="longest recorded gap waited for, seconds")
    play.add_argument("--best-effort", action="store_true", help="publish BEST_EFFORT instead of RELIABLE")
    play.add_argument("--wait-for-subscribers", type=int, default=0, metavar="N",
                      help="wait until every topic has N subscribers before playing")
    play.add_argument("--timeout", type=float, default=30.0, help="longest wait for subscribers, seconds")
    _progress_flag(play)

    compare = commands.add_parser("compare", help="per-model agreement of two result bags")
    compare.add_argument("a", type=Path, help="result bag A (reference)")
    compare.add_argument("b", type=Path, help="result bag B")
    compare.add_argument("--iou", type=float, default=0.5, help="IoU from which detections match (default 0.5)")
    compare.add_argument("--topics", nargs="+", help="result topics to read (default: the fused topic(s))")
    compare.add_argument("--json", type=Path, help="write the comparison as JSON here")
    compare.add_argument("--check", action="store_true", help="exit with status 1 unless the runs are identical")

    make = commands.add_parser("make-bag", help="write an image bag from a video, folder or sample clip")
    make.add_argument("source", help="video file, image folder, image, or sample:NAME (e.g. sample:bikes)")
    make.add_argument("output", type=Path, help="output bag (folder; .bag file for ros1)")
    make.add_argument("--storage", choices=[s.value for s in Storage], default="sqlite3")
    make.add_argument("--topic", default="/camera/image_raw", help="raw image topic ('' for none)")
    make.add_argument("--compressed", action="store_true",
                      help="also write <topic>/compressed (JPEG); replay takes the raw topic unless --topics")
    make.add_argument("--max-frames", type=positive_int, help="stop after this many frames (>= 1)")
    return parser


def _default_topics(args: argparse.Namespace) -> tuple[str, ...] | None:
    """``--topics`` when given, else one image topic per camera (raw before ``/compressed``), said on stderr."""
    from ros_vision_pipe.replay.bag_reader import ImageBagReader, one_topic_per_camera

    if args.topics:
        return tuple(args.topics)
    with ImageBagReader(tuple(args.bags), None) as bag:
        kept, left_out = one_topic_per_camera(bag.topics)
    if not left_out:
        return None
    print(f"note: replaying {', '.join(t.name for t in kept)}; left out {', '.join(t.name for t in left_out)} "
          f"(the same camera's frames again; --topics chooses)", file=sys.stderr)
    return tuple(t.name for t in kept)


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    from ros_vision_pipe.replay.bag_reader import ImageBagReader
    from ros_vision_pipe.replay.bag_replay import replay_bag

    args.topics = _default_topics(args)
    realtime = args.realtime or args.rate is not None
    options = ReplayOptions(
        config=args.config, bags=tuple(args.bags), topics=tuple(args.topics) if args.topics else None,
        output=args.output, storage=Storage.parse(args.storage), namespace=args.namespace,
        copy_images=args.copy_images, mode=ReplayMode.REALTIME if realtime else ReplayMode.LOSSLESS,
        rate=args.rate if args.rate is not None else 1.0, max_gap_s=args.max_gap,
        driver=Driver.PIPELINED if args.pipelined else Driver.RUN, max_frames=args.max_frames,
    ).validated()
    with ImageBagReader(options.bags, options.topics) as bag:  # the total for the bar; errors surface early
        total = bag.total
    if total is not None and options.max_frames is not None:
        total = min(total, options.max_frames)
    progress = make_progress(total, "replay", enabled=args.progress)
    report: ReplayReport
    status = 0
    try:
        report = replay_bag(options, progress=progress)
    except CorruptBagError as error:
        if error.report is None:
            raise
        report = error.report
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        status = EXIT_CORRUPT
    failure = failure_line(report)
    if failure is not None:  # said first, before the table
        print(failure, file=sys.stderr, flush=True)
        status = status or EXIT_ERROR
    if not args.quiet:
        print(format_table(report), file=out)
    if args.json:
        write_json(report, args.json, frames=args.json_frames)
    if args.plot:
        plot_report(report, args.plot)
    return status


def _play(args: argparse.Namespace, out: TextIO, ros_args: Sequence[str]) -> int:
    from ros_vision_pipe.ros.bag_player import PlayOptions, play_main

    remap = []
    for item in args.remap:
        source, sep, target = item.partition(":=")
        if not sep:
            raise ReplayError(f"--remap expects FROM:=TO, got {item!r}")
        remap.append((source, target))
    options = PlayOptions(
        bags=tuple(args.bags), topics=tuple(args.topics) if args.topics else None, remap=tuple(remap),
        rate=args.rate, max_gap_s=args.max_gap, reliable=not args.best_effort,
        wait_for_subscribers=args.wait_for_subscribers, subscriber_timeout_s=args.timeout)
    report = play_main(options, ros_args, progress=make_progress(None, "play", enabled=args.progress))
    if report is None:
        return EXIT_ERROR
    published = ", ".join(f"{topic}: {count}" for topic, count in report.published.items())
    print(f"published {report.total} message(s) in {report.wall_s:.2f} s ({published}); "
          f"max lateness {report.max_lateness_s * 1e3:.1f} ms", file=out)
    return 0


def _compare(args: argparse.Namespace, out: TextIO) -> int:
    from ros_vision_pipe.replay.compare import compare_bags, comparison_dict, format_comparison

    comparison = compare_bags(args.a, args.b, args.iou, args.topics)
    print(format_comparison(comparison), file=out)
    if args.json:
        args.json.write_text(json.dumps(comparison_dict(comparison), indent=2) + "\n", encoding="utf-8")
    return EXIT_DIFFERENT if args.check and not comparison.identical else 0


def _make_bag(args: argparse.Namespace, out: TextIO) -> int:
    from ros_vision_pipe.frames import iter_frames
    from ros_vision_pipe.replay.image_bag import write_image_bag

    specs = [ImageTopicSpec(args.topic)] if args.topic else []
    if args.compressed:
        specs.append(ImageTopicSpec(f"{(args.topic or '/camera/image_raw').rstrip('/')}/compressed", compressed=True))
    if not specs:
        raise ReplayError("make-bag needs --topic or --compressed")
    path = write_image_bag(args.output, iter_frames(args.source, args.max_frames), specs,
                           storage=Storage.parse(args.storage))
    print(f"wrote {path} ({', '.join(s.topic for s in specs)})", file=out)
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point; returns the exit status (arguments after ``--ros-args`` go to rclpy)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    ros_args: list[str] = []
    if "--ros-args" in arguments:
        at = arguments.index("--ros-args")
        arguments, ros_args = arguments[:at], arguments[at:]
    args = build_parser().parse_args(arguments)
    stream = out or sys.stdout
    try:
        if args.command == "replay":
            return _replay(args, stream)
        if args.command == "play":
            return _play(args, stream, ros_args)
        if args.command == "compare":
            return _compare(args, stream)
        return _make_bag(args, stream)
    except CorruptBagError as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_CORRUPT
    except (ReplayError, EngineError, FrameSourceError, ValueError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR


__all__ = ["EXIT_CORRUPT", "EXIT_DIFFERENT", "EXIT_ERROR", "build_parser", "main"]
