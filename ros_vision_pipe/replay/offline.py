"""Offline lossless replay: every frame of the bag through the pipeline, in recording order.

Each frame's index is its position on its topic, so parallel_async intervals (built with
``lossless=True``) apply by frame index and two runs produce identical results. Nothing is
dropped: the bag is read as fast as the pipeline takes frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ros_vision_pipe.engine import live_feed
from ros_vision_pipe.engine.errors import EngineError, PipelineClosedError
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult
from ros_vision_pipe.replay.bag_reader import BagFrame
from ros_vision_pipe.replay.errors import ReplayError
from ros_vision_pipe.replay.options import Driver

#: Receives each frame with its result, in input order.
Deliver = Callable[[BagFrame, FrameResult], None]


def run_frame(pipeline: Pipeline, frame: BagFrame, frame_id: int) -> FrameResult:
    """``pipeline.run`` on one bag frame; an engine error becomes a failed ``FrameResult`` (as the node does).

    Raises:
        PipelineClosedError: The pipeline was closed.
    """
    try:
        return pipeline.run(frame.image, source=frame.topic, encoding=frame.encoding,
                            timestamp=frame.stamp.seconds, frame_id=frame_id, stamp=frame)
    except PipelineClosedError:
        raise
    except EngineError as error:
        return FrameResult.failed(frame_id, frame.topic, frame.stamp.seconds, pipeline.spec.mode, error, frame)


def _submit_failed(pipeline: Pipeline, frame: BagFrame, error: EngineError) -> FrameResult:
    return FrameResult.failed(frame.index, frame.topic, frame.stamp.seconds, pipeline.spec.mode, error, frame)


def feed_lossless(pipeline: Pipeline, frames: Iterable[BagFrame], deliver: Deliver,
                  driver: Driver = Driver.RUN) -> None:
    """Run every frame through ``pipeline`` and ``deliver`` the results in input order.

    Args:
        pipeline: Built with ``lossless=True`` (parallel_async then never drops).
        frames: Decoded frames, in recording order.
        deliver: Called with each frame and its result.
        driver: ``RUN``: one ``Pipeline.run`` per frame. ``PIPELINED``: ``submit`` up to
            ``max_pending_frames - 1`` frames ahead and collect with ``wait_result``
            (``engine.live_feed.feed_lossless``, the lossless loop of the engine's feeding module).
    """
    if driver is Driver.RUN:
        for frame in frames:
            deliver(frame, run_frame(pipeline, frame, frame.index))
        return

    def submit(frame: BagFrame) -> bool:
        return pipeline.submit(frame.image, source=frame.topic, encoding=frame.encoding,
                               timestamp=frame.stamp.seconds, frame_id=frame.index, stamp=frame)

    live_feed.feed_lossless(pipeline, frames, submit=submit, deliver=deliver,
                            failed=lambda frame, error: _submit_failed(pipeline, frame, error),
                            window=pipeline.spec.max_pending_frames - 1, source_errors=(ReplayError,))


__all__ = ["Deliver", "feed_lossless", "run_frame"]
