"""``replay_bag``: one replay from the options to the report, lossless or real-time.

Three threads share the work so that the pipeline is the only bottleneck: a reader
(read + deserialize + decode, ``Prefetcher``), the caller's thread (the pipeline; in real-time
mode the player submitting frames, with a collector taking the results) and a writer
(map + serialize + write, ``BackgroundSink``).

Example::

    report = replay_bag(ReplayOptions(config=Path("config/person_pose.lua"), bags=(Path("run_42"),),
                                      output=Path("run_42_results")))
    print(format_table(report))
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult
from ros_vision_pipe.messages.image_encoding import ImageDecodeError
from ros_vision_pipe.messages.typestore import package_typestore
from ros_vision_pipe.replay.background import BackgroundSink, Prefetcher
from ros_vision_pipe.replay.bag_reader import BagFrame, CorruptMessageError, ImageBagReader
from ros_vision_pipe.replay.errors import CorruptBagError
from ros_vision_pipe.replay.offline import feed_lossless
from ros_vision_pipe.replay.options import Driver, ReplayOptions
from ros_vision_pipe.replay.progress import NoProgress, Progress
from ros_vision_pipe.replay.realtime import RealtimeFeeder
from ros_vision_pipe.replay.report import ReplayMode, ReplayReport, ReportCollector
from ros_vision_pipe.replay.result_bag import ResultBagWriter
from ros_vision_pipe.replay.timeline import Clock, Pacer, Timeline

#: Builds the pipeline: ``factory(config, lossless=..., frame_pipeline=...)`` (``replay_pipeline`` by default).
PipelineFactory = Callable[..., Pipeline]


def replay_pipeline(config: Path, *, lossless: bool, frame_pipeline: bool = False) -> Pipeline:
    """``Pipeline.from_config`` with ONNX Runtime thread pools that sleep instead of spinning.

    A spinning pool keeps its cores busy between operators; next to the reader and writer
    threads of replay that turns into lost time slices for the pool itself. Thread counts
    and results are unchanged (the node's frame-level pipeline does not spin either).
    """
    return Pipeline.from_config(config, lossless=lossless, overlap_frames=frame_pipeline, shares_cores=True)


def _decoded_frames(bag: ImageBagReader, collector: ReportCollector, timeline: Timeline,
                    max_frames: int | None) -> Iterator[BagFrame]:
    """The bag's frames, decoded; rejected and corrupt messages are counted and skipped."""
    yielded = 0
    for message in bag.messages():
        if max_frames is not None and yielded >= max_frames:
            return
        collector.read(message.topic, message.log_time_ns)
        try:
            frame = bag.decode(message)
        except CorruptMessageError as error:
            collector.corrupt(message.topic, error)
            continue
        except ImageDecodeError as error:
            collector.rejected(message.topic, error)
            continue
        timeline.observe_stamp(frame.topic, frame.stamp.nanoseconds)
        yielded += 1
        yield frame


def replay_bag(
    options: ReplayOptions,
    *,
    pipeline_factory: PipelineFactory = replay_pipeline,
    progress: Progress | None = None,
    clock: Clock | None = None,
) -> ReplayReport:
    """Replay a bag through a pipeline, write the result bag, return the report.

    Args:
        options: What to replay and how (validated here).
        pipeline_factory: Builds the pipeline (``replay_pipeline`` by default).
        progress: Told about every frame (nothing shown by default).
        clock: Real-time mode's time source (the system clock by default).

    Returns:
        The report (also when some frames were rejected or failed).

    Raises:
        ReplayOptionsError: An option is invalid.
        BagOpenError, TopicNotFoundError, TopicTypeError: Before any frame is processed.
        CorruptBagError: The bag is truncated or corrupt: raised after every readable frame was
            processed and the output bag closed; ``error.report`` holds the report.
        OutputBagError: The output bag exists or cannot be written.
        EngineError: The configuration cannot be loaded.
    """
    options = options.validated()
    progress = progress or NoProgress()
    lossless = options.mode is ReplayMode.LOSSLESS
    with ImageBagReader(options.bags, options.topics) as bag:
        topics = [topic.name for topic in bag.topics]
        pipeline = pipeline_factory(options.config, lossless=lossless,
                                    frame_pipeline=options.driver is Driver.PIPELINED)
        try:
            models = tuple(pipeline.models)
            collector = ReportCollector(models, topics)
            timeline = Timeline(options.rate, options.max_gap_s)
            writer = None
            if options.output is not None:
                writer = ResultBagWriter(
                    options.output, package_typestore(), models, storage=options.storage,
                    namespace=options.namespace, image_topics=bag.topics, copy_images=options.copy_images,
                    image_cdr=lambda frame: bag.ros2_cdr(frame.source, frame.message),
                    metadata={"config": str(options.config), "mode": pipeline.spec.mode.value,
                              "replay": options.mode.value, "input": bag.name})
            start = time.perf_counter()
            report_error, read_wait, write_wait = _play(options, bag, pipeline, collector, timeline, writer,
                                                        progress, clock)
            wall = time.perf_counter() - start
            engine_stats: Any = pipeline.stats() if hasattr(pipeline, "stats") else None
        finally:
            pipeline.close()
            progress.close()
    report = collector.build(
        bag=bag.name, output=None if options.output is None else str(options.output), config=str(options.config),
        pipeline_mode=pipeline.spec.mode, replay_mode=options.mode,
        rate=None if lossless else options.rate, wall_s=wall, timing=timeline.anomalies(), engine=engine_stats,
        read_error=None if report_error is None else str(report_error), read_wait_s=read_wait,
        write_wait_s=write_wait)
    corrupt = sum(topic.corrupt for topic in report.topics)
    if report_error is not None:
        raise CorruptBagError(f"{report_error} ({report.frames_processed} frame(s) processed and written "
                              f"before it)", report) from report_error
    if corrupt:
        raise CorruptBagError(
            f"{bag.name}: {corrupt} message(s) could not be deserialized and were skipped "
            f"({report.frames_processed} frame(s) processed); first: {report.problems[0]}", report)
    return report


def _play(options: ReplayOptions, bag: ImageBagReader, pipeline: Pipeline, collector: ReportCollector,
          timeline: Timeline, writer: ResultBagWriter | None, progress: Progress,
          clock: Clock | None) -> tuple[CorruptBagError | None, float, float]:
    """Feed every readable frame; return the error that stopped reading early (if any) and the
    seconds the pipeline's thread waited for the reader and for the writer."""
    sink: BackgroundSink[tuple[BagFrame, FrameResult]] | None = None
    if writer is not None:
        sink = BackgroundSink(lambda item: writer.write(*item), depth=options.prefetch, finish=writer.close)
    dropped = 0

    def deliver(frame: BagFrame, result: FrameResult) -> None:
        collector.processed(frame.topic, frame.index, frame.source.log_time_ns, frame.stamp.nanoseconds, result)
        if sink is not None:
            sink.put((frame, result))
        if dropped:
            progress.update(1, dropped=dropped)
        else:
            progress.update(1)

    def on_drop(frame: BagFrame, reason: str) -> None:
        nonlocal dropped
        dropped += 1
        collector.dropped(frame.topic, frame.index, frame.source.log_time_ns, frame.stamp.nanoseconds, reason)
        progress.update(1, dropped=dropped)

    read_error: CorruptBagError | None = None
    with Prefetcher(lambda: _decoded_frames(bag, collector, timeline, options.max_frames),
                    depth=options.prefetch) as frames:
        try:
            if options.mode is ReplayMode.LOSSLESS:
                feed_lossless(pipeline, frames, deliver, options.driver)
            else:
                RealtimeFeeder(pipeline, deliver, on_drop, timeline=timeline, pacer=Pacer(clock)).feed(frames)
        except CorruptBagError as error:  # raised by the reader after its last readable frame
            read_error = error
        finally:
            if sink is not None:
                sink.close()
    return read_error, frames.wait_s, 0.0 if sink is None else sink.wait_s


__all__ = ["PipelineFactory", "replay_bag", "replay_pipeline"]
