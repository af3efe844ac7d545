"""Read what is readable of a truncated MCAP or ROS 1 bag, record by record.

A recorder that crashes (power loss, OOM kill, full disk) leaves an MCAP file without its
summary and footer, or a ROS 1 bag without its index. rosbags refuses both ("File end magic
is invalid", "Bag is not indexed"). These scanners walk the records from the start of the
file instead, yield every complete message, and stop at the first record that is cut or
damaged, raising ``ScanStopped`` with the byte offset and the reason.

A scanner yields ``ScannedChannel`` (before the channel's first message) and
``ScannedMessage`` items, in file order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

_MCAP_MAGIC = b"\x89MCAP0\r\n"
_ROS1_MAGIC = b"#ROSBAG V2.0\n"


class ScanStopped(Exception):
    """A scan met a record it cannot read (cut short or damaged).

    Attributes:
        offset: Byte offset of the record in the file.
        reason: What was wrong.
    """

    def __init__(self, offset: int, reason: str) -> None:
        """Keep where and why the scan stopped."""
        super().__init__(f"unreadable record at byte {offset}: {reason}")
        self.offset = offset
        self.reason = reason


@dataclass(frozen=True)
class ScannedChannel:
    """A topic announced in the file.

    Attributes:
        id: Channel (MCAP) or connection (ROS 1) id.
        topic: Topic name.
        msgtype: Message type, ``pkg/msg/Name``.
    """

    id: int
    topic: str
    msgtype: str


@dataclass(frozen=True)
class ScannedMessage:
    """One complete message.

    Attributes:
        channel: Id of its ``ScannedChannel``.
        log_time_ns: Recording time, nanoseconds.
        data: Serialized message (CDR for MCAP, ROS 1 serialization for ROS 1 bags).
    """

    channel: int
    log_time_ns: int
    data: bytes


ScanItem = ScannedChannel | ScannedMessage


def _read(bio: BinaryIO, size: int, offset: int, what: str) -> bytes:
    data = bio.read(size)
    if len(data) != size:
        raise ScanStopped(offset, f"{what} is cut short ({len(data)} of {size} bytes)")
    return data


def _string(rec: BinaryIO, offset: int) -> str:
    (size,) = struct.unpack("<I", _read(rec, 4, offset, "string length"))
    return _read(rec, size, offset, "string").decode("utf-8", errors="replace")


def _mcap_records(bio: BinaryIO, end: int | None, base: int, schemas: dict[int, str]) -> Iterator[ScanItem]:
    """Yield the items of a record stream (the file's data section, or a chunk's records)."""
    while end is None or bio.tell() < end:
        offset = base + bio.tell()
        head = bio.read(9)
        if not head and end is None:
            raise ScanStopped(offset, "the file ends without an MCAP footer")
        if len(head) != 9:
            raise ScanStopped(offset, "record header is cut short")
        opcode, length = head[0], struct.unpack("<Q", head[1:])[0]
        if opcode in (0x02, 0x0F):  # footer, data end: the data section is complete
            return
        body = _read(bio, length, offset, f"record 0x{opcode:02x}")
        rec = BytesIO(body)
        try:
            if opcode == 0x03:  # schema
                (schema_id,) = struct.unpack("<H", rec.read(2))
                schemas[schema_id] = _string(rec, offset)
            elif opcode == 0x04:  # channel
                channel_id, schema_id = struct.unpack("<HH", rec.read(4))
                topic = _string(rec, offset)
                yield ScannedChannel(channel_id, topic, schemas.get(schema_id, ""))
            elif opcode == 0x05:  # message
                channel_id, _sequence, log_time, _publish_time = struct.unpack("<HIQQ", rec.read(22))
                yield ScannedMessage(channel_id, log_time, body[22:])
            elif opcode == 0x06:  # chunk
                _start, _end, size, crc = struct.unpack("<QQQI", rec.read(28))
                compression = _string(rec, offset)
                (compressed_size,) = struct.unpack("<Q", rec.read(8))
                from rosbags.rosbag2.storage_mcap import decompress

                try:
                    raw = decompress(_read(rec, compressed_size, offset, "chunk data"), compression, size, crc)
                except ScanStopped:
                    raise
                except Exception as error:  # rosbags ReaderError, zstd/lz4 errors
                    raise ScanStopped(offset, f"chunk cannot be decompressed: {error}") from error
                yield from _mcap_records(BytesIO(raw), size, offset, schemas)
        except struct.error as error:
            raise ScanStopped(offset, f"record 0x{opcode:02x} is malformed: {error}") from error


def scan_mcap(path: Path) -> Iterator[ScanItem]:
    """Yield the channels and messages of an MCAP file from its start, without its index.

    Raises:
        ScanStopped: At the first record that is cut short or damaged (also when the file
            ends without a footer: a recording that was not closed).
    """
    with path.open("rb") as bio:
        if bio.read(8) != _MCAP_MAGIC:
            raise ScanStopped(0, "not an MCAP file (bad magic)")
        yield from _mcap_records(bio, None, 0, {})


def _ros1_header(bio: BinaryIO, offset: int) -> dict[str, bytes]:
    (size,) = struct.unpack("<I", _read(bio, 4, offset, "record header length"))
    raw = _read(bio, size, offset, "record header")
    fields: dict[str, bytes] = {}
    pos = 0
    while pos < size:
        if pos + 4 > size:
            raise ScanStopped(offset, "record header field is cut short")
        (length,) = struct.unpack_from("<I", raw, pos)
        name, sep, value = raw[pos + 4:pos + 4 + length].partition(b"=")
        if not sep or pos + 4 + length > size:
            raise ScanStopped(offset, "record header field is malformed")
        fields[name.decode("utf-8", errors="replace")] = value
        pos += 4 + length
    return fields


def _ros1_msgtype(name: str) -> str:
    package, _, message = name.partition("/")
    return f"{package}/msg/{message}" if "/msg/" not in name else name


def _ros1_records(bio: BinaryIO, end: int | None, base: int, seen: set[int]) -> Iterator[ScanItem]:
    from rosbags.rosbag1.reader import decompressors

    while end is None or bio.tell() < end:
        offset = base + bio.tell()
        if end is None and not bio.read(1):
            return  # clean end of an unindexed file
        if end is None:
            bio.seek(-1, 1)
        header = _ros1_header(bio, offset)
        (size,) = struct.unpack("<I", _read(bio, 4, offset, "record data length"))
        data = _read(bio, size, offset, "record data")
        op = header.get("op", b"\x00")[0]
        try:
            if op == 0x05:  # chunk
                compression = header.get("compression", b"none").decode()
                if compression not in decompressors:
                    raise ScanStopped(offset, f"chunk compression {compression!r} is not supported")
                try:
                    raw = decompressors[compression](data)
                except Exception as error:
                    raise ScanStopped(offset, f"chunk cannot be decompressed: {error}") from error
                yield from _ros1_records(BytesIO(raw), len(raw), offset, seen)
            elif op == 0x07:  # connection
                conn = struct.unpack("<I", header["conn"])[0]
                if conn not in seen:
                    seen.add(conn)
                    info = _ros1_header(BytesIO(struct.pack("<I", len(data)) + data), offset)
                    yield ScannedChannel(conn, header["topic"].decode(), _ros1_msgtype(info["type"].decode()))
            elif op == 0x02:  # message data
                conn = struct.unpack("<I", header["conn"])[0]
                sec, nsec = struct.unpack("<II", header["time"])
                yield ScannedMessage(conn, sec * 1_000_000_000 + nsec, data)
        except (KeyError, struct.error, UnicodeDecodeError) as error:
            raise ScanStopped(offset, f"record op {op} is malformed: {error!r}") from error


def scan_ros1(path: Path) -> Iterator[ScanItem]:
    """Yield the connections and messages of a ROS 1 bag from its start, without its index.

    Raises:
        ScanStopped: At the first record that is cut short or damaged.
    """
    with path.open("rb") as bio:
        if bio.read(len(_ROS1_MAGIC)) != _ROS1_MAGIC:
            raise ScanStopped(0, "not a ROS 1 bag (bad magic)")
        yield from _ros1_records(bio, None, 0, set())


__all__ = ["ScanItem", "ScanStopped", "ScannedChannel", "ScannedMessage", "scan_mcap", "scan_ros1"]
