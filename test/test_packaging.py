"""``pip install .``: what the package requires and installs, and that building it leaves the checkout clean.

``pip install .`` runs setuptools' ``egg_info`` and ``build`` in the checkout (``*.egg-info/``,
``build/``); the tests run those two commands directly (no network, no build isolation).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO


def git(*argv: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *argv], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A git checkout of the source files, built as ``pip install .`` builds it: (checkout, egg-info folder)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path_factory.mktemp("pkg")
    checkout = root / "src"
    files = git("ls-files", "--cached", "--others", "--exclude-standard", cwd=REPO).splitlines()
    for name in files:
        source = REPO / name
        if source.is_file() and not name.startswith("models/"):
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    git("init", "-q", cwd=checkout)
    git("add", "-A", cwd=checkout)
    git("commit", "-qm", "snapshot", cwd=checkout)
    result = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "build", "install_data",
                             "--install-dir", str(root / "prefix")], cwd=checkout,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert (checkout / "build" / "lib" / "ros_vision_pipe" / "cli.py").is_file()
    return checkout, checkout / "ros_vision_pipe.egg-info"


def test_building_the_wheel_leaves_nothing_untracked_in_the_checkout(built: tuple[Path, Path]) -> None:
    checkout, _ = built
    assert git("status", "--porcelain", "--untracked-files=all", cwd=checkout) == ""


def test_the_package_requires_what_the_readme_run_commands_need_and_names_the_replay_extra(
        built: tuple[Path, Path]) -> None:
    _, info = built
    sections: dict[str, list[str]] = {"": []}
    section = ""
    for line in (info / "requires.txt").read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
            sections[section] = []
        elif line.strip():
            sections[section].append(line.strip())
    for name in ("onnxruntime", "lupa", "opencv-python-headless", "scikit-image", "scikit-video", "tqdm"):
        assert any(r.startswith(name) for r in sections[""]), (name, sections)
    assert any(r.startswith("rosbags") for r in sections["replay"])
    entry_points = (info / "entry_points.txt").read_text()
    assert "ros-vision-pipe = ros_vision_pipe.cli:main" in entry_points
    assert "ros-vision-pipe-replay = ros_vision_pipe.replay.__main__:entry" in entry_points


def test_the_message_definitions_install_where_replay_looks_for_them(built: tuple[Path, Path]) -> None:
    from ros_vision_pipe.replay.typestore import candidate_msg_dirs, find_msg_dir

    checkout, _ = built
    prefix = checkout.parent / "prefix"
    module = prefix / "lib" / "python3.11" / "site-packages" / "ros_vision_pipe" / "replay" / "typestore.py"
    candidates = candidate_msg_dirs(module_file=module, environ={})
    installed = prefix / "share" / "ros_vision_pipe" / "msg"
    assert installed in candidates
    assert find_msg_dir([installed]) == installed
    assert {p.name for p in installed.glob("*.msg")} == {p.name for p in (REPO / "msg").glob("*.msg")}
