"""parallel_sync mode (docs/execution-modes.md): every model on the same frame at once, a barrier, then fusion.

Each model runs on its own ``ModelStages`` (preprocess, inference and
postprocess threads), so the N inferences of a frame run concurrently (ONNX
Runtime releases the GIL), and so do the N Lua scripts (one runtime per model).
The barrier is ``_FrameJoin``: the frame completes when every model has
postprocessed it; then ``fusion(results)`` runs with every model's result of that
same frame.

The models of a parallel_sync pipeline are independent: each preprocess sees
``ctx.results`` empty (every preprocess runs before any result
exists), so a model's postprocess may start while another is still in inference
without changing any result.

Errors are fail-fast (docs/execution-modes.md): the first model that raises fails the frame
with its own error (which names the model and frame); the other models of that
frame skip their remaining stages, and nothing waits for them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.modes.base import DoneCallback, frame_result
from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome
from ros_vision_pipe.engine.stages import ModelJob, ModelStages, close_all
from ros_vision_pipe.engine.stats import StatsCollector


class _FrameJoin:
    """The barrier of one frame: collects one outcome per model, then runs fusion."""

    def __init__(self, config: LoadedConfig, names: Sequence[str], ctx: FrameContext,
                 cancel: threading.Event) -> None:
        self.config = config
        self.names = tuple(names)
        self.ctx = ctx
        self.cancel = cancel
        self.future: Future[FrameResult] = Future()
        self._outcomes: dict[str, ModelOutcome] = {}
        self._lock = threading.Lock()

    def model_done(self, job: ModelJob) -> None:
        """Record one model's end; the first error or the last outcome completes the frame."""
        with self._lock:
            if self.future.done():
                return
            if job.error is not None or job.dropped:
                self.cancel.set()  # the other models skip what is left of this frame
                self.future.set_exception(job.error or _cancelled(job))
                return
            assert job.outcome is not None
            self._outcomes[job.outcome.model] = job.outcome
            if len(self._outcomes) < len(self.names):
                return
        outcomes = {name: self._outcomes[name] for name in self.names}
        for name, outcome in outcomes.items():
            if outcome.value is not None:
                self.ctx.results[name] = outcome.value
        try:
            result = frame_result(self.config, Mode.PARALLEL_SYNC, self.ctx, outcomes)
        except Exception as error:  # fusion failed: the frame fails with the script's error
            self.future.set_exception(error)
            return
        self.future.set_result(result)


def _cancelled(job: ModelJob) -> Exception:
    return PipelineClosedError(f"frame {job.ctx.frame_id} was cancelled")


class ParallelSyncMode:
    """Runs ``parallel_sync`` pipelines: one ``ModelStages`` per model, a barrier per frame.

    Args:
        config: The loaded configuration (holds ``fusion``).
        models: The models, in configuration order.
        stats: Where outcomes and errors are counted (a private collector when omitted).
    """

    def __init__(self, config: LoadedConfig, models: Sequence[Model], *,
                 stats: StatsCollector | None = None) -> None:
        """Start the stage threads of every model."""
        self._config = config
        self._names = tuple(model.name for model in models)
        self._stats = stats or StatsCollector(Mode.PARALLEL_SYNC, self._names)
        self._stages = [ModelStages(model, self._stats) for model in models]
        for stages in self._stages:
            self._stats.add_depth_provider(stages.depths)

    def start(self, ctx: FrameContext, cancel: threading.Event | None = None, *,
              inline: bool = False, on_done: DoneCallback | None = None) -> Future[FrameResult]:
        """Hand ``ctx`` to every model at once; the future completes after fusion.

        Args:
            ctx: The frame.
            cancel: Set it to abandon the frame (the future then fails).
            inline: Each model runs its three steps in one thread (lowest latency for one
                frame; ``run``); otherwise consecutive frames overlap across the stages.
            on_done: Attached to the future before any model starts.

        Returns:
            The frame's result, or the first model's error (fail-fast).
        """
        join = _FrameJoin(self._config, self._names, ctx, cancel or threading.Event())
        if on_done is not None:
            join.future.add_done_callback(on_done)
        for stages in self._stages:
            stages.submit(ModelJob(ctx, join.model_done, join.cancel, inline=inline))
        return join.future

    def close(self) -> None:
        """Stop every model's threads within a second; frames in flight fail with ``PipelineClosedError``."""
        close_all(self._stages)
