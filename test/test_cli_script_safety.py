"""The CLI against unsafe scripts: non-UTF-8 sources and Ctrl-C while a script is stuck."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO, make_scale_model

from ros_vision_pipe.cli import EXIT_INTERRUPTED, main

SCRIPT = b"""
function preprocess(ctx) return vp.from_table({{1, 2, 3}}, "float32") end
function postprocess(outputs, ctx) return {} end
"""


def _config(folder: Path, script: bytes, config_extra: bytes = b"", timeout_ms: int = 1000) -> Path:
    make_scale_model(folder / "scale.onnx")
    (folder / "m.lua").write_bytes(script)
    config = folder / "p.lua"
    config.write_bytes(b'return { mode = "single", ' + config_extra + b' models = { { name = "m", path = "scale.onnx", '
                       b'script = "m.lua", script_timeout_ms = ' + str(timeout_ms).encode() + b" } } }\n")
    return config


def test_cli_reports_a_config_that_is_not_utf8_in_one_named_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, SCRIPT, config_extra=b"-- caf\xe9\n")
    assert main(["run", str(config), "sample:astronaut"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "error: ScriptError: p.lua is not UTF-8 text: byte 0xe9 at offset" in err
    assert "(model 'pipeline')" in err


def test_cli_reports_a_model_script_that_is_not_utf8_in_one_named_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, b"-- \xff\xfe\n" + SCRIPT)
    assert main(["run", str(config), "sample:astronaut"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "error: ScriptError: m.lua is not UTF-8 text: byte 0xff at offset 3 (line 1) (model 'm')" in err


@pytest.mark.parametrize("where", ["preprocess", "main chunk"])
def test_ctrl_c_while_a_script_is_stuck_exits_promptly_with_130_and_no_traceback(tmp_path: Path, where: str) -> None:
    loop = b'print("looping") while true do end'
    script = SCRIPT.replace(b"function preprocess(ctx) ", b"function preprocess(ctx) " + loop + b" ")
    if where == "main chunk":
        script = loop + b"\n" + SCRIPT
    config = _config(tmp_path, script, timeout_ms=600_000)  # the time limit never ends this run
    code = ("import logging, sys; logging.basicConfig(level=logging.INFO)\n"
            "from ros_vision_pipe.cli import main\n"
            f"sys.exit(main(['run', {str(config)!r}, 'sample:astronaut']))\n")
    child = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                             env=dict(os.environ, PYTHONPATH=str(REPO)), text=True)
    try:
        assert child.stderr is not None
        seen = ""
        while "looping" not in seen:  # the script is in its loop now
            line = child.stderr.readline()
            assert line, f"child ended early: {seen}"
            seen += line
        time.sleep(0.3)
        child.send_signal(signal.SIGINT)
        start = time.monotonic()
        out, err = child.communicate(timeout=30)
        elapsed = time.monotonic() - start
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == EXIT_INTERRUPTED == 130, err
    assert "Traceback" not in err, err
    assert err.strip().endswith("interrupted")
    assert elapsed < 5.0, f"took {elapsed:.1f} s to exit"
