"""The package's messages registered with rosbags, without a ROS install."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from replay_support import REPO

from ros_vision_pipe.replay.errors import MessageDefinitionsNotFoundError
from ros_vision_pipe.replay.typestore import MESSAGE_NAMES, candidate_msg_dirs, find_msg_dir, package_typestore


def test_package_typestore_knows_every_message_and_sensor_msgs() -> None:
    typestore = package_typestore()
    for name in MESSAGE_NAMES:
        assert f"ros_vision_pipe/msg/{name}" in typestore.types
    assert "sensor_msgs/msg/Image" in typestore.types


def test_registered_types_hash_like_the_rosidl_build_when_one_exists() -> None:
    built = REPO / "install" / "share" / "ros_vision_pipe" / "msg" / "FusedResult.json"
    if not built.is_file():
        pytest.skip("messages not built (bash tools/setup_env.sh)")
    description = json.loads(built.read_text())
    hashes = {entry["type_name"]: entry["hash_string"] for entry in description["type_hashes"]}
    assert package_typestore().hash_rihs01("ros_vision_pipe/msg/FusedResult") == hashes[
        "ros_vision_pipe/msg/FusedResult"]


def test_message_definitions_are_found_in_an_install_prefix(tmp_path: Path) -> None:
    share = tmp_path / "prefix" / "share" / "ros_vision_pipe" / "msg"
    share.mkdir(parents=True)
    for name in MESSAGE_NAMES:
        shutil.copy(REPO / "msg" / f"{name}.msg", share)
    module = tmp_path / "prefix" / "lib" / "python3.11" / "site-packages" / "ros_vision_pipe" / "replay" / "ts.py"
    module.parent.mkdir(parents=True)
    module.touch()
    candidates = candidate_msg_dirs(module, environ={})
    assert candidates == [share]
    assert find_msg_dir(candidates) == share
    assert "ros_vision_pipe/msg/ModelResult" in package_typestore(share).types


def test_missing_message_definitions_name_the_folders_tried(tmp_path: Path) -> None:
    with pytest.raises(MessageDefinitionsNotFoundError, match=r"cannot find ros_vision_pipe's message "
                       r"definitions .*looked in \[.*nowhere"):
        find_msg_dir([tmp_path / "nowhere"])
