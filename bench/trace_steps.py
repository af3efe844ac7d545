"""Where a frame's time goes, step by step, in our node and in the hand-written one, side by side.

Runs ``bench_vs_handwritten.py --scenarios 2`` (one frame at a time, 20 Hz) with a tracer loaded
into both node processes (a ``sitecustomize`` module written to a temporary folder and put first
on ``PYTHONPATH``; nothing in the package changes). The tracer wraps, in each node, the points every
frame passes: ``rcl_wait`` returning, the image callback (ours: the intake thread taking a message;
hand-written: its subscription callback), preprocess, ``InferenceSession.run``, postprocess and
``Publisher.publish``, and notes each frame's header stamp; the node writes its marks when it
exits. Prints the median of each step over the frames of the scenario (the equality pass before
it left out): the table behind docs/performance.md, "Third round". The wrappers cost both nodes a
few microseconds per step (ours a little more: its steps are not module functions).

    source tools/ros_env.sh
    python bench/trace_steps.py [--rounds 2] [--frames 150] [--detail]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TRACER = r'''
import atexit, json, os, sys, time

OUT = os.environ.get("RVP_STEPS_OUT")
OURS = "--ros-args" in sys.argv
if OUT and (OURS or "--handwritten" in sys.argv):
    marks = []
    clock, wall = time.perf_counter, time.time

    def mark(label):
        marks.append((label, clock(), wall()))

    def wrap(owner, attr, label):
        inner = getattr(owner, attr)

        def wrapped(*args, **kwargs):
            mark(label + "0")
            try:
                return inner(*args, **kwargs)
            finally:
                mark(label + "1")

        setattr(owner, attr, wrapped)

    def install():
        import onnxruntime
        import rclpy.node
        import rclpy.publisher
        from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

        wrap(_rclpy.WaitSet, "wait", "wait")
        wrap(onnxruntime.InferenceSession, "run", "inf")
        wrap(rclpy.publisher.Publisher, "publish", "pub")
        if OURS:
            from ros_vision_pipe.engine import model
            from ros_vision_pipe.ros import intake_loop, node_core

            wrap(model.Model, "preprocess", "pre")
            wrap(model.Model, "postprocess", "post")
            wrap(intake_loop.IntakeLoop, "_take", "cb")
            if os.environ.get("RVP_STEPS_DETAIL"):  # --detail: the calls between the take and publishing
                from ros_vision_pipe.engine import generations, pending_frames
                from ros_vision_pipe.ros import result_publishing

                wrap(intake_loop, "take_waiting", "tk")
                wrap(node_core.PipelineNodeCore, "_intake", "ik")
                wrap(generations.SwappablePipeline, "submit", "sub")
                wrap(pending_frames.PendingFrames, "_start", "st")
                wrap(pending_frames.PendingFrames, "_wake", "wk")
                wrap(result_publishing.ResultPublishing, "publish_result", "pr")
            intake = node_core.PipelineNodeCore._intake

            def noted(self, topic, header, decode):
                marks.append(("stamp", header.stamp.sec + header.stamp.nanosec * 1e-9, 0.0))
                return intake(self, topic, header, decode)

            node_core.PipelineNodeCore._intake = noted
        else:
            sys.path.insert(0, os.environ["RVP_STEPS_BENCH"])
            import handwritten_node

            wrap(handwritten_node, "person_preprocess", "pre")
            wrap(handwritten_node, "person_postprocess", "post")
            create = rclpy.node.Node.create_subscription

            def subscribe(self, msg_type, topic, callback, *args, **kwargs):
                def noted(msg):
                    marks.append(("stamp", msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, 0.0))
                    mark("cb0")
                    return callback(msg)

                return create(self, msg_type, topic, noted if "image" in topic else callback, *args, **kwargs)

            rclpy.node.Node.create_subscription = subscribe

    import rclpy

    init = rclpy.init

    def traced_init(*args, **kwargs):
        install()
        return init(*args, **kwargs)

    rclpy.init = traced_init
    def write():
        with open(f"{OUT}.{'ours' if OURS else 'hand'}.json", "w") as out:
            json.dump(marks, out)

    atexit.register(write)
'''

#: (row, from mark, to mark, clock), in the table's order: "wall" compares with the header stamp (the
#: driver's wall clock); an indented row is one of ours under the row above it, shown with ``--detail``.
STEPS = [
    ("header stamp -> rcl_wait returns (DDS)", "stamp", "wait1", "wall"),
    ("rcl_wait returns -> image callback", "wait1", "cb0", "perf"),
    ("image callback -> preprocess", "cb0", "pre0", "perf"),
    ("  take", "tk0", "tk1", "perf"),
    ("  take -> _intake (read the header, counters)", "tk1", "ik0", "perf"),
    ("  _intake -> submit (diagnostics, decode, stamp)", "ik0", "sub0", "perf"),
    ("  submit -> frame started (context, pending frame, here(), start_waiting)", "sub0", "st0", "perf"),
    ("  frame started -> preprocess (runner, direct task)", "st0", "pre0", "perf"),
    ("preprocess", "pre0", "pre1", "perf"),
    ("inference", "inf0", "inf1", "perf"),
    ("postprocess", "post0", "post1", "perf"),
    ("end of postprocess -> publish call", "post1", "pub0", "perf"),
    ("  end of postprocess -> frame complete (_wake)", "post1", "wk0", "perf"),
    ("  frame complete -> publish_result (in-order collection)", "wk0", "pr0", "perf"),
    ("  publish_result -> publish call (message)", "pr0", "pub0", "perf"),
    ("publish call", "pub0", "pub1", "perf"),
    ("header stamp -> publish returned", "stamp", "pub1", "wall"),
]


def frames(marks: list[list], ours: bool) -> list[dict[str, tuple[float, float]]]:
    """Group a node's marks (label, perf clock, wall clock) by frame, a frame starting at its stamp.

    The ``rcl_wait`` that woke the node for a frame is the last one before its stamp; ours also takes
    the message (``cb0``) before it reads the stamp, the hand-written node's callback starts after.
    """
    result: list[dict[str, tuple[float, float]]] = []
    before: dict[str, tuple[float, float]] = {}  # the last wait (and, ours, take) seen
    for label, clock, wall in marks:
        if label == "stamp":
            result.append({"stamp": (clock, clock), **before})
        elif label == "wait1" or (ours and label in ("cb0", "tk0", "tk1")):
            before[label] = (clock, wall)
        elif result and not label.startswith("wait"):
            result[-1].setdefault(label, (clock, wall))
    return result


def table(path: Path, ours: bool, count: int, steps: list[tuple[str, str, str, str]]) -> dict[str, float]:
    """Median of each step (ms) over the last ``count`` frames of a node."""
    rows: dict[str, list[float]] = {}
    for frame in frames(json.loads(path.read_text()), ours)[-count:]:
        for row, start, end, clock in steps:
            if start in frame and end in frame:
                index = 1 if clock == "wall" else 0
                rows.setdefault(row, []).append((frame[end][index] - frame[start][index]) * 1e3)
    return {row: statistics.median(values) for row, values in rows.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--detail", action="store_true", help="also our node's steps between take and publish")
    args = parser.parse_args()
    steps = [step for step in STEPS if args.detail or not step[0].startswith(" ")]
    with tempfile.TemporaryDirectory(prefix="trace_steps_") as folder:
        (Path(folder) / "sitecustomize.py").write_text(TRACER, encoding="utf-8")
        out = Path(folder) / "marks"
        env = {**os.environ, "RVP_STEPS_OUT": str(out), "RVP_STEPS_BENCH": str(REPO / "bench"),
               "PYTHONPATH": os.pathsep.join(filter(None, [folder, os.environ.get("PYTHONPATH")])),
               **({"RVP_STEPS_DETAIL": "1"} if args.detail else {})}
        run = subprocess.run([sys.executable, str(REPO / "bench" / "bench_vs_handwritten.py"), "--scenarios", "2",
                              "--rounds", str(args.rounds), "--frames", str(args.frames)],
                             env=env, capture_output=True, text=True, check=False)
        latency = [line for line in run.stdout.splitlines() if line.startswith("| 2. one model")]
        paths = {name: Path(f"{out}.{name}.json") for name in ("ours", "hand")}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if run.returncode or missing:
            print(run.stdout[-2000:], run.stderr[-2000:], f"missing: {missing}", sep="\n", file=sys.stderr)
            return 1
        count = args.rounds * args.frames
        ours, hand = table(paths["ours"], True, count, steps), table(paths["hand"], False, count, steps)
    print(f"Where a frame's time goes, scenario 2 (20 Hz, one frame at a time), medians of the last {count} "
          "frames of each node, ms")
    print("\n| step | ours | hand-written |\n|---|---|---|")
    for row, *_ in steps:
        print(f"| {row} | {ours.get(row, float('nan')):.3f} | {hand.get(row, float('nan')):.3f} |")
    print("\nThe bench's own row for the same run (with the tracer):")
    print("\n".join(latency))
    return 0


if __name__ == "__main__":
    sys.exit(main())
