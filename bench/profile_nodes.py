"""Where each node's CPU goes: py-spy samples of our node and the hand-written one on the same frames.

Runs ``bench_vs_handwritten.py --scenarios 1`` (one model, max throughput, 2 frames in flight,
after its 190-frame equality pass) and attaches ``py-spy record`` (non-blocking, every thread,
busy samples only, so a node's idle time while the other one runs adds nothing) to both node
processes of this checkout for the whole run. Prints, for each node, the
share of its busy samples per category (inference, Lua scripts + ``vp`` ops, image decode and
pre/post in numpy, rclpy executor, publishing, taking messages, engine plumbing) and per thread,
and the top leaf functions: the profile behind docs/performance.md ("Our node vs a hand-written
rclpy node").

    pip install py-spy   # not a dependency of the package
    source tools/ros_env.sh && python bench/profile_nodes.py [--frames 600]

py-spy needs ptrace rights on the node processes (root, or kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench" / "bench_vs_handwritten.py"

#: (category, regular expression on a frame "function (file:line)"), first match from the leaf up.
CATEGORIES = [
    ("inference (ONNX Runtime)", r"^(Session\.run|InferenceSession\.run) "),
    ("Lua scripts and vp ops", r"(lua|sandbox\.py|host_api|/vision/|handles\.py|convert\.py)"),
    ("hand-written pre/post (cv2, numpy)", r"(person_preprocess|person_postprocess|scene_preprocess)"),
    ("image decode / intake", r"(image_encoding\.py|image_intake\.py|intake_loop\.py|_intake|_on_image|on_image )"),
    ("publishing (mapping + rclpy publish)", r"(Publisher\.publish|result_mapping|frame_messages|publish_result)"),
    ("taking messages (rclpy)", r"_take_subscription"),
    ("executor (wait sets, dispatch)", r"rclpy/executors\.py|rclpy/task\.py|callback_groups\.py"),
    ("engine plumbing (queues, futures, stats)", r"ros_vision_pipe/engine|concurrent/futures|threading\.py"),
]


def node_pid(pattern: str, deadline: float) -> int | None:
    """The python process whose command line matches ``pattern`` (waits until ``deadline``)."""
    regex = re.compile(pattern)
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                comm = (entry / "comm").read_text()
            except OSError:
                continue
            if "python" in comm and regex.search(command):
                return int(entry.name)
        time.sleep(0.1)
    return None


def record(pyspy: str, pattern: str, out: Path, stop: threading.Event) -> None:
    """Sample the process matching ``pattern`` from its start until ``stop`` (py-spy writes on SIGINT)."""
    pid = node_pid(pattern, time.monotonic() + 120)
    if pid is None:
        print(f"no process matched {pattern!r}", file=sys.stderr)
        return
    spy = subprocess.Popen([pyspy, "record", "--pid", str(pid), "-d", "3600", "-r", "200", "--threads",
                            "--nonblocking", "--format", "raw", "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stop.wait()
    spy.send_signal(signal.SIGINT)
    _, errors = spy.communicate(timeout=60)
    if not out.exists():
        print(f"py-spy on {pid}: {errors.strip()[-500:]}", file=sys.stderr)


def summarise(path: Path, title: str, top: int) -> None:
    categories: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, count_text = line.rsplit(" ", 1)
        count = int(count_text)
        total += count
        frames = stack.split(";")
        threads[re.sub(r"\d+", "N", frames[0])] += count
        leaves[frames[-1]] += count
        category = next((name for frame in reversed(frames[1:]) for name, regex in CATEGORIES
                         if re.search(regex, frame)), "other (interpreter, logging...)")
        categories[category] += count
    if not total:
        print(f"\n{title}: no samples")
        return
    print(f"\n### {title}: {total} busy samples\n")
    print("| category | share of busy samples |\n|---|---|")
    for name, count in categories.most_common():
        print(f"| {name} | {count / total * 100:.1f} % |")
    print("\n| thread | share |\n|---|---|")
    for name, count in threads.most_common(8):
        print(f"| {name.replace('thread ', '')} | {count / total * 100:.1f} % |")
    print(f"\ntop {top} leaf functions:\n")
    for name, count in leaves.most_common(top):
        print(f"    {count / total * 100:5.1f} %  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600, help="frames of the throughput round (default %(default)s)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="profile_nodes_"))
    repo = re.escape(str(REPO))
    targets = {
        "our node": (rf"ros_vision_pipe\.ros\.node .*bench_vs_ours_one .*{repo}", folder / "ours.txt"),
        "hand-written node": (rf"{repo}/bench/bench_vs_handwritten\.py --handwritten bench_vs_hand_one",
                              folder / "hand.txt"),
    }
    stop = threading.Event()  # busy samples only: a node's idle time while the other runs adds nothing
    recorders = [threading.Thread(target=record, args=(pyspy, pattern, out, stop)) for pattern, out in targets.values()]
    for recorder in recorders:
        recorder.start()
    bench = subprocess.run([sys.executable, str(BENCH), "--scenarios", "1", "--rounds", "1", "--frames",
                            str(args.frames)], capture_output=True, text=True, env=os.environ.copy(), check=False)
    stop.set()
    for recorder in recorders:
        recorder.join()
    print(bench.stdout.strip().splitlines()[-6] if bench.stdout.strip() else bench.stderr[-2000:])
    print("\n".join(line for line in bench.stdout.splitlines() if line.startswith("| 1.")))
    for title, (_, out) in targets.items():
        if out.exists():
            summarise(out, title, args.top)
        else:
            print(f"\n{title}: py-spy recorded nothing (rights? see the docstring)")
    print(f"\nraw py-spy output (collapsed stacks): {folder}")
    return bench.returncode


if __name__ == "__main__":
    sys.exit(main())
