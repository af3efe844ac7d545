"""Reading image topics of rosbag2 (sqlite3, MCAP) and ROS 1 bags; named errors for bad bags and topics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from replay_support import COMPRESSED_TOPIC, RAW_TOPIC
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from ros_vision_pipe.frames import Frame
from ros_vision_pipe.replay.bag_reader import ImageBagReader, ImageKind
from ros_vision_pipe.replay.errors import BagOpenError, CorruptBagError, TopicNotFoundError, TopicTypeError
from ros_vision_pipe.replay.image_bag import DEFAULT_START_NS, Storage


def truncate(bag: Path, fraction: float) -> Path:
    """Cut the storage file of ``bag`` to ``fraction`` of its size (a recorder that died)."""
    files = [bag] if bag.is_file() else [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    for file in files:
        with file.open("r+b") as handle:
            handle.truncate(int(file.stat().st_size * fraction))
    return bag


@pytest.mark.parametrize("storage", list(Storage))
def test_reader_yields_raw_and_compressed_frames_of_every_storage_in_recording_order(
        make_bag: Callable[..., Path], clip: list[Frame], storage: Storage) -> None:
    bag = make_bag(storage, frames=5)
    with ImageBagReader(bag) as reader:
        assert [(t.name, t.kind, t.count) for t in reader.topics] == [
            (RAW_TOPIC, ImageKind.RAW, 5), (COMPRESSED_TOPIC, ImageKind.COMPRESSED, 5)]
        assert reader.ros1 is (storage is Storage.ROS1)
        frames = [reader.decode(m) for m in reader.messages()]
    assert [(f.topic, f.index) for f in frames[:4]] == [(RAW_TOPIC, 0), (COMPRESSED_TOPIC, 0),
                                                         (RAW_TOPIC, 1), (COMPRESSED_TOPIC, 1)]
    raw = [f for f in frames if f.topic == RAW_TOPIC]
    jpeg = [f for f in frames if f.topic == COMPRESSED_TOPIC]
    assert all(np.array_equal(f.image, clip[f.index].image) for f in raw)
    assert all(np.abs(f.image.astype(int) - clip[f.index].image).mean() < 4 for f in jpeg)
    assert [f.stamp.nanoseconds for f in raw] == [DEFAULT_START_NS + round(i / 25 * 1e9) for i in range(5)]
    assert {f.frame_id for f in frames} == {"camera"} and {f.encoding for f in frames} == {"bgr8"}


def test_a_bare_mcap_file_is_read_like_its_folder(make_bag: Callable[..., Path]) -> None:
    bag = make_bag(Storage.MCAP, frames=3, compressed=False)
    with ImageBagReader(next(bag.glob("*.mcap"))) as reader:
        assert sum(1 for _ in reader.messages()) == 3


def test_missing_topic_names_the_bag_and_its_image_topics(make_bag: Callable[..., Path]) -> None:
    bag = make_bag(frames=2)
    with pytest.raises(TopicNotFoundError, match=rf"{bag.name}: no topic '/left/image_raw'; image topics in the "
                       rf"bag: \['{RAW_TOPIC}', '{COMPRESSED_TOPIC}'\]"):
        ImageBagReader(bag, ["/left/image_raw"])


def test_a_topic_of_another_type_is_refused_with_its_type(tmp_path: Path) -> None:
    typestore = get_typestore(Stores.ROS2_KILTED)
    bag = tmp_path / "strings"
    with Writer(bag, version=9) as writer:
        connection = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=typestore)
        message = typestore.types["std_msgs/msg/String"](data="hi")
        writer.write(connection, 1, typestore.serialize_cdr(message, "std_msgs/msg/String"))
    with pytest.raises(TopicTypeError, match=r"topic '/chatter' carries 'std_msgs/msg/String'"):
        ImageBagReader(bag, ["/chatter"])
    with pytest.raises(TopicNotFoundError, match=r"no sensor_msgs/Image or CompressedImage topic in the bag; "
                       r"its topics: \['/chatter'\]"):
        ImageBagReader(bag)


def test_a_missing_bag_is_a_bag_open_error(tmp_path: Path) -> None:
    with pytest.raises(BagOpenError, match=r"no such bag: '.*missing_bag'"):
        ImageBagReader(tmp_path / "missing_bag")


def test_a_corrupt_sqlite3_bag_is_a_bag_open_error_naming_the_file(make_bag: Callable[..., Path]) -> None:
    bag = make_bag(Storage.SQLITE3, frames=3)
    database = next(bag.glob("*.db3"))
    with database.open("r+b") as handle:
        handle.write(b"this is not a database" * 10)
    with pytest.raises(BagOpenError, match=rf"{bag.name}: cannot open bag: .*{database.name}"):
        ImageBagReader(bag)


@pytest.mark.parametrize("storage", [Storage.MCAP, Storage.ROS1])
def test_a_truncated_bag_yields_what_is_readable_then_raises_corrupt_bag_error(
        make_bag: Callable[..., Path], storage: Storage) -> None:
    bag = truncate(make_bag(storage, frames=20, compressed=False), 0.5)
    read = 0
    with ImageBagReader(bag) as reader, pytest.raises(
            CorruptBagError, match=rf"{bag.name}: bag is unreadable after \d+ image message\(s\) \(last good "
                                   rf"message: '{RAW_TOPIC}' at log time \d+ ns\): the file is truncated or damaged"):
        assert reader.salvaged
        for message in reader.messages():
            reader.decode(message)
            read += 1
    assert 5 <= read < 20
