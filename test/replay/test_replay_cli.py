"""``python -m ros_vision_pipe.replay``: replay, compare and make-bag from the command line."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path

from replay_support import COMPRESSED_TOPIC, RAW_TOPIC, REPO, SSD_MODEL, SSD_SCRIPT, read_messages

from ros_vision_pipe.replay.cli import EXIT_CORRUPT, EXIT_ERROR, main
from ros_vision_pipe.replay.image_bag import Storage


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stderr(err):
        code = main(list(argv), out=out)
    return code, out.getvalue(), err.getvalue()


def test_replay_command_writes_the_bag_the_json_summary_and_the_plot_and_prints_the_table(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path) -> None:
    bag = make_bag(Storage.MCAP, frames=6)
    code, out, _ = run("replay", str(person_config), str(bag), "-o", str(tmp_path / "out"), "--storage", "mcap",
                       "--topics", "/camera/image_raw/compressed", "--json", str(tmp_path / "s.json"),
                       "--plot", str(tmp_path / "p.png"), "--no-progress")
    assert code == 0
    assert "6 frames read, 6 processed" in out and out.splitlines()[3].split()[:2] == ["person", "6"]
    assert json.loads((tmp_path / "s.json").read_text())["models"][0]["run"] == 6
    assert (tmp_path / "p.png").stat().st_size > 0
    assert {m.source for _, _, m in read_messages(tmp_path / "out", "/vision_pipeline/fused")} == {
        "/camera/image_raw/compressed"}
    code, out, _ = run("compare", str(tmp_path / "out"), str(tmp_path / "out"), "--check")
    assert code == 0 and out.endswith("identical\n")


def test_replay_command_names_a_missing_topic_and_exits_with_an_error(
        make_bag: Callable[..., Path], person_config: Path) -> None:
    bag = make_bag(frames=1)
    code, _, err = run("replay", str(person_config), str(bag), "--topics", "/nope")
    assert code == EXIT_ERROR
    assert f"error: TopicNotFoundError: {bag}: no topic '/nope'" in err


def test_replay_command_on_a_truncated_bag_prints_the_partial_table_and_exits_corrupt(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path) -> None:
    bag = make_bag(Storage.ROS1, frames=12, compressed=False)
    with bag.open("r+b") as handle:
        handle.truncate(bag.stat().st_size * 2 // 3)
    code, out, err = run("replay", str(person_config), str(bag), "-o", str(tmp_path / "out"))
    assert code == EXIT_CORRUPT
    assert "error: CorruptBagError: " in err and "truncated or damaged" in err
    assert "read error: " in out and sum(1 for _ in read_messages(tmp_path / "out", "/vision_pipeline/fused")) >= 4


def test_make_bag_command_runs_as_a_module(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ros_vision_pipe.replay", "make-bag", "sample:astronaut", str(tmp_path / "b"),
         "--compressed", "--storage", "mcap"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "wrote " in result.stdout and (tmp_path / "b" / "metadata.yaml").is_file()


def test_offline_replay_runs_without_rclpy_or_the_built_messages(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path) -> None:
    bag = make_bag(Storage.MCAP, frames=2, compressed=False)
    blocker = (
        "import sys\n"
        "for name in ('rclpy', 'ros_vision_pipe.msg', 'sensor_msgs', 'std_msgs'):\n"
        "    sys.modules[name] = None  # any import of them fails\n"
        "from ros_vision_pipe.replay.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run(
        [sys.executable, "-c", blocker, "replay", str(person_config), str(bag), "-o", str(tmp_path / "out")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "2 frames read, 2 processed" in result.stdout
    assert len(list(read_messages(tmp_path / "out", "/vision_pipeline/fused"))) == 2


def run_module(*argv: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    """``python -m ros_vision_pipe.replay ARGV`` in a child process, as a user runs it."""
    if prelude:
        code = f"{prelude}\nimport sys\nfrom ros_vision_pipe.replay.__main__ import entry\nsys.exit(entry())\n"
        command = [sys.executable, "-c", code, *argv]
    else:
        command = [sys.executable, "-m", "ros_vision_pipe.replay", *argv]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def failing_config(tmp_path: Path, every: int = 1) -> Path:
    """The person detector alone, its postprocess raising on every ``every``-th call (from the first)."""
    script = SSD_SCRIPT.read_text(encoding="utf-8") + (
        f"local step, calls = postprocess, 0\nfunction postprocess(outputs, ctx)\n  calls = calls + 1\n"
        f"  if (calls - 1) % {every} == 0 then error('broken on purpose') end\n"
        "  return step(outputs, ctx)\nend\n")
    (tmp_path / "broken.lua").write_text(script, encoding="utf-8")
    config = tmp_path / "broken_config.lua"
    config.write_text(f"return {{ mode = 'single', models = {{ {{ name = 'person', path = {str(SSD_MODEL)!r}, "
                      f"script = 'broken.lua' }} }} }}\n", encoding="utf-8")
    return config


def test_replay_in_which_every_frame_failed_exits_2_and_says_so_before_the_table(
        make_bag: Callable[..., Path], tmp_path: Path) -> None:
    bag = make_bag(frames=4, compressed=False)
    result = run_module("replay", str(failing_config(tmp_path)), str(bag))
    assert result.returncode == EXIT_ERROR
    assert result.stderr.splitlines()[0].startswith(
        "error: every frame failed (4 of 4); first: frame 0 of '/camera/image_raw' failed: ScriptError: broken.lua:")
    lines = result.stdout.splitlines()
    assert lines[1].startswith("4 frames read, 4 processed (4 failed) in ")
    assert lines[3].split()[:5] == ["person", "0", "0", "0", "4"] and lines[3].split()[-4:] == ["-"] * 4
    assert not re.search(r"\bnan\b", result.stdout) and all(len(line) <= 100 for line in lines[1:4])


def test_replay_with_some_failed_frames_counts_them_and_exits_0(
        make_bag: Callable[..., Path], tmp_path: Path) -> None:
    bag = make_bag(frames=4, compressed=False)
    result = run_module("replay", str(failing_config(tmp_path, every=2)), str(bag))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("4 frames read, 4 processed (2 failed) in ")
    assert "problem: frame 0 of '/camera/image_raw' failed: ScriptError: " in result.stdout


def test_replay_takes_one_topic_per_camera_from_a_bag_with_raw_and_compressed_images(
        make_bag: Callable[..., Path], person_config: Path) -> None:
    bag = make_bag(frames=5)  # /camera/image_raw and /camera/image_raw/compressed
    result = run_module("replay", str(person_config), str(bag))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "note: replaying /camera/image_raw; left out /camera/image_raw/compressed (the same camera's frames again; "
        "--topics chooses)")
    assert result.stdout.splitlines()[1].startswith("5 frames read, 5 processed in ")
    both = run_module("replay", str(person_config), str(bag), "--topics", RAW_TOPIC, COMPRESSED_TOPIC)
    assert both.returncode == 0 and both.stdout.splitlines()[1].startswith("10 frames read, 10 processed in ")


def test_make_bag_from_a_bad_source_leaves_no_bag_so_the_corrected_command_works(tmp_path: Path) -> None:
    out = tmp_path / "bag"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 4096)
    for source in ("sample:nope", str(broken)):
        result = run_module("make-bag", source, str(out), "--compressed")
        assert result.returncode == EXIT_ERROR
        assert result.stderr.splitlines()[-1].startswith("error: FrameSourceError: ") and not out.exists()
    result = run_module("make-bag", "sample:astronaut", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {out} (/camera/image_raw)")


def test_max_frames_zero_or_negative_is_refused_naming_the_argument(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path) -> None:
    bag = make_bag(frames=1, compressed=False)
    for value in ("0", "-1"):
        for argv in (("make-bag", "sample:bikes", str(tmp_path / "b")), ("replay", str(person_config), str(bag))):
            result = run_module(*argv, "--max-frames", value)
            assert result.returncode == EXIT_ERROR
            assert result.stderr.splitlines()[-1].endswith(
                f"error: argument --max-frames: must be >= 1 (a number of frames), got {value}")
    assert not (tmp_path / "b").exists()


def test_compare_says_why_two_runs_differ_without_nan(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path) -> None:
    bag = make_bag(frames=5, compressed=False)
    assert run_module("replay", str(person_config), str(bag), "-o", str(tmp_path / "a")).returncode == 0
    assert run_module("replay", str(person_config), str(bag), "-o", str(tmp_path / "b"),
                      "--max-frames", "3").returncode == 0
    result = run_module("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(
        "different:\n  - frame counts differ: 5 in A, 3 in B\n"
        "  - 2 frame(s) of A and 0 of B have no partner (same source and header stamp) in the other run\n")
    assert not re.search(r"\bnan\b", result.stdout)
    assert all(len(line) <= 100 for line in result.stdout.splitlines()[3:])
    assert run_module("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--check").returncode == 1


def test_replay_without_rosbags_names_the_replay_extra_in_one_line() -> None:
    result = run_module("--help", prelude="import sys; sys.modules['rosbags'] = None")
    assert result.returncode == EXIT_ERROR
    assert result.stderr.strip().splitlines() == [
        "error: bag replay (python -m ros_vision_pipe.replay) needs the Python module 'rosbags', which is not "
        "installed; install the extra: pip install 'ros_vision_pipe[replay]' (from a checkout: pip install "
        "'.[replay]')"]
