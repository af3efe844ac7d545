"""A ``ModelTaskRunner`` whose per-model task queues are callback groups of an rclpy executor.

The engine hands each model's work (preprocess + inference + postprocess, or one step of
it) to ``ModelTaskRunner.submit(model, task)``. This runner gives every model its own
``MutuallyExclusiveCallbackGroup`` and a guard condition in that group: ``submit`` queues
the task and, when the queue is idle, has the guard's callback run on a pool thread of the
executor (the package's ``MultiThreadedExecutor.dispatch``: the group's rules, no pass through
the wait set; with another executor, or while the group is busy: by triggering the guard). The
callback executes the queued tasks, oldest first, until the queue is empty, and completes
their futures.

What may run in parallel (the contract of ``ros_vision_pipe.engine.tasks``):

* two tasks of the SAME model: never (one mutually exclusive group per model, and the
  queue's callback is the only entity in it);
* tasks of DIFFERENT models: yes, on different executor threads;
* a model task and any other callback of the node (image intake, parameters, diagnostics):
  yes, those live in other groups.

Within ``CallbackGroupTaskRunner.here()`` (the node's intake thread), a task for an idle model
whose last task took at most ``HERE_MAX_TASK_S`` runs in the calling thread instead, inside the
model's group all the same (taken first, like the executor takes it): the frame then runs where it
was received, as in a hand-written node, with no hand-off (docs/ros.md, "Threads").

The executor must be spinning for futures to complete, and must have a thread for each
model that may be busy at once, besides the threads of the node's other groups (see
``PipelineNode.executor_threads``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.guard_condition import GuardCondition
from rclpy.node import Node

T = TypeVar("T")

#: A model whose last task took longer than this (seconds) is not run in the intake thread
#: (``CallbackGroupTaskRunner.here``): intake goes on taking frames while it runs.
HERE_MAX_TASK_S = 0.05


class Here:
    """The calling thread's permission to run an idle model's tasks itself (``here()``)."""

    __slots__ = ("allowed", "ran")

    def __init__(self) -> None:
        self.allowed = False
        #: Tasks run in this thread within the ``here()`` block.
        self.ran = 0


_THREAD = threading.local()


def _here() -> Here:
    here = getattr(_THREAD, "here", None)
    if here is None:
        here = _THREAD.here = Here()
    return here


class _ModelTasks:
    """The queue, callback group and guard condition of one model."""

    def __init__(self, node: Node, model: str) -> None:
        self.node = node
        self.model = model
        self.group = MutuallyExclusiveCallbackGroup()
        self.queue: deque[tuple[Future[Any], Callable[[], Any]]] = deque()
        self.lock = threading.Lock()
        self.running = False
        self.completed = 0
        self.last_task_s: float | None = None  # how long the last task took (None: none ran yet)
        # Runs in this model's group only: never concurrently with itself, in parallel with
        # every other model's tasks and with the node's intake/parameter callbacks.
        self.guard: GuardCondition = node.create_guard_condition(self.run_next, callback_group=self.group)

    def run_next(self) -> None:
        """Guard callback: run the queued tasks, oldest first, until the queue is empty.

        A task queued while this runs is taken here without a new trigger (``submit``
        triggers only an idle queue): one executor hand-off per burst of tasks, not per task.
        """
        while True:
            with self.lock:
                if not self.queue:
                    self.running = False
                    return
                future, task = self.queue.popleft()
                self.running = True
            start = time.monotonic()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(task())
                    except BaseException as error:  # handed to the task's owner through the future
                        future.set_exception(error)
            finally:
                with self.lock:
                    self.completed += 1
                    self.last_task_s = time.monotonic() - start

    def add(self, future: Future[Any], task: Callable[[], Any]) -> None:
        """Queue a task and wake the queue unless ``run_next`` is already draining it.

        An idle queue is handed straight to a pool thread of the node's executor when it offers
        ``dispatch`` (executors.py: same callback group, no pass through the wait set); else, or
        when the group is busy, its guard condition is triggered.
        """
        with self.lock:
            self.queue.append((future, task))
            idle = not self.running
        if idle and self._run_here():
            return
        if idle and not self._dispatch():
            self.guard.trigger()

    def _run_here(self) -> bool:
        """Within ``here()``, run the queue in this thread, in the model's group, when the model
        has been quick (``HERE_MAX_TASK_S``) and its group is free; False otherwise.

        What the tasks submit meanwhile (the next model of a serial chain) goes to the executor.
        """
        here = _here()
        last = self.last_task_s
        if not here.allowed or last is None or last > HERE_MAX_TASK_S:
            return False
        group = self.group
        if not group.beginning_execution(self.guard):
            return False
        here.allowed = False
        try:
            self.run_next()
            here.ran += 1
        finally:
            here.allowed = True
            group.ending_execution(self.guard)
        if self.has_tasks() and not self._dispatch():
            self.guard.trigger()
        return True

    def _dispatch(self) -> bool:
        dispatch = getattr(self.node.executor, "dispatch", None)
        return bool(dispatch is not None and dispatch(self.guard, self.run_next, self.has_tasks))

    def has_tasks(self) -> bool:
        """Whether tasks are queued (one came in while the group was being released)."""
        with self.lock:
            return bool(self.queue)


class CallbackGroupTaskRunner:
    """Runs each model's tasks as callbacks of that model's own callback group.

    Args:
        node: The node owning the guard conditions (add it to a ``MultiThreadedExecutor``).
        model_names: The pipeline's models; a task queue is created for each now, and for any
            other name on its first task.

    Example::

        runner = CallbackGroupTaskRunner(node, ["person", "pose"])
        pipeline = Pipeline.from_config(path, task_runner=runner)
    """

    def __init__(self, node: Node, model_names: Iterable[str]) -> None:
        """Create one task queue (callback group + guard condition) per model."""
        self._node = node
        self._lock = threading.Lock()
        self._closed = False
        self._models: dict[str, _ModelTasks] = {name: _ModelTasks(node, name) for name in model_names}

    def submit(self, model: str, task: Callable[[], T]) -> Future[T]:
        """Queue ``task`` on ``model``'s task queue; the future holds its result or exception.

        Raises:
            RuntimeError: The runner is closed.
        """
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"task runner closed; cannot run a task of model {model!r}")
            tasks = self._models.get(model)
            if tasks is None:
                tasks = self._models[model] = _ModelTasks(self._node, model)
        tasks.add(future, task)
        return future

    @staticmethod
    @contextlib.contextmanager
    def here() -> Iterator[Here]:
        """Within: a task for an idle model runs in the calling thread, in the model's group.

        Only for a model whose last task took at most ``HERE_MAX_TASK_S`` (not before its first
        task): a slow model's tasks go to the executor, so that the caller (the node's intake)
        goes on. Tasks submitted by a task run here go to the executor. The ``Here`` yielded
        counts the tasks run in this thread.
        """
        here = _here()
        here.allowed, here.ran = True, 0
        try:
            yield here
        finally:
            here.allowed = False

    def group(self, model: str) -> MutuallyExclusiveCallbackGroup:
        """The callback group of ``model``'s task queue."""
        return self._models[model].group

    def pending(self, model: str) -> int:
        """Tasks of ``model`` queued or running."""
        tasks = self._models.get(model)
        if tasks is None:
            return 0
        with tasks.lock:
            return len(tasks.queue) + int(tasks.running)

    def completed(self, model: str) -> int:
        """Tasks of ``model`` run so far (finished, with a result or an exception)."""
        tasks = self._models.get(model)
        if tasks is None:
            return 0
        with tasks.lock:
            return tasks.completed

    def close(self) -> None:
        """Refuse new tasks and cancel the queued ones (a running task finishes)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queues = list(self._models.values())
        for tasks in queues:
            with tasks.lock:
                queued = list(tasks.queue)
                tasks.queue.clear()
            for future, _ in queued:
                future.cancel()

    def destroy(self) -> None:
        """``close`` and destroy the guard conditions (before ``node.destroy_node``)."""
        self.close()
        for tasks in self._models.values():
            self._node.destroy_guard_condition(tasks.guard)


__all__ = ["CallbackGroupTaskRunner"]
