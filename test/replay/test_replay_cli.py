"""``python -m ros_vision_pipe.replay``: replay, compare and make-bag from the command line."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stderr
from pathlib import Path

from replay_support import REPO, read_messages

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
    assert "6 frames read, 6 processed" in out and out.splitlines()[2].split()[:2] == ["person", "6"]
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
