"""The pipeline: a configuration's models and mode, fed frame by frame from one or more sources."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ros_vision_pipe.engine.config import LoadedConfig, load_config
from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.model import Model, SessionFactory, onnx_session_factory
from ros_vision_pipe.engine.modes.base import ModeRunner
from ros_vision_pipe.engine.modes.sequential import SequentialMode
from ros_vision_pipe.engine.records import FrameResult, Mode, PipelineSpec


def default_intra_op_threads(mode: Mode, model_count: int, cpu_count: int | None = None) -> int:
    """Threads per inference when a model does not set ``intra_op_threads``.

    Sequential modes let ONNX Runtime use every core (0 = its default); parallel modes
    share the cores between the models so N concurrent inferences do not oversubscribe.
    """
    if mode in (Mode.SINGLE, Mode.SERIAL):
        return 0
    cores = cpu_count or os.cpu_count() or 1
    return max(1, cores // max(1, model_count))


def build_runner(config: LoadedConfig, models: list[Model]) -> ModeRunner:
    """The factory of mode runners: one place where a mode becomes its implementation."""
    mode = config.spec.mode
    if mode in (Mode.SINGLE, Mode.SERIAL):
        return SequentialMode(config, models)
    if mode is Mode.PARALLEL_SYNC:
        from ros_vision_pipe.engine.modes.parallel_sync import ParallelSyncMode

        return ParallelSyncMode(config, models)
    from ros_vision_pipe.engine.modes.parallel_async import ParallelAsyncMode

    return ParallelAsyncMode(config, models)


class Pipeline:
    """Runs a configured set of models on frames.

    One set of sessions serves every source; each source has its own frame counter
    (``frame_id`` 0, 1, 2, ... per source).

    Example::

        with Pipeline.from_config("config/person_pose.lua") as pipeline:
            result = pipeline.run(frame_rgb, source="camera")
            print(result.results["person"])
    """

    def __init__(self, config: LoadedConfig, models: list[Model], runner: ModeRunner) -> None:
        """Assemble a pipeline (see ``from_config``)."""
        self.config = config
        self.spec: PipelineSpec = config.spec
        self.models = {model.name: model for model in models}
        self._runner = runner
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def from_config(
        cls,
        path: Path | str,
        *,
        session_factory: SessionFactory = onnx_session_factory,
    ) -> Pipeline:
        """Load a configuration file, its models and scripts, and start the mode's runner.

        Args:
            path: Pipeline configuration (Lua).
            session_factory: Builds each model's session (real ONNX Runtime by default).

        Raises:
            ConfigError, ModelLoadError, ScriptError: naming the file and model at fault.
        """
        config = load_config(path)
        spec = config.spec
        default_threads = default_intra_op_threads(spec.mode, len(spec.models))
        parallel = spec.mode in (Mode.PARALLEL_SYNC, Mode.PARALLEL_ASYNC)
        models = [
            Model.load(
                model_spec,
                intra_op_threads=(
                    default_threads if model_spec.intra_op_threads is None else model_spec.intra_op_threads
                ),
                allow_spinning=not parallel,
                display_root=spec.config_file.parent,
                session_factory=session_factory,
            )
            for model_spec in spec.models
        ]
        return cls(config, models, build_runner(config, models))

    def next_frame_id(self, source: str) -> int:
        """Assign the next frame index of ``source`` (0 for its first frame)."""
        with self._lock:
            if self._closed:
                raise PipelineClosedError("the pipeline is closed")
            frame_id = self._counters.get(source, 0)
            self._counters[source] = frame_id + 1
            return frame_id

    def make_context(
        self,
        image: np.ndarray,
        *,
        source: str = "default",
        encoding: str = "rgb8",
        timestamp: float | None = None,
        frame_id: int | None = None,
    ) -> FrameContext:
        """Validate ``image`` and create its context with the source's next frame index."""
        index = self.next_frame_id(source) if frame_id is None else frame_id
        return FrameContext.create(index, image, encoding=encoding, source=source, timestamp=timestamp)

    def run(
        self,
        image: np.ndarray,
        *,
        source: str = "default",
        encoding: str = "rgb8",
        timestamp: float | None = None,
        frame_id: int | None = None,
        stamp: Any = None,
    ) -> FrameResult:
        """Run the pipeline on one frame, synchronously.

        Args:
            image: H x W x C uint8 image.
            source: Camera / topic / file the frame comes from (own frame counter).
            encoding: Colour order of ``image``.
            timestamp: Capture time in seconds (now when omitted).
            frame_id: Force the frame index (offline replay); next of the source otherwise.
            stamp: Opaque value returned untouched in the result (e.g. a ROS header).

        Raises:
            InputError: The image is invalid.
            ScriptError, InferenceError: A model failed (single, serial, parallel_sync).
        """
        ctx = self.make_context(image, source=source, encoding=encoding, timestamp=timestamp, frame_id=frame_id)
        result = self._runner.process(ctx)
        if stamp is not None:
            from dataclasses import replace

            result = replace(result, stamp=stamp)
        return result

    def close(self) -> None:
        """Stop the mode's threads; further frames raise ``PipelineClosedError``."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._runner.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
