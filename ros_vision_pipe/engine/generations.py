"""Generations of a reloadable pipeline: the one serving and the ones still draining.

``SwappablePipeline`` holds the generation serving now plus the ones still draining. ``submit``
goes to the newest; results come back in submission order, all of an old generation's frames
before the first frame of the new one, each with the ``Generation`` that produced it. Frame
indices go on where the old generation stopped (``Pipeline.adopt_frame_counters``): no frame is
lost or counted twice across a swap. ``lifetime_stats`` is every generation's ``Pipeline.stats()``
together (retired ones included, warm-up frames left out): the node's /diagnostics. Results are
collected by waiting (``wait_result``) or from the thread that ends a frame (``on_ready`` +
``try_get_result``). ``reload.PipelineBuilder`` builds the generations.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult, PipelineStats
from ros_vision_pipe.engine.stats import combine, subtract

#: Seconds ``SwappablePipeline.wait_result`` sleeps at most between two looks for a new generation.
POLL_S = 0.1


@dataclass(frozen=True)
class Generation:
    """One loaded configuration serving (or draining) in a ``SwappablePipeline``.

    Attributes:
        number: 1 for the configuration loaded at start-up, +1 per successful reload.
        config_hash: ``config_hash`` of its files.
        pipeline: Its pipeline.
        load_ms: Wall time of loading and warming it up, milliseconds.
        sessions_reused: Models whose session came from the previous generation.
        baseline: ``pipeline.stats()`` after its warm-up frame, which ``lifetime_stats`` leaves
            out (None: no warm-up).
    """

    number: int
    config_hash: str
    pipeline: Pipeline
    load_ms: float = 0.0
    sessions_reused: int = 0
    baseline: PipelineStats | None = None

    def stats(self) -> PipelineStats:
        """``pipeline.stats()`` since the warm-up frame."""
        stats = self.pipeline.stats()
        return stats if self.baseline is None else subtract(stats, self.baseline)



class SwappablePipeline:
    """The serving generation and the ones still draining, behind the frame-level pipeline interface.

    Args:
        first: The generation loaded at start-up.
    """

    def __init__(self, first: Generation) -> None:
        """Serve ``first``."""
        self._generations: list[Generation] = [first]
        self._retired: PipelineStats | None = None  # the generations closed so far, together
        self._lock = threading.Lock()
        self._closed = False
        self._ready: Callable[[], None] | None = None  # ``on_ready``, on every generation

    def on_ready(self, callback: Callable[[], None] | None) -> None:
        """``Pipeline.on_ready`` on every generation, the ones swapped in later too: ``callback``
        runs in the thread that ends a frame, and may collect with ``try_get_result``."""
        with self._lock:
            self._ready = callback
            generations = list(self._generations)
        for generation in generations:
            generation.pipeline.on_ready(callback)

    @property
    def current(self) -> Generation:
        """The generation new frames go to."""
        return self._generations[-1]

    def submit(self, image: np.ndarray, **kwargs: Any) -> bool:
        """``Pipeline.submit`` on the newest generation (arguments as there)."""
        with self._lock:
            pipeline = self._generations[-1].pipeline
            return pipeline.submit(image, **kwargs)

    def swap(self, generation: Generation) -> Generation:
        """Send every frame from now on to ``generation``; the previous one drains, then closes.

        The swap happens between two ``submit`` calls (a frame boundary); the new generation's frame
        indices continue the old one's. Returns the previous generation.

        Raises:
            PipelineClosedError: Closed.
        """
        with self._lock:
            if self._closed:
                generation.pipeline.close()
                raise PipelineClosedError("the pipeline is closed")
            previous = self._generations[-1]
            generation.pipeline.adopt_frame_counters(previous.pipeline)
            if self._ready is not None:
                generation.pipeline.on_ready(self._ready)
            self._generations.append(generation)
            return previous

    def start_waiting(self, arrived_ns: int = 0) -> None:
        """``Pipeline.start_waiting`` on every open generation (frames submitted with ``start=False``)."""
        for pipeline in self.pipelines():
            pipeline.start_waiting(arrived_ns)

    def try_get_result(self) -> tuple[Generation, FrameResult] | None:
        """The next result in submission order across generations if it is ready, else None.

        A draining generation whose every frame was collected is retired (closed) here.

        Raises:
            PipelineClosedError: Closed.
        """
        while True:
            with self._lock:
                if self._closed:
                    raise PipelineClosedError("the pipeline is closed")
                head = self._generations[0]
                draining = len(self._generations) > 1
            result = head.pipeline.try_get_result()
            if result is not None:
                return head, result
            if not draining:
                return None
            final = head.stats()
            if final.pending != 0:
                return None
            with self._lock:  # every frame it took was collected: retire it
                self._generations.pop(0)
                self._retired = final if self._retired is None else combine([self._retired, final])
            head.pipeline.close()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (at most ``POLL_S``) until ``try_get_result`` may have a
        result, or a drained generation to retire; nothing is collected.

        Raises:
            PipelineClosedError: Closed (also while waiting).
        """
        with self._lock:
            if self._closed:
                raise PipelineClosedError("the pipeline is closed")
            head = self._generations[0]
            draining = len(self._generations) > 1
        if draining:  # a result of the head, or the head to retire: look again soon
            wait = 0.005 if timeout is None else min(0.005, timeout)
            return head.pipeline.wait_ready(wait) or head.stats().pending == 0
        return head.pipeline.wait_ready(POLL_S if timeout is None else min(POLL_S, timeout))

    def wait_result(self, timeout: float | None = None) -> tuple[Generation, FrameResult] | None:
        """The next result in submission order across generations, with the generation that made it.

        Returns:
            ``(generation, result)``, or None when none was ready within ``timeout`` seconds.

        Raises:
            PipelineClosedError: Closed (also while waiting).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            result = self.try_get_result()
            if result is not None:
                return result
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            self.wait_ready(remaining)

    def stats(self) -> PipelineStats:
        """``Pipeline.stats()`` of the serving generation (counters start at zero with each reload)."""
        return self._generations[-1].pipeline.stats()

    def lifetime_stats(self) -> PipelineStats:
        """The counters since start: every generation's, retired ones included, warm-up frames left out."""
        with self._lock:
            snapshots = [generation.stats() for generation in self._generations]
            if self._retired is not None:
                snapshots.insert(0, self._retired)
        return combine(snapshots)

    def pipelines(self) -> list[Pipeline]:
        """Every pipeline still open (serving and draining)."""
        with self._lock:
            return [generation.pipeline for generation in self._generations]

    def close(self) -> None:
        """Close every generation (frames in flight are abandoned); idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            generations = list(self._generations)
        for generation in generations:
            generation.pipeline.close()


__all__ = ["POLL_S", "Generation", "SwappablePipeline"]
