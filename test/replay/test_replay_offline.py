"""Offline lossless replay: every frame, in order, results stamped with the input headers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from replay_support import COMPRESSED_TOPIC, PERSON_POSE, RAW_TOPIC, read_messages, stamp_ns, without_latency
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from ros_vision_pipe.engine.records import ResultStatus
from ros_vision_pipe.frames import Frame
from ros_vision_pipe.replay.bag_reader import ImageBagReader
from ros_vision_pipe.replay.bag_replay import replay_bag
from ros_vision_pipe.replay.compare import compare_bags
from ros_vision_pipe.replay.errors import CorruptBagError, ReplayOptionsError
from ros_vision_pipe.replay.image_bag import DEFAULT_START_NS, Storage
from ros_vision_pipe.replay.options import Driver, ReplayOptions
from ros_vision_pipe.replay.report import ReplayMode
from ros_vision_pipe.result_mapping import FUSED_RESULT, MODEL_RESULT, STATUS_CODES

S = 1_000_000_000


def input_stamps(bag: Path) -> Counter[tuple[str, int]]:
    """(topic, header stamp) of every image of ``bag``."""
    with ImageBagReader(bag) as reader:
        return Counter((m.topic, stamp_ns(reader.deserialize(m).header)) for m in reader.messages())


@pytest.mark.parametrize(("input_storage", "output_storage"), [(Storage.SQLITE3, Storage.MCAP),
                                                               (Storage.MCAP, Storage.SQLITE3)])
def test_offline_replay_writes_one_result_per_model_and_frame_with_the_input_headers(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path,
        input_storage: Storage, output_storage: Storage) -> None:
    bag = make_bag(input_storage, frames=10)
    output = tmp_path / "results"
    report = replay_bag(ReplayOptions(config=person_config, bags=(bag,), output=output, storage=output_storage))

    assert (report.frames_read, report.frames_processed) == (20, 20)
    assert report.model("person").run == 20 and report.model("person").dropped == 0
    with AnyReader([output]) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == {
            "/vision_pipeline/person/result": MODEL_RESULT, "/vision_pipeline/fused": FUSED_RESULT}
    fused = list(read_messages(output, "/vision_pipeline/fused"))
    models = list(read_messages(output, "/vision_pipeline/person/result"))
    assert len(fused) == len(models) == 20
    assert Counter((m.source, stamp_ns(m.header)) for _, _, m in fused) == input_stamps(bag)
    for _, log_time, message in fused:
        assert log_time == stamp_ns(message.header)  # written at the input's log time
        assert message.header.frame_id == "camera" and message.mode == "single"
        assert message.frame_index == round((stamp_ns(message.header) - DEFAULT_START_NS) * 25 / S)
        assert [r.model for r in message.results] == ["person"]
    fresh = [m for _, _, m in models if m.status == STATUS_CODES[ResultStatus.OK]]
    assert len(fresh) == 20 and sum(len(m.detections) for m in fresh) > 0


def test_two_offline_lossless_runs_of_a_serial_pipeline_give_identical_results(
        make_bag: Callable[..., Path], tmp_path: Path) -> None:
    bag = make_bag(Storage.MCAP, compressed=False)
    runs = []
    for name in ("a", "b"):
        report = replay_bag(ReplayOptions(config=PERSON_POSE, bags=(bag,), output=tmp_path / name))
        assert report.frames_processed == 30 and report.model("pose").run > 0
        runs.append([without_latency(m) for _, _, m in read_messages(tmp_path / name)
                     if m.__msgtype__ == MODEL_RESULT])
    assert len(runs[0]) == 60
    assert runs[0] == runs[1]
    assert compare_bags(tmp_path / "a", tmp_path / "b").identical


def test_the_pipelined_driver_gives_the_results_of_run(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path) -> None:
    bag = make_bag(frames=8)
    for name, driver in (("run", Driver.RUN), ("pipelined", Driver.PIPELINED)):
        replay_bag(ReplayOptions(config=person_config, bags=(bag,), output=tmp_path / name, driver=driver))
    run = sorted(without_latency(m) for _, _, m in read_messages(tmp_path / "run", "/vision_pipeline/person/result"))
    pipelined = sorted(without_latency(m) for _, _, m in read_messages(tmp_path / "pipelined",
                                                                         "/vision_pipeline/person/result"))
    assert len(run) == 16 and run == pipelined


def test_parallel_async_lossless_replay_applies_intervals_by_frame_index_and_drops_nothing(
        make_bag: Callable[..., Path], async_config: Path, tmp_path: Path) -> None:
    bag = make_bag(frames=12, compressed=False)
    report = replay_bag(ReplayOptions(config=async_config, bags=(bag,), output=tmp_path / "out"))
    assert report.frames_processed == 12 and report.engine_frames_dropped == 0
    slow = {m.frame_index: m for _, _, m in read_messages(tmp_path / "out", "/vision_pipeline/slow/result")}
    assert sorted(slow) == list(range(12))
    assert [i for i, m in slow.items() if m.status == STATUS_CODES[ResultStatus.OK]] == [0, 3, 6, 9]
    assert all(m.status == STATUS_CODES[ResultStatus.REUSED] and m.age_frames == i % 3
               for i, m in slow.items() if i % 3)
    row = report.model("slow")
    assert (row.run, row.reused, row.dropped, row.age_max) == (4, 8, 0, 2)


def test_copy_images_writes_ros1_input_images_as_ros2_messages(
        make_bag: Callable[..., Path], person_config: Path, clip: list[Frame], tmp_path: Path) -> None:
    bag = make_bag(Storage.ROS1, frames=4)
    replay_bag(ReplayOptions(config=person_config, bags=(bag,), output=tmp_path / "out", copy_images=True))
    typestore = get_typestore(Stores.ROS2_KILTED)
    with AnyReader([tmp_path / "out"]) as reader:
        copied = [c for c in reader.connections if c.topic in (RAW_TOPIC, COMPRESSED_TOPIC)]
        images: list[tuple[str, Any]] = [(c.topic, typestore.deserialize_cdr(data, c.msgtype))
                                         for c, _, data in reader.messages(connections=copied)]
    raw = [m for topic, m in images if topic == RAW_TOPIC]
    assert len(raw) == 4 and len(images) == 8
    assert all(np.array_equal(np.asarray(m.data).reshape(272, 640, 3), clip[i].image) for i, m in enumerate(raw))
    assert [stamp_ns(m.header) for m in raw] == [DEFAULT_START_NS + i * S // 25 for i in range(4)]


def test_a_truncated_bag_is_processed_up_to_the_damage_then_the_error_names_it(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path) -> None:
    bag = make_bag(Storage.MCAP, compressed=False)
    mcap = next(bag.glob("*.mcap"))
    with mcap.open("r+b") as handle:
        handle.truncate(mcap.stat().st_size // 2)
    output = tmp_path / "out"
    with pytest.raises(CorruptBagError, match=rf"{bag.name}: bag is unreadable after (\d+) image message\(s\).*"
                       r"truncated or damaged.*\((\d+) frame\(s\) processed and written before it\)") as caught:
        replay_bag(ReplayOptions(config=person_config, bags=(bag,), output=output))
    report = caught.value.report
    assert report is not None and 5 <= report.frames_processed < 30
    assert report.read_error is not None and "truncated" in report.read_error
    assert len(list(read_messages(output, "/vision_pipeline/fused"))) == report.frames_processed


def looping_time(index: int, timestamp: float) -> tuple[int, int]:
    """Log times and stamps that loop back after frame 10, jump an hour at 20, and swap pairs of stamps."""
    base = DEFAULT_START_NS + (index % 10) * S // 25 if index < 20 else DEFAULT_START_NS + 3600 * S + index * S // 25
    swap = S // 50 if 3 < index < 8 else 0  # frames 4-7: each pair's stamps in reverse order
    stamp = base + swap if index % 2 == 0 else base - swap
    return base, stamp


@pytest.mark.parametrize("mode", list(ReplayMode))
def test_loops_time_jumps_and_out_of_order_stamps_do_not_break_replay(
        make_bag: Callable[..., Path], person_config: Path, tmp_path: Path, mode: ReplayMode) -> None:
    bag = make_bag(Storage.MCAP, compressed=False, time_map=looping_time)
    output = tmp_path / "out"
    report = replay_bag(ReplayOptions(config=person_config, bags=(bag,), output=output, mode=mode, rate=1.0,
                                      max_gap_s=0.2))
    assert report.frames_read == 30 and report.frames_processed == 30
    assert report.wall_s < 30  # the hour-long jump was not waited for
    assert Counter((m.source, stamp_ns(m.header)) for _, _, m in read_messages(output, "/vision_pipeline/fused")
                   ) == input_stamps(bag)
    timing = report.timing
    assert timing.stamps_repeated >= 8 and timing.stamps_out_of_order >= 2
    if mode is ReplayMode.REALTIME:
        assert timing.forward_gaps == 1 and timing.skipped_s > 3000


@pytest.mark.parametrize(("changes", "message"), [
    ({"rate": 0.0}, "rate must be a positive number, got 0.0"),
    ({"max_frames": 0}, "max_frames must be >= 1, got 0"),
    ({"storage": Storage.ROS1}, "output storage 'ros1' is not supported"),
    ({"mode": ReplayMode.REALTIME, "driver": Driver.PIPELINED}, "driver 'pipelined' is for lossless replay"),
    ({"copy_images": True}, "copy_images needs an output bag"),
    ({"namespace": "vision"}, "namespace must be absolute"),
])
def test_invalid_options_are_refused_naming_the_option(tmp_path: Path, changes: dict[str, object],
                                                       message: str) -> None:
    options = ReplayOptions(config=tmp_path / "c.lua", bags=(tmp_path / "bag",), **changes)  # type: ignore[arg-type]
    with pytest.raises(ReplayOptionsError, match=message):
        replay_bag(options)


def test_an_undecodable_image_is_rejected_and_counted_while_replay_goes_on(
        person_config: Path, clip: list[Frame], tmp_path: Path) -> None:
    import cv2
    from rosbags.rosbag2 import Writer

    typestore = get_typestore(Stores.ROS2_KILTED)
    types = typestore.types
    bag = tmp_path / "broken_jpeg"
    with Writer(bag, version=9) as writer:
        connection = writer.add_connection(COMPRESSED_TOPIC, "sensor_msgs/msg/CompressedImage", typestore=typestore)
        for index in range(3):
            payload = b"not a jpeg" if index == 1 else cv2.imencode(".jpg", clip[index].image)[1].tobytes()
            header = types["std_msgs/msg/Header"](
                stamp=types["builtin_interfaces/msg/Time"](sec=index, nanosec=0), frame_id="camera")
            message = types["sensor_msgs/msg/CompressedImage"](
                header=header, format="jpeg", data=np.frombuffer(payload, np.uint8))
            writer.write(connection, index * S, typestore.serialize_cdr(message, connection.msgtype))
    report = replay_bag(ReplayOptions(config=person_config, bags=(bag,), output=tmp_path / "out"))
    assert (report.frames_read, report.frames_processed, report.topic(COMPRESSED_TOPIC).rejected) == (3, 2, 1)
    assert report.problems == (f"rejected on '{COMPRESSED_TOPIC}': corrupt or undecodable compressed image "
                               "(format 'jpeg', data 10 B)",)
    assert [stamp_ns(m.header) for _, _, m in read_messages(tmp_path / "out", "/vision_pipeline/fused")] == [0, 2 * S]
