"""single and serial modes: the models one after the other on each frame (docs/execution-modes.md).

Serial: model i's preprocess sees the results of models 1..i-1 in ``ctx.results``.
A model whose preprocess returns nil is recorded as skipped (absent from
``ctx.results``) and the next model still runs. An inference or postprocess error
ends the frame with that error (the cascade rule). Single mode is the one-model case
of the same chain.

There is one implementation: ``SequentialMode.start`` hands the frame to the first
model's ``ModelStages``; when a model ends, its callback hands the frame to the next
one, and the last one's end runs fusion and completes the future. ``inline=True``
(``Pipeline.run``) runs each model's three steps in the calling thread. Otherwise
(``Pipeline.submit``) they run either on the model's three stage threads, so that
consecutive frames overlap across the steps (model i+1 takes a frame as soon as model i
has postprocessed it), or, on the direct path (``direct=True``: the ROS node), as one task
on the model's task queue: no hand-off between the steps, and the first model takes the
next frame when it has finished the previous one (``has_room``/``on_room``, used by
``PendingFrames``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.modes.base import DoneCallback, frame_result
from ros_vision_pipe.engine.records import FrameResult, ModelOutcome
from ros_vision_pipe.engine.stages import ModelJob, ModelStages, close_all
from ros_vision_pipe.engine.stats import StatsCollector


class SequentialMode:
    """Runs ``single`` and ``serial`` pipelines.

    Args:
        config: The loaded configuration (holds ``fusion``).
        models: The models, in configuration order.
        stats: Where outcomes and errors are counted.
    """

    def __init__(self, config: LoadedConfig, models: Sequence[Model], stats: StatsCollector, *,
                 direct: bool = False, replicas: bool = True) -> None:
        """Prepare one ``ModelStages`` per model (threads start with the first overlapped frame).

        ``direct``: frames not run inline take the direct path (see the module docstring).
        ``replicas``: on the direct path, a model alone runs frames that back up side by side on
        one-thread replicas of its session (``ModelStages.backlog``, replicas.py).
        """
        self._config = config
        self.direct = direct
        # One waiting frame per model at most: ``start`` blocks the dispatcher when the first
        # model is busy, so frames not yet started stay pending, where drop_oldest can drop them.
        self._stages = [ModelStages(model, stats, max_queue_size=1) for model in models]
        # one model alone on the direct path: frames that back up overlap on its replicas
        self._stages[0].overlap.enabled = direct and replicas and len(self._stages) == 1

    def has_room(self) -> bool:
        """Direct path: whether the first model is free to take a frame now (with replicas: while
        frames back up, a replica is free; ``ModelStages.free_for_frame``)."""
        return self._stages[0].free_for_frame()

    def backlog(self) -> None:
        """Direct path: a frame arrived while the first model was busy (the node's intake saw it)."""
        self._stages[0].backlog()

    def on_room(self, callback: Callable[[], None]) -> None:
        """Direct path: call ``callback`` whenever the first model has finished a frame."""
        self._stages[0].room = callback

    def start(self, ctx: FrameContext, cancel: threading.Event | None = None, *,
              inline: bool = False, on_done: DoneCallback | None = None) -> Future[FrameResult]:
        """Hand ``ctx`` to the first model; each model's end hands it to the next.

        Args:
            ctx: The frame.
            cancel: Set it to abandon what has not run yet (the future then fails).
            inline: Run every step in the calling thread (the future is done on return).
            on_done: Attached to the future before the first model starts.

        Returns:
            The frame's result after fusion, or the first error.
        """
        future: Future[FrameResult] = Future()
        if on_done is not None:
            future.add_done_callback(on_done)
        outcomes: dict[str, ModelOutcome] = {}

        def hand(stages: ModelStages) -> None:
            job = ModelJob(ctx, step, cancel, inline=inline)
            if inline:
                stages.run_here(job)
            elif self.direct:
                stages.start_direct(job)
            else:
                stages.submit(job)

        def step(job: ModelJob) -> None:
            if job.error is not None or job.dropped:
                future.set_exception(job.error or PipelineClosedError(f"frame {ctx.frame_id} was cancelled"))
                return
            assert job.outcome is not None
            outcomes[job.outcome.model] = job.outcome
            if job.outcome.value is not None:
                ctx.results[job.outcome.model] = job.outcome.value
            index = len(outcomes)
            try:
                if index < len(self._stages):
                    hand(self._stages[index])
                else:
                    future.set_result(frame_result(self._config, self._config.spec.mode, ctx, outcomes))
            except Exception as error:  # fusion failed, or the pipeline closed meanwhile
                future.set_exception(error)

        hand(self._stages[0])
        return future

    def close(self) -> None:
        """Stop every model's threads within a second; frames in flight fail with ``PipelineClosedError``."""
        close_all(self._stages)
