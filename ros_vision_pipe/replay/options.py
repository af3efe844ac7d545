"""The options of a replay, validated once (``ReplayOptions.validated``)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace
from pathlib import Path

from ros_vision_pipe.replay.errors import ReplayOptionsError
from ros_vision_pipe.replay.image_bag import Storage
from ros_vision_pipe.replay.report import ReplayMode
from ros_vision_pipe.replay.result_bag import DEFAULT_NAMESPACE


class Driver(enum.Enum):
    """Which engine API lossless replay drives."""

    RUN = "run"  # Pipeline.run per frame: one frame in flight (the node's way)
    PIPELINED = "pipelined"  # Pipeline.submit / wait_result: several frames in flight


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay, how, and where the results go.

    Attributes:
        config: Pipeline configuration (Lua).
        bags: A rosbag2 folder / ``.mcap`` / ``.db3`` file, or one or more ROS 1 ``.bag`` files.
        topics: Image topics to replay; every image topic of the bag when None.
        output: Output rosbag2 folder (must not exist); no bag is written when None.
        storage: Output storage, ``SQLITE3`` or ``MCAP``.
        namespace: Namespace of the result topics (the node's ``/vision_pipeline`` by default).
        copy_images: Also copy the input images into the output bag.
        mode: ``LOSSLESS`` (offline, every frame) or ``REALTIME`` (recorded pace).
        rate: Real-time speed factor (1.0 = recorded rate).
        max_gap_s: Real-time: longest recorded gap waited for, seconds.
        driver: Lossless: ``RUN`` (one frame at a time) or ``PIPELINED`` (frame-level pipeline).
        max_frames: Stop after this many frames (all topics together).
        prefetch: Frames read and decoded ahead of the pipeline.
    """

    config: Path
    bags: tuple[Path, ...]
    topics: tuple[str, ...] | None = None
    output: Path | None = None
    storage: Storage = Storage.SQLITE3
    namespace: str = DEFAULT_NAMESPACE
    copy_images: bool = False
    mode: ReplayMode = ReplayMode.LOSSLESS
    rate: float = 1.0
    max_gap_s: float = 1.0
    driver: Driver = Driver.RUN
    max_frames: int | None = None
    prefetch: int = 8

    def validated(self) -> ReplayOptions:
        """These options with paths made ``Path``; the one place bad values are rejected.

        Raises:
            ReplayOptionsError: Naming the option and the value.
        """
        if not self.bags:
            raise ReplayOptionsError("no input bag given")
        if self.storage is Storage.ROS1:
            raise ReplayOptionsError(f"output storage {self.storage.value!r} is not supported; use sqlite3 or mcap")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ReplayOptionsError(f"rate must be a positive number, got {self.rate!r}")
        if not self.max_gap_s > 0:
            raise ReplayOptionsError(f"max_gap_s must be > 0, got {self.max_gap_s!r}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ReplayOptionsError(f"max_frames must be >= 1, got {self.max_frames!r}")
        if self.prefetch < 1:
            raise ReplayOptionsError(f"prefetch must be >= 1, got {self.prefetch!r}")
        if self.mode is ReplayMode.REALTIME and self.driver is Driver.PIPELINED:
            raise ReplayOptionsError("driver 'pipelined' is for lossless replay; real-time replay feeds frames "
                                     "as a camera does")
        if self.topics is not None and not self.topics:
            raise ReplayOptionsError("topics is empty; give at least one topic or None for every image topic")
        if not self.namespace.startswith("/"):
            raise ReplayOptionsError(f"namespace must be absolute (start with '/'), got {self.namespace!r}")
        if self.copy_images and self.output is None:
            raise ReplayOptionsError("copy_images needs an output bag")
        return replace(self, config=Path(self.config), bags=tuple(Path(b) for b in self.bags),
                       output=None if self.output is None else Path(self.output))


__all__ = ["Driver", "ReplayOptions"]
