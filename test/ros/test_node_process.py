"""The node as its own process (scripts/pipeline_node), heard by another process, stopped with Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from ros_support import PYTHON, REPO, SSD_MODEL, SSD_SCRIPT, Probe, image_message, ros_env, wait_for
from ros_vision_pipe.msg import FusedResult
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
    listener = start([*LISTENER, "/vision_pipeline/fused", "5"])
    node = start([*NODE, "--ros-args", "-p", f"config_file:={person_config}", "-p", "image_topics:=[/cam]",
                  "-p", "qos.reliable:=true"])
    processes += [listener, node]
    probe = Probe(context)
    spin(probe.node, threads=2)
    publisher = probe.node.create_publisher(Image, "/cam", 10)
    assert wait_for(lambda: publisher.get_subscription_count() > 0
                    and probe.node.count_subscribers("/vision_pipeline/fused") > 0
                    and probe.node.count_publishers("/vision_pipeline/fused") > 0, timeout=30), "no node/listener"
    # The node publishes a result only once a subscriber has matched its publisher (docs/ros.md, Topics),
    # which discovery may take a while to do: frames go on until the listener has had its five.
    sent = 0
    deadline = time.monotonic() + 60
    while listener.poll() is None and time.monotonic() < deadline:
        publisher.publish(image_message(bikes[3 + sent % 5], "bgr8", f"cam_{sent}", 100 + sent))
        sent += 1
        wait_for(lambda: False, timeout=0.2)
    out, err = listener.communicate(timeout=30)
    lines = [json.loads(line) for line in out.splitlines()]
    assert listener.returncode == 0, err
    assert len(lines) == 5
    first = int(lines[0]["frame_id"].removeprefix("cam_"))
    # five consecutive frames, each result carrying its own input's header, in order
    assert [line["frame_index"] - lines[0]["frame_index"] for line in lines] == [0, 1, 2, 3, 4]
    assert [(line["frame_id"], line["stamp"]) for line in lines] == [
        (f"cam_{n}", [100 + n, 123_456_789]) for n in range(first, first + 5)]
    assert all(line["results"][0]["model"] == "person" and line["results"][0]["status"] == 0 for line in lines)
    cyclist = next(line for n, line in enumerate(lines, first) if n % 5 == 2)["results"][0]["boxes"]  # bikes[5]
    assert cyclist and cyclist[0][4] > 0.9 and 320 < cyclist[0][0] < 340

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




def _publish_in_background(publisher: Any, frames: list[Any], stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        index = 0
        while not stop.is_set():
            publisher.publish(image_message(frames[index % len(frames)], "bgr8", f"flow_{index}", 300 + index))
            index += 1
            stop.wait(0.03)

    thread = threading.Thread(target=loop, name="frames")
    thread.start()
    return thread


@pytest.mark.parametrize("signals", [(signal.SIGINT, signal.SIGINT), (signal.SIGINT, signal.SIGTERM),
                                     (signal.SIGTERM, signal.SIGTERM)], ids=["int-int", "int-term", "term-term"])
def test_two_stop_signals_50_ms_apart_while_frames_flow_exit_0_without_traceback(
        context, spin, bikes, person_config, processes, signals) -> None:
    node = start([*NODE, "--ros-args", "-p", f"config_file:={person_config}", "-p", "image_topics:=[/cam_stop]",
                  "-p", "qos.reliable:=true"])
    processes.append(node)
    probe = Probe(context)
    fused = probe.listen(FusedResult, "/vision_pipeline/fused")
    spin(probe.node, threads=2)
    publisher = probe.node.create_publisher(Image, "/cam_stop", 10)
    assert wait_for(lambda: publisher.get_subscription_count() > 0, timeout=30), "node did not start"
    stop = threading.Event()
    thread = _publish_in_background(publisher, bikes, stop)
    try:
        assert wait_for(lambda: len(fused) >= 3, timeout=30), "no results"
        node.send_signal(signals[0])
        time.sleep(0.05)
        node.send_signal(signals[1])
        _, err = node.communicate(timeout=30)
    finally:
        stop.set()
        thread.join()
    assert node.returncode == 0, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "stopped cleanly" in err
    assert "still busy" not in err


def _env_without_profile() -> dict[str, str]:
    env = ros_env()
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS"):
        env.pop(name, None)
    return env


@pytest.mark.parametrize("camera_has_profile", [False, True], ids=["stock-camera", "camera-with-profile"])
def test_a_vga_best_effort_camera_is_reported_without_the_profile_and_received_with_it(
        context, spin, tmp_path, processes, camera_has_profile) -> None:
    # The node as docs/ros.md starts it: default QoS (best effort), default Fast DDS settings of its own
    # (main() applies the shipped profile); a camera stand-in in its own process, 640x480 bgr8 at 30 fps.
    config = tmp_path / "noop.lua"
    config.write_text(f"return {{ mode = 'single', models = {{ {{ name = 'person', path = {str(SSD_MODEL)!r}, "
                      f"script = {str(SSD_SCRIPT)!r} }} }}, max_pending_frames = 1 }}\n", encoding="utf-8")
    node = subprocess.Popen([*NODE, "--ros-args", "-p", f"config_file:={config}", "-p", "image_topics:=[/vga]",
                             "-p", "diagnostics_period:=0.5", "-p", "qos.silent_input_warning:=2.0"],
                            cwd=REPO, env=_env_without_profile(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    processes.append(node)
    probe = Probe(context)
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(probe.node, threads=2)
    assert wait_for(lambda: probe.node.count_subscribers("/vga") > 0, timeout=30), "node did not start"
    camera_env = _env_without_profile()
    if camera_has_profile:
        camera_env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_large_data.xml")
    camera = subprocess.run([PYTHON, str(Path(__file__).with_name("camera_publisher.py")), "/vga", "640", "480",
                             "30", "4", "best_effort"], cwd=REPO, env=camera_env, capture_output=True, text=True,
                            timeout=60)
    published = int(camera.stdout.split()[-1])
    wait_for(lambda: False, timeout=3.0)  # the watchdog's period and the last diagnostics
    node.send_signal(signal.SIGINT)
    _, err = node.communicate(timeout=30)
    received = max((int(kv.value) for array in diagnostics for status in array.status
                    if status.name.endswith("input /vga") for kv in status.values if kv.key == "frames_in"),
                   default=0)
    warnings = [line for line in err.splitlines() if "'/vga'" in line and "WARN" in line]
    if camera_has_profile:
        assert received >= 0.9 * published, (received, published)
        assert not warnings, warnings
    else:
        assert received < 0.5 * published, (received, published)
        (warning,) = warnings
        assert "publisher(s) matched" in warning and "this node subscribes BEST_EFFORT" in warning
        assert "'/camera_stand_in': BEST_EFFORT" in warning
        assert "FASTDDS_DEFAULT_PROFILES_FILE" in warning and "qos.reliable:=true" in warning
        assert ("message size 921,600 B (over the 512 KiB shared-memory segment)" in warning
                or "message size unknown (no frame arrived yet)" in warning)


def test_pipeline_node_with_lifecycle_flag_waits_unconfigured_until_change_state_then_serves(
        context, spin, bikes, person_config, processes) -> None:
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState
    from ros_vision_pipe.msg import ModelResult
    from runtime_support import call

    node = start([*NODE, "--lifecycle", "--ros-args", "-p", f"config_file:={person_config}",
                  "-p", "image_topics:=[/cam]", "-p", "qos.reliable:=true"])
    processes.append(node)
    probe = Probe(context)
    person = probe.listen(ModelResult, "/vision_pipeline/person/result")
    spin(probe.node, threads=2)
    state = call(probe.node, GetState, "/vision_pipeline/get_state", GetState.Request(), timeout=60, resend_every=3)
    assert state.current_state.id == State.PRIMARY_STATE_UNCONFIGURED
    assert probe.node.count_subscribers("/cam") == 0  # nothing loaded, nothing subscribed
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        request = ChangeState.Request(transition=Transition(id=transition))
        assert call(probe.node, ChangeState, "/vision_pipeline/change_state", request, timeout=60).success
    publisher = probe.publisher(Image, "/cam", reliable=True)
    publisher.publish(image_message(bikes[5], "bgr8", "cam_105", 105))
    assert wait_for(lambda: len(person) == 1, timeout=30)
    assert person[0].detections and person[0].config_generation == 1
    node.send_signal(signal.SIGINT)
    _, err = node.communicate(timeout=20)
    assert node.returncode == 0 and "Traceback" not in err, err
