"""Feeding a pipeline, live or lossless: the loops shared by the ROS node and bag replay.

Live, a frame is handed over without waiting (``submit(..., timeout=0)``): when the pipeline
is full the configuration's ``submit_overflow`` decides (``reject`` and ``block`` refuse the new
frame, ``drop_oldest`` drops a frame not started yet, or the new one). Real-time replay
(``replay/realtime.py``) takes the results in submission order in one thread (``collect_results``);
the node (``ros/node_core.py``) takes them in the thread that ends each frame (``on_ready``). Both
feed through here, so a bag replayed in real time loses frames as the node would (docs/replay.md
has the one difference: the node runs a quick first model in its intake thread).

Lossless (``feed_lossless``; offline replay, ``replay/offline.py``), frames are submitted a
window ahead and a refused frame waits for a result to be collected: every frame gets its
result, in input order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Protocol, TypeVar

from ros_vision_pipe.engine.errors import EngineError, InputError, PipelineClosedError
from ros_vision_pipe.engine.records import FrameResult

T = TypeVar("T")
F = TypeVar("F")


class Intake(Enum):
    """What became of a frame handed over live."""

    ACCEPTED = "accepted"
    NOT_ACCEPTED = "not accepted"  # the pipeline was full: refused, or (drop_oldest) dropped
    INVALID = "invalid"  # the image is invalid (InputError): counted as rejected input


class Submits(Protocol):
    """What ``submit_live`` needs: ``Pipeline.submit`` (or the node's swappable pipeline)."""

    def submit(self, image: Any, *, source: str, encoding: str, timestamp: float | None, stamp: Any,
               timeout: float | None, start: bool = True) -> bool:
        """Hand a frame over."""
        ...


def submit_live(pipeline: Submits, image: Any, *, source: str, encoding: str, timestamp: float | None,
                stamp: Any, start: bool = True) -> tuple[Intake, InputError | None]:
    """Hand a frame to ``pipeline`` without waiting; an invalid image is returned, not raised.

    ``start=False``: on the direct path the frame waits for the caller's ``start_waiting``.

    Raises:
        PipelineClosedError: The pipeline is closed.
    """
    try:
        accepted = pipeline.submit(image, source=source, encoding=encoding, timestamp=timestamp, stamp=stamp,
                                   timeout=0.0, start=start)
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


class WaitsResults(Protocol):
    """What ``feed_lossless`` needs: ``Pipeline.wait_result``."""

    def wait_result(self, timeout: float | None = None) -> FrameResult | None:
        """The next result in submission order (None: none within ``timeout``)."""
        ...


def feed_lossless(pipeline: WaitsResults, frames: Iterable[F], *, submit: Callable[[F], bool],
                  deliver: Callable[[F, FrameResult], None], failed: Callable[[F, EngineError], FrameResult],
                  window: int, source_errors: tuple[type[Exception], ...] = ()) -> None:
    """Hand every frame to ``pipeline`` without losing one; ``deliver`` the results in input order.

    Args:
        pipeline: Collects the results (``wait_result``).
        frames: The frames, in input order.
        submit: Hands one frame over (``Pipeline.submit`` with the frame as ``stamp``, so that its
            result names it); False when the pipeline refused it (full): a result is collected
            and the frame submitted again.
        deliver: Called with each frame and its result, in input order.
        failed: The failed result of a frame ``submit`` raised an ``EngineError`` for (an invalid
            image), delivered after the results of the frames before it.
        window: Most frames submitted whose result is not collected yet.
        source_errors: Errors of ``frames`` (a bag that became unreadable) after which the frames
            already submitted are delivered before the error propagates.

    Raises:
        PipelineClosedError: The pipeline was closed.
        RuntimeError: A frame was refused with nothing in flight (the pipeline can never take it).
    """
    in_flight: list[F] = []  # submitted, result not yet collected (submission order)

    def collect() -> None:
        result = pipeline.wait_result(None)
        assert result is not None  # no timeout: waits for the next result
        frame = next((f for f in in_flight if f is result.stamp), in_flight[0])
        in_flight.remove(frame)
        deliver(frame, result)

    iterator = iter(frames)
    while True:
        try:
            frame = next(iterator)
        except StopIteration:
            break
        except source_errors:  # the source broke: finish the frames read before it
            while in_flight:
                collect()
            raise
        while len(in_flight) >= max(1, window):
            collect()
        try:
            accepted = submit(frame)
            while not accepted:  # a pipeline with a smaller bound than the window waits here
                if not in_flight:
                    raise RuntimeError(f"the pipeline refused frame {frame!r} with nothing in flight")
                collect()
                accepted = submit(frame)
        except PipelineClosedError:
            raise
        except EngineError as error:  # an invalid image: reported in order, after the frames before it
            while in_flight:
                collect()
            deliver(frame, failed(frame, error))
            continue
        in_flight.append(frame)
    while in_flight:
        collect()
