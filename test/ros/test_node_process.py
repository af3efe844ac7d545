"""The node as its own process (scripts/pipeline_node), heard by another process, stopped with Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros_support import PYTHON, REPO, Probe, image_message, ros_env, wait_for
from sensor_msgs.msg import Image

NODE = [PYTHON, str(REPO / "scripts" / "pipeline_node")]
LISTENER = [PYTHON, str(Path(__file__).with_name("listener.py"))]


def start(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(command, cwd=REPO, env=ros_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes, killed at teardown if still running."""
    children: list[subprocess.Popen[str]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=10)


def test_another_process_receives_results_and_ctrl_c_stops_the_node_cleanly(
        context, spin, bikes, person_config, processes) -> None:
    node = start([*NODE, "--ros-args", "-p", f"config_file:={person_config}", "-p", "image_topics:=[/cam]",
                  "-p", "qos.reliable:=true"])
    listener = start([*LISTENER, "/vision_pipeline/fused", "5"])
    processes += [node, listener]
    probe = Probe(context)
    spin(probe.node, threads=2)
    publisher = probe.node.create_publisher(Image, "/cam", 10)
    assert wait_for(lambda: publisher.get_subscription_count() > 0
                    and probe.node.count_subscribers("/vision_pipeline/fused") > 0
                    and probe.node.count_publishers("/vision_pipeline/fused") > 0, timeout=30), "no node/listener"
    for index in range(3, 8):
        publisher.publish(image_message(bikes[index], "bgr8", f"cam_{index}", 100 + index))
        wait_for(lambda: False, timeout=0.2)
    out, err = listener.communicate(timeout=30)
    lines = [json.loads(line) for line in out.splitlines()]
    assert listener.returncode == 0, err
    assert [line["frame_index"] for line in lines] == [0, 1, 2, 3, 4]
    assert [(line["frame_id"], line["stamp"]) for line in lines] == [
        (f"cam_{i}", [100 + i, 123_456_789]) for i in range(3, 8)]
    boxes = [line["results"][0]["boxes"] for line in lines]
    assert all(line["results"][0]["model"] == "person" and line["results"][0]["status"] == 0 for line in lines)
    assert boxes[2] and boxes[2][0][4] > 0.9 and 320 < boxes[2][0][0] < 340  # frame 105: the cyclist

    for index in range(12):  # frames in flight when Ctrl-C arrives
        publisher.publish(image_message(bikes[index % len(bikes)], "bgr8", "late", 200 + index))
    node.send_signal(signal.SIGINT)
    _, node_err = node.communicate(timeout=20)
    assert node.returncode == 0, node_err
    assert "Traceback" not in node_err


def test_a_config_that_fails_to_load_exits_non_zero_with_the_engine_message(tmp_path: Path, processes) -> None:
    bad = tmp_path / "bad.lua"
    bad.write_text("return { mode = 'sideways', models = {} }\n", encoding="utf-8")
    node = start([*NODE, "--ros-args", "-p", f"config_file:={bad}"])
    processes.append(node)
    _, err = node.communicate(timeout=30)
    assert node.returncode == 1
    assert "cannot start: ConfigError: bad.lua: unknown mode 'sideways'; expected one of" in err


