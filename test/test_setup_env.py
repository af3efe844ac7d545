"""``tools/setup_env.sh`` and the README's first command (``bash tools/demo.sh``): what a new user sees.

Setup prints one line per step (step n/N, what it installs, elapsed time); the tools' output
goes to a log file, printed (its end) only when a step fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from support import REPO

STEP = re.compile(r"\[setup \d/\d\] .+ \.\.\. done \(\d+ s\)")


def bash(script: Path, *argv: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, check=False)


def test_setup_prints_a_few_step_lines_and_keeps_tool_output_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "setup.log"
    result = bash(REPO / "tools" / "setup_env.sh", env={"SETUP_SKIP_PIP": "1", "SETUP_LOG": str(log)})
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) <= 6 and result.stderr == ""
    assert lines[0].startswith("[setup] ros_vision_pipe environment in ")
    steps = [line for line in lines if re.match(r"\[setup \d", line)]
    assert len(steps) == 2 and all(STEP.fullmatch(line) for line in steps), lines
    assert re.fullmatch(r"\[setup\] ready in \d+ s\. In each shell: source tools/ros_env\.sh", lines[-1])
    assert "colcon build" in log.read_text() and "Summary: 1 package finished" in log.read_text()


def test_a_failing_setup_step_says_which_and_prints_the_end_of_its_log(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    shutil.copy2(REPO / "tools" / "setup_env.sh", tmp_path / "tools" / "setup_env.sh")
    result = bash(tmp_path / "tools" / "setup_env.sh", env={"PYTHON": "false"})  # no .venv there: creating it fails
    assert result.returncode != 0
    assert re.search(r"^\[setup 1/5\] Python venv \(\.venv\) \.\.\. FAILED after \d+ s \(exit 1\)$", result.stdout,
                     re.MULTILINE), result.stdout
    assert "---- last 60 lines of " in result.stderr and f"---- full log: {tmp_path}/log/setup_env.log" in result.stderr


def test_the_readme_first_command_shows_results_within_its_first_screenful() -> None:
    domain = os.environ.get("RVP_TEST_DOMAIN_ID", os.environ.get("ROS_DOMAIN_ID", "42"))
    result = bash(REPO / "tools" / "demo.sh", "--frames", "10",
                  env={"SETUP_SKIP_PIP": "1", "SETUP_LOG": "/dev/null", "ROS_DOMAIN_ID": domain})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    # setup lines go to stderr, results to stdout: at most 8 lines before the first result
    assert len(result.stderr.splitlines()) <= 8, result.stderr
    first = result.stdout.splitlines()[:24 - 8]
    assert any(re.match(r"frame +\d+ +stamp \d+\.\d+ +person: ok", line) for line in first), result.stdout
