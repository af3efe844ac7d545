"""The node's executor: rclpy's ``MultiThreadedExecutor``, minus its busy loop.

rclpy's ``MultiThreadedExecutor`` (9.x, Kilted) hands each ready callback to a thread pool and goes
straight back to its wait set. Until a pool thread has started that callback, the entity is left
out of the wait set, but the executor loops instead of waiting:

* the subscription's QoS event handlers stay in the wait set, and with ``rmw_fastrtps_cpp`` they
  wake ``rcl_wait`` at once, with nothing ready, as long as the subscription has unread data;
* the task is yielded again on every pass (it is neither executing nor done; ros2/rclpy#1452)
  and queued once more in the pool;
* a guard condition whose callback has not begun yet gets another handler on every pass, which
  fails (its group is taken) and wakes the executor again.

That loop holds the GIL, and the pool thread needs the GIL to start the callback, so it feeds
itself: with the pipeline's threads also asking for the GIL, the demo's spin thread used 86 % of a
core, made hundreds of useless passes per frame and held the GIL in 80 % of the samples, and
intake, the model task queues and result publishing waited for it (5-8 instead of 25 results/s on 2
cores; docs/performance.md).

``MultiThreadedExecutor`` below waits, GIL released, until a pool thread has started the
callback it just handed over, and only then looks for more work.

It also offers ``dispatch(entity, callback)``: run a callback of ``entity`` (a guard condition)
on a pool thread right away, under the entity's callback group like any other callback, without
the round trip through the wait set (trigger -> ``rcl_wait`` wakes -> handler -> pool). The
model task queues (task_runner.py) use it when a model's group is idle: one frame's hand-off to
its model then costs a thread-pool submit instead of an executor pass (docs/performance.md).

The node's image intake does not go through the executor at all: its own thread waits on the
image subscriptions (intake_loop.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rclpy import executors
from rclpy.exceptions import InvalidHandle

#: Seconds between checks for shutdown (or the caller's condition) while every pool thread is busy.
HANDOFF_POLL_S = 0.01


class MultiThreadedExecutor(executors.MultiThreadedExecutor):
    """``rclpy.executors.MultiThreadedExecutor`` that hands over one callback at a time.

    Same constructor, callback groups and threads as rclpy's; only ``_spin_once_impl`` differs:
    it returns once a pool thread has started the callback (see the module docstring).
    """

    def _spin_once_impl(
        self,
        timeout_sec: float | executors.TimeoutObject | None = None,
        wait_condition: Callable[[], bool] = lambda: False,
    ) -> None:
        try:
            handler, entity, _ = self.wait_for_ready_callbacks(timeout_sec, None, wait_condition)
        except (executors.ExternalShutdownException, executors.ShutdownException,
                executors.TimeoutException, executors.ConditionReachedException):
            return
        started = threading.Event()

        def run() -> None:
            started.set()
            handler()

        try:
            self._executor.submit(run)
        except RuntimeError:  # the pool was shut down since the wait (``shutdown`` in another thread)
            if self._is_shutdown:
                return
            raise
        self._futures.append(handler)
        # Until a pool thread takes it, the callback's entity is out of the wait set and the
        # executor would spin; waiting here releases the GIL to that thread.
        while not started.wait(HANDOFF_POLL_S):
            if self._is_shutdown or wait_condition():
                break
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # raise any exceptions

    def shutdown(self, timeout_sec: float | None = None, *, wait_for_threads: bool = True) -> bool:
        """Stop, let the callbacks already handed to the pool finish, then destroy the guard condition.

        rclpy 9.x destroys the executor's guard condition without waiting for outstanding work (its
        wait is skipped: it tests ``_is_shutdown`` just after setting it). A handler still queued
        on the pool then signals the destroyed guard condition and the spin thread re-raises its
        ``InvalidHandle`` (about 6 shutdowns in 10 with busy timers; test_executors.py).
        """
        with self._shutdown_lock:
            if not self._is_shutdown:
                self._is_shutdown = True
                if self._guard:
                    self._guard.trigger()
        if wait_for_threads:
            self._executor.shutdown(wait=True)
        return super().shutdown(timeout_sec, wait_for_threads=wait_for_threads)

    def dispatch(self, entity: Any, callback: Callable[[], None],
                 pending: Callable[[], bool] | None = None) -> bool:
        """Run ``callback`` on a pool thread now, as a callback of ``entity`` in its callback group.

        The group's rules hold as for a callback the executor picked itself: the group is taken
        before the callback runs (``beginning_execution``) and released after it. Then, if
        ``pending`` is given and says that work came in while the group was taken, the callback
        is dispatched again; without ``pending`` the executor is woken instead, so that it looks
        at the group's entities again (each wake is a pass of its wait loop, which ``pending``
        saves on every frame).

        Returns:
            False (nothing was run) when the group is busy or the executor is shutting down;
            the caller then triggers the entity, as without this shortcut.
        """
        group = entity.callback_group
        if self._is_shutdown or group is None or not group.beginning_execution(entity):
            return False

        def run() -> None:
            try:
                callback()
            finally:
                group.ending_execution(entity)
                if pending is None:
                    self._wake()
                elif pending() and not self.dispatch(entity, callback, pending):
                    entity.trigger()  # the group was taken again meanwhile: its owner drains it

        try:
            self._executor.submit(run)
        except RuntimeError:  # the pool is shut down
            group.ending_execution(entity)
            return False
        return True

    def _wake(self) -> None:
        """Wake the wait loop (it left out the entities of a group that was taken)."""
        wake = self._guard
        try:
            if wake is not None:
                wake.trigger()
        except InvalidHandle:  # shut down meanwhile
            pass


__all__ = ["MultiThreadedExecutor"]
