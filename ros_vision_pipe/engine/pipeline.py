"""The pipeline: a configuration's models and mode, fed frame by frame from one or more sources."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ros_vision_pipe.engine.config import LoadedConfig, load_config
from ros_vision_pipe.engine.context import FrameContext, validate_image
from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.model import Model, SessionFactory
from ros_vision_pipe.engine.modes.base import ModeRunner
from ros_vision_pipe.engine.pending_frames import PendingFrames
from ros_vision_pipe.engine.records import FrameResult, Mode, PipelineSpec, PipelineStats
from ros_vision_pipe.engine.remote.factory import default_session_factory
from ros_vision_pipe.engine.runners import build_runner, session_options
from ros_vision_pipe.engine.stages import JOIN_TIMEOUT_S
from ros_vision_pipe.engine.stats import StatsCollector
from ros_vision_pipe.engine.tasks import ModelTaskRunner, ThreadTaskRunner


class Pipeline:
    """Runs a configured set of models on frames.

    One set of sessions serves every source; each source has its own frame counter
    (``frame_id`` 0, 1, 2, ... per source), and in parallel_async its own worker
    queues and aggregator state.

    Two interfaces, usable together, over one path (docs/execution-modes.md): ``run``
    (synchronous, one frame: the mode's ``start`` and a wait) and ``submit`` /
    ``try_get_result`` / ``wait_result``, where consecutive frames overlap and results
    come back in submission order (``PendingFrames`` calls the same ``start``).

    Example::

        with Pipeline.from_config("config/person_pose.lua") as pipeline:
            result = pipeline.run(frame_rgb, source="camera")
            print(result.results["person"])

            pipeline.submit(next_frame, source="camera")
            result = pipeline.wait_result(timeout=1.0)
    """

    def __init__(
        self, config: LoadedConfig, models: list[Model], runner: ModeRunner,
        *, stats: StatsCollector | None = None, owned_tasks: ModelTaskRunner | None = None,
    ) -> None:
        """Assemble a pipeline (see ``from_config``); ``stats`` is the runner's collector.

        ``owned_tasks``: a task runner created for this pipeline alone, closed with it.
        """
        self._owned_tasks = owned_tasks
        self.config = config
        self.spec: PipelineSpec = config.spec
        self.models = {model.name: model for model in models}
        self._runner = runner
        self._stats = stats or StatsCollector(self.spec.mode, tuple(self.models))
        for model in models:  # remote models report their server's state and counters
            backend_stats = getattr(model.session, "backend_stats", None)
            if backend_stats is not None:
                self._stats.add_backend_provider(backend_stats)
        self._counters: dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._frames: PendingFrames | None = None

    @classmethod
    def from_config(
        cls,
        path: Path | str,
        *,
        session_factory: SessionFactory = default_session_factory,
        lossless: bool = False,
        overlap_frames: bool = False,
        task_runner: ModelTaskRunner | None = None,
        shares_cores: bool = False,
        frame_pipeline: bool = False,
        direct: bool = False,
        replicas: bool = True,
    ) -> Pipeline:
        """Load a configuration file, its models and scripts, and start the mode's runner.

        Args:
            path: Pipeline configuration (Lua).
            session_factory: Builds each model's session (real ONNX Runtime by default; a KServe v2
                server for a model with a ``backend``).
            lossless: parallel_async: every frame is processed by every model scheduled
                on it and emitted only then; queues block instead of dropping (offline
                bag replay). No effect on the other modes, which never drop.
            overlap_frames: Size the sessions for overlapping frames (``submit``):
                automatic thread counts leave a share of the cores to the Lua stages and
                ONNX Runtime does not spin. ``submit`` works either way.
            task_runner: Where each model's inferences run (one task queue per model: never two
                inferences of a model at once, models in parallel). Inline in the engine's
                own threads by default; the ROS node runs them in per-model callback groups.
            shares_cores: Busy threads outside the engine share the cores (node, replay): the
                sessions do not spin, or (with ``direct``) are sized by the free cores
                (``session_options``).
            frame_pipeline: Former name of ``overlap_frames``.
            direct: single/serial: submitted frames take the direct path, each model's three
                steps as one task on its task queue (``build_runner``); the models' tasks then
                run on one thread per model unless ``task_runner`` is given.
            replicas: direct path, one model: frames that back up run side by side on one-thread
                replicas of its session (``build_runner``).

        Raises:
            ConfigError, ModelLoadError, ScriptError: naming the file and model at fault.
        """
        config = load_config(path)
        spec = config.spec
        owned = ThreadTaskRunner() if direct and task_runner is None else None
        task_runner = task_runner or owned
        default_threads, allow_spinning = session_options(
            spec.mode, len(spec.models), overlap_frames=overlap_frames or frame_pipeline, shares_cores=shares_cores,
            direct=direct)
        models = [
            Model.load(
                model_spec,
                intra_op_threads=(
                    default_threads if model_spec.intra_op_threads is None else model_spec.intra_op_threads
                ),
                allow_spinning=allow_spinning,
                display_root=spec.config_file.parent,
                session_factory=session_factory,
                tasks=task_runner,
            )
            for model_spec in spec.models
        ]
        stats = StatsCollector(spec.mode, tuple(model.name for model in models))
        runner = build_runner(config, models, stats=stats, lossless=lossless, direct=direct, replicas=replicas)
        return cls(config, models, runner, stats=stats, owned_tasks=owned)

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
        """Validate ``image`` and create its context with the source's next frame index.

        An invalid image raises ``InputError`` before it takes a frame index.
        """
        if frame_id is None:
            with self._lock:
                upcoming = self._counters.get(source, 0)
            checked = validate_image(image, encoding, source=source, frame_id=upcoming)
            frame_id = self.next_frame_id(source)
        else:
            checked = validate_image(image, encoding, source=source, frame_id=frame_id)
        return FrameContext.from_checked(frame_id, checked, encoding=encoding, source=source, timestamp=timestamp)

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
        self._stats.count(frames_in=1)
        try:
            result = self._runner.start(ctx, inline=True).result()
        except BaseException:
            self._stats.count(frames_failed=1)
            raise
        self._stats.collected(result)
        if stamp is not None:
            result = replace(result, stamp=stamp)
        return result

    # -- overlapped frames: submit / try_get_result / wait_result -----------------------

    def _frame_pipeline(self) -> PendingFrames:
        with self._lock:
            if self._closed:
                raise PipelineClosedError("the pipeline is closed")
            if self._frames is None:
                self._frames = PendingFrames(
                    self._runner, self.spec.mode, max_pending=self.spec.max_pending_frames,
                    overflow=self.spec.submit_overflow, stats=self._stats)
            return self._frames

    def submit(
        self,
        image: np.ndarray,
        *,
        source: str = "default",
        encoding: str = "rgb8",
        timestamp: float | None = None,
        frame_id: int | None = None,
        stamp: Any = None,
        timeout: float | None = None,
        start: bool = True,
    ) -> bool:
        """Hand a frame to the frame-level pipeline without waiting for its result.

        At most ``max_pending_frames`` frames are submitted and not yet collected;
        at that bound ``submit_overflow`` decides: ``reject`` returns False,
        ``drop_oldest`` drops the oldest frame no model has started yet, or the new
        frame when every pending one is in flight (a dropped frame's result never
        comes; counted in ``stats().frames_dropped``), ``block`` waits for a result to be
        collected (up to ``timeout`` seconds, then returns False).

        Args:
            image: H x W x C uint8 image (not copied: do not write into it afterwards).
            source: Camera / topic / file the frame comes from (own frame counter).
            encoding: Colour order of ``image``.
            timestamp: Capture time in seconds (now when omitted).
            frame_id: Force the frame index (offline replay); next of the source otherwise.
            stamp: Opaque value returned untouched in the result (e.g. a ROS header).
            timeout: ``block`` policy only: longest wait for room, seconds.
            start: On the direct path, False leaves the frame waiting for ``start_waiting``.

        Returns:
            True when the frame was accepted, False when it was rejected.

        Raises:
            InputError: The image is invalid.
            PipelineClosedError: The pipeline is closed.
        """
        frames = self._frame_pipeline()
        return frames.submit(
            lambda: self.make_context(image, source=source, encoding=encoding,
                                      timestamp=timestamp, frame_id=frame_id),
            stamp, timeout, start=start)

    def start_waiting(self, arrived_ns: int = 0) -> None:
        """Direct path: start the frames submitted with ``start=False`` (in this thread when the
        task runner runs an idle model's task here; see ``PendingFrames.start_waiting``, also for
        ``arrived_ns``)."""
        self._frame_pipeline().start_waiting(arrived_ns)

    def on_ready(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` in the thread that ends a frame's processing, each time one ends
        (``PendingFrames.on_ready``); None removes it."""
        self._frame_pipeline().on_ready(callback)

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the next result to be ready; it is not collected.

        Raises:
            PipelineClosedError: The pipeline is closed (also while waiting).
        """
        return self._frame_pipeline().wait_ready(timeout)

    def try_get_result(self) -> FrameResult | None:
        """The next result in submission order if it is ready, else None.

        A frame that failed comes back with ``error`` set; the stream goes on.

        Raises:
            PipelineClosedError: The pipeline is closed.
        """
        return self._frame_pipeline().try_get_result()

    def wait_result(self, timeout: float | None = None) -> FrameResult | None:
        """Wait up to ``timeout`` seconds (None: forever) for the next result in submission order.

        Returns:
            The result, or None when none was ready in time.

        Raises:
            PipelineClosedError: The pipeline is closed (also while waiting).
        """
        return self._frame_pipeline().wait_result(timeout)

    def adopt_frame_counters(self, other: Pipeline) -> None:
        """Continue ``other``'s frame indices: each source's next frame gets the index ``other`` would give.

        Used when this pipeline replaces ``other`` (a reload, engine/reload.py), so that the frame
        indices of every source stay continuous across the swap.
        """
        with other._lock:
            counters = dict(other._counters)
        with self._lock:
            for source, upcoming in counters.items():
                self._counters[source] = max(upcoming, self._counters.get(source, 0))

    def set_frame_interval(self, model: str, interval: int) -> None:
        """parallel_async: run ``model`` on frames whose index is a multiple of ``interval`` from now on.

        Raises:
            ValueError: Not a parallel_async pipeline, unknown model, the main model, or ``interval`` < 1.
        """
        if self.spec.mode is not Mode.PARALLEL_ASYNC:
            raise ValueError(f"frame_interval of model {model!r} applies to parallel_async only "
                             f"(this pipeline is {self.spec.mode.value})")
        self._runner.set_frame_interval(model, interval)  # type: ignore[attr-defined]

    def stats(self) -> PipelineStats:
        """A frozen snapshot of the per-model and per-frame counters (for ``/diagnostics``)."""
        return self._stats.snapshot()

    def close(self) -> None:
        """Stop and join every thread within a second; frames in flight are abandoned.

        Further calls raise ``PipelineClosedError``, and so do ``run`` and
        ``wait_result`` calls waiting in other threads.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for model in self.models.values():  # a script call in progress stops within milliseconds
            model.script.interrupt()
        self.config.script.interrupt()
        if self._frames is not None:
            self._frames.stop()
        self._runner.close()
        if self._frames is not None:
            self._frames.join(deadline)
        for model in self.models.values():  # remote sessions hold connections and shared memory
            close = getattr(model.session, "close", None)
            if close is not None:
                close()
        if self._owned_tasks is not None:
            self._owned_tasks.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
