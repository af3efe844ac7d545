"""Fixtures of the replay tests: real clip frames, bags written into tmp_path, small configs.

Every bag is generated here from the cyclist clip (no binary bag is committed).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from replay_support import CLIP_FIRST, CLIP_FRAMES, COMPRESSED_TOPIC, RAW_TOPIC, SSD_MODEL, SSD_SCRIPT

from ros_vision_pipe.frames import Frame, iter_frames
from ros_vision_pipe.replay.image_bag import ImageTopicSpec, Storage, TimeMap, default_time_map, write_image_bag


@pytest.fixture(scope="session")
def clip() -> list[Frame]:
    """Frames 100-129 of the cyclist clip (bgr8 640x272; the cyclist is detected from frame 103 on)."""
    frames = list(iter_frames("sample:bikes", CLIP_FIRST + CLIP_FRAMES))[CLIP_FIRST:]
    return [Frame(i, f.image, f.encoding, i / 25.0) for i, f in enumerate(frames)]


@pytest.fixture
def make_bag(tmp_path: Path, clip: list[Frame]) -> Callable[..., Path]:
    """``make_bag(storage, raw=True, compressed=True, frames=N, time_map=...)`` writes a bag of the clip."""
    counter = iter(range(1000))

    def make(storage: Storage = Storage.SQLITE3, *, raw: bool = True, compressed: bool = True,
             frames: int | None = None, time_map: TimeMap = default_time_map, name: str | None = None) -> Path:
        specs = ([ImageTopicSpec(RAW_TOPIC)] if raw else []) + (
            [ImageTopicSpec(COMPRESSED_TOPIC, compressed=True)] if compressed else [])
        path = tmp_path / (name or f"in_{storage.value}_{next(counter)}")
        return write_image_bag(path, clip[:frames], specs, storage=storage, time_map=time_map)

    return make


@pytest.fixture
def make_person_config(tmp_path: Path) -> Callable[..., Path]:
    """``make_person_config(max_pending_frames=8, submit_overflow="reject")``: the SSDLite person
    detector alone (single mode), with the frame-level pipeline's bound and policy."""

    def make(max_pending_frames: int = 8, submit_overflow: str = "reject") -> Path:
        path = tmp_path / f"person_{max_pending_frames}_{submit_overflow}.lua"
        path.write_text(
            f"return {{ mode = 'single', max_pending_frames = {max_pending_frames}, "
            f"submit_overflow = {submit_overflow!r}, models = {{\n"
            f"  {{ name = 'person', path = {str(SSD_MODEL)!r}, script = {str(SSD_SCRIPT)!r} }},\n"
            "} }\n",
            encoding="utf-8",
        )
        return path

    return make


@pytest.fixture
def person_config(make_person_config: Callable[..., Path]) -> Path:
    """A single-model pipeline: the SSDLite person detector (room for 64 pending frames)."""
    return make_person_config(max_pending_frames=64)


@pytest.fixture
def async_config(tmp_path: Path) -> Path:
    """parallel_async: the person detector on every frame, a second detector instance every 3rd frame."""
    path = tmp_path / "async.lua"
    path.write_text(
        "return { mode = 'parallel_async', models = {\n"
        f"  {{ name = 'person', path = {str(SSD_MODEL)!r}, script = {str(SSD_SCRIPT)!r}, max_queue_size = 1 }},\n"
        f"  {{ name = 'slow', path = {str(SSD_MODEL)!r}, script = {str(SSD_SCRIPT)!r}, frame_interval = 3,\n"
        "     max_queue_size = 1, drop_on_overflow = true },\n"
        "} }\n",
        encoding="utf-8",
    )
    return path
