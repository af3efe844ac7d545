"""The command-line tool on real models and sample frames."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

from support import CONFIG_DIR

from ros_vision_pipe.cli import main


def test_cli_runs_person_pose_on_the_cyclist_clip_and_prints_a_summary() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["run", str(CONFIG_DIR / "person_pose.lua"), "sample:bikes", "--max-frames", "40"])
    text = out.getvalue()
    assert code == 0
    assert "40 frames in" in text
    assert "person [" in text
    summary = text.splitlines()[-2:]
    person_row = summary[0].split()
    pose_row = summary[1].split()
    assert person_row[:2] == ["person", "40"]
    assert pose_row[0] == "pose" and int(pose_row[1]) + int(pose_row[2]) == 40 and int(pose_row[1]) > 0


def test_cli_prints_json_lines_with_real_results() -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["run", str(CONFIG_DIR / "face_detector.lua"), "sample:astronaut", "--json"])
    assert code == 0
    frame = json.loads(out.getvalue().splitlines()[0])
    assert frame["results"]["face"]["status"] == "ok"
    assert len(frame["results"]["face"]["value"]["detections"]) == 1
    assert "1 frames in" in err.getvalue()


def test_cli_reports_a_bad_config_and_exits_non_zero(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.lua"
    bad.write_text('return { mode = "sideways", models = {} }')
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["run", str(bad), "sample:astronaut"])
    assert code == 2
    assert "ConfigError: bad.lua: unknown mode 'sideways'" in err.getvalue()


def test_cli_reports_a_missing_source(tmp_path) -> None:  # type: ignore[no-untyped-def]
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["run", str(CONFIG_DIR / "face_detector.lua"), str(tmp_path / "none.mp4")])
    assert code == 2
    assert "no such file or folder" in err.getvalue()
