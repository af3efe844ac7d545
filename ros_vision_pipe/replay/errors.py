"""Exceptions of bag replay: one base class, one subclass per kind of failure.

Messages name the bag file, the topic and the frame at fault, e.g.
``TopicNotFoundError: run.mcap: no topic '/cam/left'; image topics in the bag: ['/cam/image_raw']``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ros_vision_pipe.replay.report import ReplayReport


class ReplayError(Exception):
    """Base class of every error bag replay, play and compare raise."""


class ReplayOptionsError(ReplayError):
    """Replay options that are invalid or do not go together (names the option and value)."""


class MessageDefinitionsNotFoundError(ReplayError):
    """The package's ``msg/*.msg`` files were found neither in the source tree nor in an install."""


class BagOpenError(ReplayError):
    """A bag does not exist, is not a bag, or its metadata / index cannot be read."""


class TopicNotFoundError(ReplayError):
    """A requested topic is not in the bag, or the bag has no image topic at all."""


class TopicTypeError(ReplayError):
    """A requested topic does not carry ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``."""


class CorruptBagError(ReplayError):
    """The bag became unreadable part-way (truncated file, corrupt chunk or message).

    Raised after everything readable before the damage was processed and written.

    Attributes:
        report: The report of the frames processed before the failure (replay only).
    """

    def __init__(self, message: str, report: ReplayReport | None = None) -> None:
        """Keep the partial ``report`` next to the message."""
        super().__init__(message)
        self.report = report


class OutputBagError(ReplayError):
    """The output bag cannot be created or written (it exists already, disk full...)."""


class ResultBagError(ReplayError):
    """A bag given to ``compare`` holds no ``ros_vision_pipe`` result messages."""


class PlayerError(ReplayError):
    """Live replay over DDS failed (no subscriber came, rclpy or the messages are missing)."""


__all__ = [
    "BagOpenError",
    "CorruptBagError",
    "MessageDefinitionsNotFoundError",
    "OutputBagError",
    "PlayerError",
    "ReplayError",
    "ReplayOptionsError",
    "ResultBagError",
    "TopicNotFoundError",
    "TopicTypeError",
]
