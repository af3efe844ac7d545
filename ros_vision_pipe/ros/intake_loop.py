"""The node's image intake: a thread of its own, waiting on the image subscriptions alone.

An rclpy executor wakes up for a message, then works out in Python which of all the node's entities
is ready (parameter services, timers, guard conditions, QoS event handlers...), makes a task of the
callback and only then takes the message: measured between ``rcl_wait`` returning and the image
callback starting, 0.56 ms in our node and 0.68 ms in a hand-written ``rclpy.spin`` node (one VGA
frame at 20 Hz, docs/performance.md "Third round"). ``IntakeLoop`` waits on the image subscriptions
and one guard condition (woken when they change or the node closes), with a wait set built once
per set of subscriptions, takes the ready messages serialized and hands them to the node's callback
in this thread: the frame starts a few microseconds after ``rcl_wait`` returns.

The subscriptions belong to an ``IntakeGroup``, which no executor runs: this loop takes their
messages and runs their QoS event handlers (message lost...), which Fast DDS reports ready for as
long as a message is unread: in an executor's wait set they would make it loop, holding the GIL,
while the message waits here. Everything else of the node keeps its callback groups and runs in the
executor, in parallel with intake.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from functools import partial
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.exceptions import InvalidHandle
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

from ros_vision_pipe.ros import serialized_take
from ros_vision_pipe.ros.image_intake import Serialized, take_waiting
from ros_vision_pipe.ros.serialized_take import SerializedTaker

_LOG = logging.getLogger("ros_vision_pipe.intake")

#: Seconds ``close`` waits for the loop's thread (a frame it is running ends first).
JOIN_TIMEOUT_S = 5.0
#: Seconds before the loop waits again after its wait set failed (an entity destroyed meanwhile).
RETRY_S = 0.01


class IntakeGroup(MutuallyExclusiveCallbackGroup):
    """The image subscriptions' callback group: no executor runs anything of it. ``IntakeLoop``
    takes the subscriptions' messages and runs their QoS event handlers (message lost...)."""

    def can_execute(self, entity: Any) -> bool:
        """False: the intake loop serves this group's entities."""
        return False

    def beginning_execution(self, entity: Any) -> bool:
        """False (see ``can_execute``)."""
        return False


def _wake_up(loop: weakref.ref[IntakeLoop]) -> None:
    alive = loop()
    if alive is not None:
        alive._trigger()


class IntakeLoop:
    """Takes the messages of ``watch``'s subscriptions in its own thread and calls
    ``callback(serialized, topic)`` for each, one at a time, in arrival order per subscription.

    Args:
        context: The node's rclpy context.
        callback: Runs in the loop's thread; an exception it raises is logged, the loop goes on.
        name: The thread's name.
    """

    def __init__(self, context: Any, callback: Callable[[Serialized, str], None], name: str = "image intake") -> None:
        """Start the thread (it waits until ``watch`` gives it subscriptions)."""
        self._context = context
        self._callback = callback
        # images taken into buffers the loop reuses (one copy each), else as rclpy takes them
        self._taker = SerializedTaker() if serialized_take.available() else None
        self._wake = _rclpy.GuardCondition(context.handle)
        #: While the callback runs: when its message reached this process (ns, system clock;
        #: ``rmw_message_info_t.received_timestamp``), or 0 when not known (taken with rclpy).
        self.received_ns = 0
        self._subscriptions: Mapping[str, Any] = {}
        self._closed = False
        # the loop ends with the context, whoever shuts it down (a weak reference: a closed loop is freed)
        context.on_shutdown(partial(_wake_up, weakref.ref(self)))
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def watch(self, subscriptions: Mapping[str, Any]) -> None:
        """Take from ``subscriptions`` (topic -> subscription) from now on, instead of the earlier ones."""
        self._subscriptions = dict(subscriptions)
        self._trigger()

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Stop the loop (a callback running ends first) and wait up to ``timeout`` s for its thread."""
        self._closed = True
        self._trigger()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._wake.destroy_when_not_in_use()

    @property
    def thread(self) -> threading.Thread:
        """The loop's thread."""
        return self._thread

    def _trigger(self) -> None:
        try:
            self._wake.trigger_guard_condition()
        except (InvalidHandle, _rclpy.RCLError):  # the context is shut down: the loop ends anyway
            pass

    def _run(self) -> None:
        wait_set: Any = None
        watched: Mapping[str, Any] | None = None
        while not self._closed:
            subscriptions = self._subscriptions
            try:
                with ExitStack() as handles:
                    handles.enter_context(self._context.handle)
                    handles.enter_context(self._wake)
                    taken: list[tuple[str, Any]] = []
                    events: list[tuple[str, Any]] = []
                    for topic, subscription in subscriptions.items():
                        try:
                            handles.enter_context(subscription.handle)
                            for handler in subscription.event_handlers:
                                handles.enter_context(handler)
                        except InvalidHandle:  # destroyed meanwhile: ``watch`` brings the new set
                            continue
                        taken.append((topic, subscription))
                        events.extend((topic, handler) for handler in subscription.event_handlers)
                    if wait_set is None or watched is not subscriptions:
                        wait_set = _rclpy.WaitSet(len(taken), 1, 0, 0, 0, len(events), self._context.handle)
                        watched = subscriptions
                    wait_set.clear_entities()
                    for _, subscription in taken:
                        wait_set.add_subscription(subscription.handle)
                    for _, handler in events:
                        handler.add_to_wait_set(wait_set)
                    wait_set.add_guard_condition(self._wake)
                    wait_set.wait(-1)
                    if self._closed or not self._context.ok():
                        return
                    if self._subscriptions is not subscriptions:  # ``watch`` meanwhile: nothing more from these
                        continue
                    for topic, handler in events:
                        if handler.is_ready(wait_set):
                            self._event(topic, handler)
                    ready = wait_set.get_ready_entities("subscription")
                    for topic, subscription in taken:
                        if subscription.handle.pointer in ready:
                            self._take(topic, subscription)
            except (InvalidHandle, _rclpy.RCLError) as error:
                if self._closed or not self._context.ok():
                    return
                _LOG.debug("intake wait interrupted: %s", error)
                wait_set = None
                time.sleep(RETRY_S)  # an error that repeats must not make this loop spin

    @staticmethod
    def _event(topic: str, handler: Any) -> None:
        """Run a QoS event handler's callback, as an executor would (``EventHandler.execute``)."""
        data = handler.take_data()
        if not data:
            return
        try:
            handler.callback(data)
        except Exception:  # keep taking frames
            _LOG.exception("QoS event callback of %r (%s) failed", topic, type(data).__name__)

    def _take(self, topic: str, subscription: Any) -> None:
        try:
            raw = take_waiting(subscription, self._taker)
        except (RuntimeError, MemoryError):  # rcl failed to take (not: nothing waiting); the next one may not
            _LOG.exception("taking a message of %r failed", topic)
            return
        if raw is None:
            return
        self.received_ns = self._taker.received_ns if self._taker is not None else 0
        try:
            self._callback(raw, topic)
        except Exception:  # a bug in the callback: keep taking frames
            _LOG.exception("image callback of %r failed", topic)


__all__ = ["IntakeGroup", "IntakeLoop"]
