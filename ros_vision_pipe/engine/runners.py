"""How a pipeline runs: the mode runner of its configuration and how its sessions use the cores.

``session_options`` is the one decision of threads and spinning per pipeline, ``build_runner`` the
one place where a mode becomes its implementation; ``Pipeline`` (pipeline.py) and
``PipelineBuilder`` (reload.py) both build through them.
"""

from __future__ import annotations

import os

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.modes.base import ModeRunner
from ros_vision_pipe.engine.modes.sequential import SequentialMode
from ros_vision_pipe.engine.records import Mode
from ros_vision_pipe.engine.session import FREE_CORES
from ros_vision_pipe.engine.stats import StatsCollector


def default_intra_op_threads(
    mode: Mode, model_count: int, cpu_count: int | None = None, *, overlap_frames: bool = False,
    frame_pipeline: bool = False,
) -> int:
    """Threads per inference when a model does not set ``intra_op_threads``.

    Sequential modes let ONNX Runtime use every core (0 = its default). Parallel
    modes share the cores between the N models so N concurrent inferences do not
    oversubscribe them (cores // N, at least 1). When frames overlap (``submit``) the
    inferences of consecutive frames also overlap with the Lua stages, so one share
    more is kept for preprocess/postprocess: cores // (N + 1), at least 1.
    ``frame_pipeline`` is the former name of ``overlap_frames``.
    """
    cores = cpu_count or os.cpu_count() or 1
    if overlap_frames or frame_pipeline:
        return max(1, cores // (max(1, model_count) + 1))
    if mode in (Mode.SINGLE, Mode.SERIAL):
        return 0
    return max(1, cores // max(1, model_count))


def session_options(
    mode: Mode, model_count: int, *, overlap_frames: bool = False, shares_cores: bool = False,
    direct: bool = False,
) -> tuple[int, bool]:
    """The one decision of how a pipeline's ONNX Runtime sessions use the cores.

    Args:
        mode: Execution mode.
        model_count: Models in the pipeline.
        overlap_frames: Frames overlap (``submit``): the Lua stages need cores too.
        shares_cores: Busy threads outside the engine share the cores (the ROS node's DDS and
            executor, replay's reader and writer, other processes of the robot).
        direct: Submitted frames take the direct path (``build_runner``).

    Returns:
        (threads per inference for a model that does not set ``intra_op_threads``, whether the
        intra-op threads may spin):

        ====================================  ================================  ====================
        situation                             threads                           spinning
        ====================================  ================================  ====================
        single/serial alone (``run``)         every core (ONNX Runtime's 0)     yes
        single on the direct path of a        ``FREE_CORES``: every core        while other processes
        shared machine (the node)                                               leave the cores free
        serial on the direct path of a        cores // models (at least 1)      no
        shared machine (the node)
        parallel modes, overlapped frames     cores // models (+1 share for     no
                                              the Lua stages when overlapping)
        any other use on a shared machine     as above                          no
        (bag replay)
        ====================================  ================================  ====================
    """
    sequential = mode in (Mode.SINGLE, Mode.SERIAL)
    if direct and shares_cores and sequential and not overlap_frames:
        if model_count <= 1:
            return FREE_CORES, True
        # consecutive frames run on different models at once (one task queue per model)
        return default_intra_op_threads(Mode.PARALLEL_SYNC, model_count), False
    threads = default_intra_op_threads(mode, model_count, overlap_frames=overlap_frames)
    parallel = overlap_frames or not sequential
    return threads, not (parallel or shares_cores)


def build_runner(
    config: LoadedConfig, models: list[Model], *, stats: StatsCollector | None = None, lossless: bool = False,
    direct: bool = False, replicas: bool = True,
) -> ModeRunner:
    """The factory of mode runners: one place where a mode becomes its implementation.

    Args:
        config: The loaded configuration.
        models: Its models, in configuration order.
        stats: Where the runner counts outcomes, errors and drops.
        lossless: parallel_async: every scheduled model completes every frame, queues
            block instead of dropping (offline replay). Other modes never drop.
        direct: single/serial: submitted frames take the direct path (each model's three
            steps as one task on its task queue; the models' task runner must run tasks in
            other threads, as the ROS node's does). Other modes keep their stage threads.
        replicas: direct path, one model: frames that back up run side by side on replicas of
            its session (``SequentialMode``).
    """
    mode = config.spec.mode
    stats = stats or StatsCollector(mode, tuple(model.name for model in models))
    if mode in (Mode.SINGLE, Mode.SERIAL):
        return SequentialMode(config, models, stats, direct=direct, replicas=replicas)
    if mode is Mode.PARALLEL_SYNC:
        from ros_vision_pipe.engine.modes.parallel_sync import ParallelSyncMode

        return ParallelSyncMode(config, models, stats=stats)
    from ros_vision_pipe.engine.modes.parallel_async import ParallelAsyncMode

    return ParallelAsyncMode(config, models, lossless=lossless, stats=stats)


__all__ = ["build_runner", "default_intra_op_threads", "session_options"]
