"""What every execution mode shares: the runner protocol and the fusion step."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol

from ros_vision_pipe.engine.config import LoadedConfig
from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import ScriptResultError, frame_suffix
from ros_vision_pipe.engine.lua.convert import ConversionError, from_lua, to_lua
from ros_vision_pipe.engine.records import FrameResult, Mode, ModelOutcome

#: Called with a frame's future once it is done (``ModeRunner.start``).
DoneCallback = Callable[[Future[FrameResult]], None]


class ModeRunner(Protocol):
    """Runs the models of a pipeline on frames, in one execution mode (docs/execution-modes.md).

    ``start`` is the one way a frame enters a mode: ``Pipeline.run`` is ``start(ctx,
    inline=True)`` and a wait on the future, ``Pipeline.submit`` hands the frame to
    ``PendingFrames``, whose dispatcher calls ``start(ctx, cancel)``.
    """

    def start(self, ctx: FrameContext, cancel: threading.Event | None = None, *,
              inline: bool = False, on_done: DoneCallback | None = None) -> Future[FrameResult]:
        """Begin ``ctx`` without waiting; ``cancel`` abandons what has not run yet.

        ``inline`` asks for the lowest latency of one frame (``run``): each model runs its
        three steps in one thread; modes that have no such shortcut ignore it. ``on_done`` is
        attached to the future before any model starts: on the direct path the frame may end
        inside ``start``, and ``on_done`` then runs as soon as the last model's result is in,
        before the model's task has wound down (its garbage collection, its callback group).
        """
        ...

    def close(self) -> None:
        """Stop and join every thread the runner owns."""
        ...


class DirectStart(ModeRunner, Protocol):
    """A runner on the direct path: ``start`` never waits; frames start as the first model frees up.

    ``PendingFrames`` then needs no dispatcher thread: it starts a frame in ``submit`` when
    ``has_room()``, and from the ``on_room`` callback otherwise.
    """

    direct: bool

    def has_room(self) -> bool:
        """Whether a frame started now would run at once."""
        ...

    def on_room(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in any thread) whenever room appears."""
        ...

    def backlog(self) -> None:
        """A frame arrived while the previous one was running in the caller's thread."""
        ...


def call_config_function(
    config: LoadedConfig, function: Any, name: str, results: Mapping[str, Any], frame_id: int
) -> Any:
    """Call ``fusion(results)`` or ``aggregator(results)`` in the configuration's runtime."""
    script = config.script
    with script.lock:
        returned = script.call(function, name, to_lua(script.runtime, dict(results)), frame_id=frame_id)
        try:
            return from_lua(returned)
        except ConversionError as error:
            raise ScriptResultError(
                f"{script.display_name}: {name} returned an unusable value: {error}"
                f"{frame_suffix(None, frame_id)}"
            ) from None


def frame_result(
    config: LoadedConfig, mode: Mode, ctx: FrameContext, outcomes: dict[str, ModelOutcome]
) -> FrameResult:
    """Assemble a frame's result, running ``fusion`` when the configuration defines it."""
    fused = None
    if config.fusion is not None:
        fused = call_config_function(config, config.fusion, "fusion", ctx.results, ctx.frame_id)
    return FrameResult(
        frame_id=ctx.frame_id,
        source=ctx.source,
        timestamp=ctx.timestamp,
        mode=mode,
        outcomes=outcomes,
        fused=fused,
        has_fused=config.fusion is not None,
    )
