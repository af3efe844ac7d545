"""Feeding a pipeline live: the intake and result loop shared by the ROS node and real-time replay.

Live, a frame is handed over without waiting (``submit(..., timeout=0)``): when the pipeline
is full the configuration's ``submit_overflow`` decides (``reject`` and ``block`` refuse the new
frame, ``drop_oldest`` drops a frame not started yet, or the new one). One thread takes the
results in submission order (``wait_result``) and hands each to the caller. The node
(``ros/node_core.py``) and real-time replay (``replay/realtime.py``) both feed through here, so
a bag replayed in real time loses frames exactly as the node would. Lossless feeding (offline
replay) is ``submit`` with ``block`` semantics or ``run``: ``replay/offline.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, Protocol, TypeVar

from ros_vision_pipe.engine.errors import InputError

T = TypeVar("T")


class Intake(Enum):
    """What became of a frame handed over live."""

    ACCEPTED = "accepted"
    NOT_ACCEPTED = "not accepted"  # the pipeline was full: refused, or (drop_oldest) dropped
    INVALID = "invalid"  # the image is invalid (InputError): counted as rejected input


class Submits(Protocol):
    """What ``submit_live`` needs: ``Pipeline.submit`` (or the node's swappable pipeline)."""

    def submit(self, image: Any, *, source: str, encoding: str, timestamp: float | None, stamp: Any,
               timeout: float | None) -> bool:
        """Hand a frame over."""
        ...


def submit_live(pipeline: Submits, image: Any, *, source: str, encoding: str, timestamp: float | None,
                stamp: Any) -> tuple[Intake, InputError | None]:
    """Hand a frame to ``pipeline`` without waiting; an invalid image is returned, not raised.

    Raises:
        PipelineClosedError: The pipeline is closed.
    """
    try:
        accepted = pipeline.submit(image, source=source, encoding=encoding, timestamp=timestamp, stamp=stamp,
                                   timeout=0.0)
    except InputError as error:
        return Intake.INVALID, error
    return (Intake.ACCEPTED if accepted else Intake.NOT_ACCEPTED), None


def collect_results(wait_result: Callable[[float | None], T | None], handle: Callable[[T], None], *,
                    stop: Callable[[], bool], timeout: float | None = None) -> None:
    """Take results in submission order and ``handle`` each, until ``stop()`` (checked before each wait).

    Args:
        wait_result: ``Pipeline.wait_result`` (or the node's swappable pipeline's).
        handle: Called with each result, in this thread.
        stop: True once no more results are wanted.
        timeout: Longest wait for one result before ``stop`` is checked again (None: until one comes).

    Raises:
        PipelineClosedError: The pipeline was closed (from ``wait_result``).
    """
    while not stop():
        item = wait_result(timeout)
        if item is not None:
            handle(item)
