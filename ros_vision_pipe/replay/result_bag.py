"""The output bag: the pipeline's ``ModelResult``/``FusedResult`` messages, written with rosbags.

Topics are the node's: ``<namespace>/<model>/result`` (one ``ModelResult`` per model and frame)
and ``<namespace>/fused`` (one ``FusedResult`` per frame), ``namespace`` defaulting to the
node's ``/vision_pipeline``. So a result bag of offline replay and one recorded from the live
node (``ros2 bag record``) read, and ``compare``, the same way.

Every message carries the input image's header unchanged and is written at the input
message's log time. With ``copy_images`` the input images are copied too, on their own
topics (ROS 1 images converted to ROS 2 by ``image_cdr``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rosbags.interfaces import Connection
from rosbags.typesys.store import Typestore

from ros_vision_pipe.engine.records import FrameResult
from ros_vision_pipe.messages.result_mapping import (
    FUSED_RESULT,
    HEADER,
    MODEL_RESULT,
    TIME,
    RosbagsFactory,
    frame_messages,
)
from ros_vision_pipe.replay.bag_reader import BagFrame, ImageTopic
from ros_vision_pipe.replay.errors import OutputBagError
from ros_vision_pipe.replay.image_bag import Storage

#: The node's name (``ros_vision_pipe.ros.node.NODE_NAME``): its outputs are ``/vision_pipeline/...``.
DEFAULT_NAMESPACE = "/vision_pipeline"


def model_topic(namespace: str, model: str) -> str:
    """``<namespace>/<model>/result``."""
    return f"{namespace.rstrip('/')}/{model}/result"


def fused_topic(namespace: str) -> str:
    """``<namespace>/fused``."""
    return f"{namespace.rstrip('/')}/fused"


class ResultBagWriter:
    """Writes one frame's result messages (and optionally its image) per ``write`` call.

    The bag is created on the first ``write`` (or ``close``), in the calling thread, which
    must be the thread of every later call: SQLite connections belong to one thread.

    Args:
        path: Output bag folder (must not exist).
        typestore: A store with the package's messages (``package_typestore()``).
        models: Model names in configuration order.
        storage: ``SQLITE3`` or ``MCAP``.
        namespace: Output namespace of the result topics.
        image_cdr: Returns a frame's image as ROS 2 CDR, for ``copy_images``
            (``lambda f: reader.ros2_cdr(f.source, f.message)``; the stored bytes by default).
        image_topics: Input topics, for ``copy_images``.
        copy_images: Also write each input image on its topic.
        metadata: Strings stored in the bag's ``custom_data`` (config, mode, input bag...).

    Raises:
        OutputBagError: The bag exists, or cannot be created.
    """

    def __init__(self, path: Path | str, typestore: Typestore, models: Sequence[str], *,
                 image_cdr: Callable[[BagFrame], bytes | memoryview] | None = None,
                 storage: Storage = Storage.SQLITE3, namespace: str = DEFAULT_NAMESPACE,
                 image_topics: Sequence[ImageTopic] = (), copy_images: bool = False,
                 metadata: dict[str, str] | None = None) -> None:
        """Create the bag and its connections."""
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        if storage is Storage.ROS1:
            raise OutputBagError(f"{path}: output bags are rosbag2 (sqlite3 or mcap), not ROS 1")
        self.path = Path(path)
        if self.path.exists():
            raise OutputBagError(f"{self.path}: output bag exists already, not overwriting")
        self.typestore = typestore
        self.models = tuple(models)
        self._image_cdr = image_cdr or (lambda frame: frame.source.data)
        self._factory = RosbagsFactory(typestore)
        self._types = typestore.types
        if not self.path.parent.is_dir():
            raise OutputBagError(f"{self.path}: cannot create output bag: no folder {str(self.path.parent)!r}")
        plugin = StoragePlugin.MCAP if storage is Storage.MCAP else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        for key, value in (metadata or {}).items():
            self._writer.set_custom_data(f"ros_vision_pipe.{key}", value)
        self._namespace = namespace
        self._image_topics = tuple(image_topics) if copy_images else ()
        self._model_connections: dict[str, Connection] = {}
        self._fused: Connection | None = None
        self._images: dict[str, Connection] = {}
        self._writer_error = WriterError
        self._opened = False
        self.messages_written = 0
        self._closed = False

    def open(self) -> None:
        """Create the bag and its connections (on first use: SQLite ties the bag to the thread that opens it).

        Raises:
            OutputBagError: The bag cannot be created.
        """
        if self._opened:
            return
        self._opened = True
        try:
            self._writer.open()
            self._model_connections = {
                name: self._writer.add_connection(model_topic(self._namespace, name), MODEL_RESULT,
                                                  typestore=self.typestore)
                for name in self.models
            }
            self._fused = self._writer.add_connection(fused_topic(self._namespace), FUSED_RESULT,
                                                      typestore=self.typestore)
            for topic in self._image_topics:
                self._images[topic.name] = self._writer.add_connection(
                    topic.name, topic.kind.value, typestore=self.typestore)
        except (self._writer_error, OSError) as error:
            raise OutputBagError(f"{self.path}: cannot create output bag: {error}") from error

    def header(self, frame: BagFrame) -> Any:
        """The ROS 2 ``std_msgs/Header`` of ``frame`` (stamp and frame_id unchanged)."""
        stamp = self._types[TIME](sec=frame.stamp.sec, nanosec=frame.stamp.nanosec)
        return self._types[HEADER](stamp=stamp, frame_id=frame.frame_id)

    def serialize(self, frame: BagFrame, result: FrameResult) -> list[tuple[Connection, bytes | memoryview]]:
        """The serialized messages of one frame: each model's result, the fused result, the image."""
        self.open()
        assert self._fused is not None
        header = self.header(frame)
        messages = frame_messages(result, self._factory, header=header, models=self.models)
        out: list[tuple[Connection, bytes | memoryview]] = [
            (self._model_connections[name], self.typestore.serialize_cdr(message, MODEL_RESULT))
            for name, message in messages.models.items()
        ]
        out.append((self._fused, self.typestore.serialize_cdr(messages.fused, FUSED_RESULT)))
        image = self._images.get(frame.topic)
        if image is not None:
            out.append((image, self._image_cdr(frame)))
        return out

    def write_serialized(self, log_time_ns: int, messages: list[tuple[Connection, bytes | memoryview]]) -> None:
        """Write messages produced by ``serialize`` at ``log_time_ns``.

        Raises:
            OutputBagError: The storage refused a write (names the bag).
        """
        try:
            for connection, data in messages:
                self._writer.write(connection, log_time_ns, data)
        except Exception as error:  # rosbags WriterError, sqlite3 errors, OSError (disk full)
            raise OutputBagError(f"{self.path}: cannot write to output bag: {error}") from error
        self.messages_written += len(messages)

    def write(self, frame: BagFrame, result: FrameResult) -> None:
        """Serialize and write one frame's messages at its input log time."""
        self.write_serialized(frame.source.log_time_ns, self.serialize(frame, result))

    def close(self) -> None:
        """Finish the bag (metadata.yaml, MCAP summary); idempotent."""
        if self._closed:
            return
        self._closed = True
        self.open()
        try:
            self._writer.close()
        except Exception as error:
            raise OutputBagError(f"{self.path}: cannot finish output bag: {error}") from error


__all__ = ["DEFAULT_NAMESPACE", "ResultBagWriter", "fused_topic", "model_topic"]
