"""Where a model's work runs: the task-runner collaborator injected into the modes.

Every mode hands each model's inferences to a ``ModelTaskRunner`` under the model's
name (``Model.infer``); Lua preprocess/postprocess run on the engine's own threads. The contract: tasks of one
model never overlap; tasks of different models may run in parallel. The engine's
default runs them in one thread per model; the ROS node injects a runner that
executes them as callbacks of the model's own callback group in a
``MultiThreadedExecutor`` (``ros_vision_pipe.ros.task_runner``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

T = TypeVar("T")


class ModelTaskRunner(Protocol):
    """Runs model tasks: serial per model, parallel across models."""

    def submit(self, model: str, task: Callable[[], T]) -> Future[T]:
        """Schedule ``task`` on ``model``'s own queue; the future holds its result or exception."""
        ...

    def close(self) -> None:
        """Stop accepting tasks and release the threads (pending futures are cancelled)."""
        ...


class InlineTaskRunner:
    """Runs each task immediately in the caller's thread (sequential modes' default)."""

    def submit(self, model: str, task: Callable[[], T]) -> Future[T]:
        """Run ``task`` now and return a completed future."""
        future: Future[T] = Future()
        try:
            future.set_result(task())
        except BaseException as error:  # handed to the owner through the future
            future.set_exception(error)
        return future

    def close(self) -> None:
        """Nothing to release."""


class ThreadTaskRunner:
    """One worker thread per model, created on first use."""

    def __init__(self, thread_name_prefix: str = "rvp-model") -> None:
        """Create an empty runner."""
        self._prefix = thread_name_prefix
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, model: str, task: Callable[[], T]) -> Future[T]:
        """Queue ``task`` on ``model``'s thread."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"task runner closed; cannot run a task of model {model!r}")
            pool = self._pools.get(model)
            if pool is None:
                pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self._prefix}-{model}")
                self._pools[model] = pool
        return pool.submit(task)

    def close(self) -> None:
        """Cancel queued tasks and join every thread."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
