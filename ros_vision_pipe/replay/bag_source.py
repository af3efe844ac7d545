"""Where a bag's serialized messages come from: rosbags' indexed reader, or a salvage scan.

``open_source`` identifies the storage of one bag (a rosbag2 folder, a bare ``.mcap``/``.db3``
file, or one or more ROS 1 ``.bag`` files) and opens it with rosbags' ``AnyReader``; an MCAP
file or ROS 1 bag that was not closed (no summary / no index) is read record by record
(``salvage.py``) instead. Failures inside the storage layer surface as ``StorageFailure``,
which ``ImageBagReader`` turns into ``CorruptBagError``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from rosbags.typesys import Stores, get_typestore

from ros_vision_pipe.replay.errors import BagOpenError
from ros_vision_pipe.replay.salvage import ScannedChannel, ScannedMessage, ScanStopped, scan_mcap, scan_ros1


class MessageSource(Protocol):
    """Where serialized messages come from (the indexed reader, or a salvage scan)."""

    ros1: bool
    salvaged: bool

    def topics(self) -> dict[str, tuple[str, int | None]]:
        """Topic -> (message type, message count)."""
        ...

    def records(self, topics: set[str]) -> Iterator[tuple[str, int, bytes | memoryview]]:
        """(topic, log time ns, data) of ``topics``' messages in log-time order."""
        ...

    def close(self) -> None:
        """Release the files."""
        ...


class StorageFailure(Exception):
    """Reading stopped inside the storage layer (wrapped into ``CorruptBagError`` by the reader)."""


class IndexedSource:
    """rosbags' ``AnyReader``: the normal path for complete bags."""

    salvaged = False

    def __init__(self, paths: Sequence[Path]) -> None:
        from rosbags.highlevel import AnyReader

        self.ros1 = all(p.suffix == ".bag" for p in paths)
        default = get_typestore(Stores.ROS1_NOETIC if self.ros1 else Stores.ROS2_KILTED)
        self._reader = AnyReader(list(paths), default_typestore=default)
        self._reader.open()

    def topics(self) -> dict[str, tuple[str, int | None]]:
        return {name: (info.msgtype or "", info.msgcount) for name, info in self._reader.topics.items()}

    def records(self, topics: set[str]) -> Iterator[tuple[str, int, bytes | memoryview]]:
        connections = [c for c in self._reader.connections if c.topic in topics]
        iterator = self._reader.messages(connections=connections)
        while True:
            try:
                connection, timestamp, data = next(iterator)
            except StopIteration:
                return
            except Exception as error:  # sqlite3.DatabaseError, rosbags ReaderError, zstd, OSError...
                raise StorageFailure(f"{type(error).__name__}: {error}") from error
            yield connection.topic, timestamp, data

    def close(self) -> None:
        self._reader.close()


class SalvageSource:
    """A record-by-record scan of an MCAP file or a ROS 1 bag that lost its index."""

    salvaged = True

    def __init__(self, path: Path, scan: Callable[[Path], Iterator[ScannedChannel | ScannedMessage]],
                 ros1: bool) -> None:
        self._path = path
        self._scan = scan
        self.ros1 = ros1
        self._channels: dict[int, ScannedChannel] = {}
        self._counts: Counter[int] = Counter()
        self.stopped: ScanStopped | None = None
        try:
            for item in scan(path):
                if isinstance(item, ScannedChannel):
                    self._channels[item.id] = item
                else:
                    self._counts[item.channel] += 1
        except ScanStopped as stop:
            self.stopped = stop

    def topics(self) -> dict[str, tuple[str, int | None]]:
        topics: dict[str, tuple[str, int | None]] = {}
        for channel in self._channels.values():
            _, count = topics.get(channel.topic, (channel.msgtype, 0))
            topics[channel.topic] = (channel.msgtype, (count or 0) + self._counts[channel.id])
        return topics

    def records(self, topics: set[str]) -> Iterator[tuple[str, int, bytes | memoryview]]:
        channels: dict[int, str] = {}
        try:
            for item in self._scan(self._path):
                if isinstance(item, ScannedChannel):
                    if item.topic in topics:
                        channels[item.id] = item.topic
                elif item.channel in channels:
                    yield channels[item.channel], item.log_time_ns, item.data
        except ScanStopped as stop:
            raise StorageFailure(f"the file is truncated or damaged: {stop}") from stop

    def close(self) -> None:
        pass


def describe_paths(paths: Sequence[Path]) -> str:
    return ", ".join(str(p) for p in paths)


def _salvageable(paths: Sequence[Path]) -> tuple[Path, bool] | None:
    """(file, is ROS 1) when ``paths`` is a single MCAP file / ROS 1 bag (or a folder with one MCAP)."""
    if len(paths) != 1:
        return None
    path = paths[0]
    if path.is_dir():
        files = sorted(path.glob("*.mcap"))
        return (files[0], False) if len(files) == 1 else None
    if path.suffix == ".mcap":
        return path, False
    if path.suffix == ".bag":
        return path, True
    return None


def open_source(paths: Sequence[Path]) -> MessageSource:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise BagOpenError(f"no such bag: {', '.join(repr(m) for m in missing)}")
    if len(paths) > 1 and not all(p.suffix == ".bag" for p in paths):
        raise BagOpenError(f"several bags are only supported for ROS 1 .bag files, got {describe_paths(paths)}")
    try:
        return IndexedSource(paths)
    except Exception as error:  # AnyReaderError, FileNotFoundError (no metadata.yaml), sqlite3 errors...
        salvage = _salvageable(paths)
        if salvage is None:
            raise BagOpenError(f"{describe_paths(paths)}: cannot open bag: {error}") from error
        path, ros1 = salvage
        source = SalvageSource(path, scan_ros1 if ros1 else scan_mcap, ros1)
        if not source.topics():
            reason = source.stopped.reason if source.stopped else "it holds no message"
            raise BagOpenError(f"{path}: cannot open bag ({error}) nor read it record by record: {reason}") from error
        return source


__all__ = ["IndexedSource", "MessageSource", "SalvageSource", "StorageFailure", "describe_paths", "open_source"]
