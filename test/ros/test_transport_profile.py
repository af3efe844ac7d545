"""The shipped Fast DDS profile: it loads, and camera-size frames cross processes best effort with it.

docs/ros.md "Camera-size images"; bench/bench_transport.py measures the choices. Each test runs a
camera stand-in (camera_publisher.py) and a receiver (image_counter.py, which applies the node's
default profile as ``pipeline_node``'s ``main()`` does) as two processes.
"""

from __future__ import annotations

import subprocess
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
from ros_support import PYTHON, REPO, ros_env

PROFILE = REPO / "config" / "fastdds_large_data.xml"
HERE = Path(__file__).parent
NS = {"dds": "http://www.eprosima.com"}
FRAME_1080P = 1920 * 1080 * 3


def _env(profile: Path | None) -> dict[str, str]:
    env = ros_env()
    for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS",
                 "RMW_FASTRTPS_USE_QOS_FROM_XML", "RMW_FASTRTPS_PUBLICATION_MODE"):
        env.pop(name, None)
    if profile is not None:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile)
    return env


def _camera_to_counter(topic: str, width: int, height: int, fps: int, seconds: int,
                       camera_profile: Path | None) -> tuple[int, int, str]:
    """(received, published, receiver's profile) of a best-effort camera process and a receiver process."""
    counter = subprocess.Popen([PYTHON, str(HERE / "image_counter.py"), topic, "best_effort"], cwd=REPO,
                               env=_env(None), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        camera = subprocess.run([PYTHON, str(HERE / "camera_publisher.py"), topic, str(width), str(height),
                                 str(fps), str(seconds), "best_effort"], cwd=REPO, env=_env(camera_profile),
                                capture_output=True, text=True, timeout=90)
        assert camera.returncode == 0, camera.stderr
        time.sleep(1.5)  # the last frames in flight
        out, err = counter.communicate(input="", timeout=30)
    finally:
        if counter.poll() is None:
            counter.kill()
            counter.communicate(timeout=10)
    assert counter.returncode == 0, err
    _, received, _, profile = out.split()
    return int(received), int(camera.stdout.split()[-1]), profile


def test_the_shipped_profile_is_valid_fast_dds_xml_whose_segment_holds_two_1080p_frames() -> None:
    root = ElementTree.parse(PROFILE).getroot()
    declared = {d.findtext("dds:transport_id", namespaces=NS): d for d in root.findall(".//dds:transport_descriptor", NS)}
    participant = root.find(".//dds:participant[@is_default_profile='true']", NS)
    assert participant is not None
    assert participant.findtext("./dds:rtps/dds:useBuiltinTransports", namespaces=NS) == "false"
    used = [t.text for t in participant.findall("./dds:rtps/dds:userTransports/dds:transport_id", NS)]
    assert used and all(name in declared for name in used), (used, list(declared))
    (shm,) = [declared[name] for name in used if declared[name].findtext("dds:type", namespaces=NS) == "SHM"]
    assert int(shm.findtext("dds:segment_size", namespaces=NS) or 0) >= 2 * FRAME_1080P


@pytest.mark.parametrize("camera_profile", [PROFILE, None], ids=["camera-with-profile", "stock-camera"])
def test_1080p_best_effort_frames_reach_the_node_default_receiver_only_from_a_camera_with_the_profile(
        camera_profile: Path | None) -> None:
    # 1920x1080 bgr8 = 6.2 MB a frame, 10 fps for 3 s: the receiver (no variable set: the node's default
    # applies the shipped profile) gets them when the SENDING process has the profile, not otherwise.
    received, published, profile = _camera_to_counter("/big", 1920, 1080, 10, 3, camera_profile)
    assert profile == str(PROFILE)
    assert published >= 20
    if camera_profile is not None:
        # 0.8, not 0.9: on the loaded 2-core CI machine the first frames can leave before discovery has
        # matched the two processes (one fresh-clone run got 25 / 29); a stock camera delivers 0-23 %.
        assert received >= 0.8 * published, (received, published)
    else:
        assert received < 0.5 * published, (received, published)
