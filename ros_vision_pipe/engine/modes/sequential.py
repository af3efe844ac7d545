"""single and serial modes (spec 3.2, 3.3): the models run one after the other in the caller's thread.

Serial: model i's preprocess sees the results of models 1..i-1 in ``ctx.results``.
A model whose preprocess returns nil is recorded as skipped (absent from
``ctx.results``) and the next model still runs. An inference or postprocess error
propagates to the caller and stops the frame (the "cascade" of spec 3.7). Single
mode is the one-model case of the same loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.modes.base import frame_result
from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome


class SequentialMode:
    """Runs ``single`` and ``serial`` pipelines."""

    def __init__(self, config: LoadedConfig, models: Sequence[Model]) -> None:
        """Keep the models in configuration order."""
        self._config = config
        self._models = tuple(models)
        self._mode: Mode = config.spec.mode

    def process(self, ctx: FrameContext) -> FrameResult:
        """Run every model in order on ``ctx`` (raises the first error)."""
        outcomes: dict[str, ModelOutcome] = {}
        for model in self._models:
            outcome = model.run(ctx)
            outcomes[model.name] = outcome
            if outcome.value is not None:
                ctx.results[model.name] = outcome.value
        return frame_result(self._config, self._mode, ctx, outcomes)

    def close(self) -> None:
        """Nothing to stop: no threads."""
