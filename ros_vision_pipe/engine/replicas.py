"""Model replicas: one-thread sessions of a model that run the inferences of several frames at once.

On this machine's two cores, one ONNX Runtime session with two intra-op threads runs the SSDLite
person detector at 77-79 inferences/s; two one-thread sessions, each on a frame of its own, at
105-106 (bench/bench_replicas.py): splitting one small inference over two threads leaves a core idle
between operators, two inferences side by side do not. ``Replicas`` holds such sessions and one
thread for each, which runs the inference it is handed on its own session.

The direct path uses replicas only while frames back up (overlap.py): one frame at a time
keeps the model's multi-threaded session, which gives the lowest latency.

A replica thread holds its ``Replicas`` only while it runs an inference: once the model is gone
(a reload replaced it) the threads end within ``IDLE_CHECK_S``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np

_LOG = logging.getLogger("ros_vision_pipe.engine")

T = TypeVar("T")
#: Runs one inference on a replica's session: feeds -> outputs in the model's order.
Run = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]

#: Seconds an idle replica thread waits for work before it checks that its ``Replicas`` still exists.
IDLE_CHECK_S = 5.0


class Replicas:
    """Sessions of one model, each with a thread of its own; ``submit`` runs a task on a free one.

    Args:
        sessions: ``onnxruntime.InferenceSession`` objects of the same model (one intra-op thread each).
        output_names: The outputs to fetch, in the model's order.
        model_name: For the threads' names.
    """

    def __init__(self, sessions: Sequence[Any], output_names: Sequence[str], model_name: str) -> None:
        """Start one thread per session."""
        self.size = len(sessions)
        self._sessions = list(sessions)
        self._output_names = list(output_names)
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[Run], Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._busy = 0
        #: Inferences run on the replicas, and the most that ran at once.
        self.runs = self.peak = 0
        ref = weakref.ref(self)
        for index in range(self.size):
            threading.Thread(target=_serve, args=(ref, self._work, index), name=f"vp-{model_name}-replica{index}",
                             daemon=True).start()

    def describe(self) -> str:
        """``2 built, 5114 inferences on them (2 at once at most)``."""
        return f"{self.size} built, {self.runs} inferences on them ({self.peak} at once at most)"

    def submit(self, task: Callable[[Run], T]) -> Future[T]:
        """Run ``task(run)`` on the next free replica, ``run`` being that replica's inference; returns its future."""
        future: Future[T] = Future()
        self._work.put((future, task))
        return future

    def _run(self, index: int, future: Future[Any], task: Callable[[Run], Any]) -> None:
        session, names = self._sessions[index], self._output_names
        with self._lock:
            self._busy += 1
            self.runs += 1
            self.peak = max(self.peak, self._busy)
        try:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(task(lambda feeds: list(session.run(names, dict(feeds)))))
                except BaseException as error:  # handed to the owner through the future
                    future.set_exception(error)
        finally:
            with self._lock:
                self._busy -= 1


def _serve(ref: weakref.ref[Replicas], work: queue.SimpleQueue[tuple[Future[Any], Callable[[Run], Any]]],
           index: int) -> None:
    """A replica thread: run the tasks handed to its ``Replicas`` on session ``index`` until it is gone."""
    while True:
        try:
            future, task = work.get(timeout=IDLE_CHECK_S)
        except queue.Empty:
            if ref() is None:
                return
            continue
        replicas = ref()
        if replicas is None:
            future.cancel()
            return
        replicas._run(index, future, task)
        del replicas, future, task  # hold nothing of the model while waiting


class ReplicaBuilder:
    """Builds a model's replicas once, in a thread of its own, the first time they are asked for.

    Args:
        make_session: Makes one one-thread session (raises on failure).
        count: Replicas to make.
        output_names: See ``Replicas``.
        model_name: For the threads' names and the log.
    """

    def __init__(self, make_session: Callable[[], Any], count: int, output_names: Sequence[str],
                 model_name: str) -> None:
        """Nothing is built yet."""
        self._make = make_session
        self._count = count
        self._names = list(output_names)
        self._model = model_name
        self._lock = threading.Lock()
        self._started = False
        self.replicas: Replicas | None = None
        #: Why the replicas could not be built (they are then never used).
        self.failed: str | None = None

    def get(self) -> Replicas | None:
        """The replicas when built; the first call starts building them (None until they are)."""
        replicas = self.replicas
        if replicas is not None or self._started:
            return replicas
        with self._lock:
            if not self._started:
                self._started = True
                # not a daemon (said explicitly: a thread inherits it from its creator, here often the
                # node's daemon intake thread): a process that ends meanwhile waits for the sessions
                # being made; torn down under a session's construction, the process aborts
                threading.Thread(target=self._build, name=f"vp-{self._model}-replicas", daemon=False).start()
        return None

    def _build(self) -> None:
        start = time.monotonic()
        try:
            sessions = [self._make() for _ in range(self._count)]
        except Exception as error:  # the model loaded once already: memory, most likely
            failed = f"{type(error).__name__}: {error}"
            _LOG.warning("model %r: replicas not built (%s); frames run one at a time", self._model, failed)
            self.failed = failed  # set once the warning is out
            return
        self.replicas = Replicas(sessions, self._names, self._model)
        _LOG.info("model %r: frames back up; %d one-thread replicas built in %.2f s, their inferences now run "
                  "side by side", self._model, self._count, time.monotonic() - start)


def describe_replicas(models: Mapping[str, Any]) -> str:
    """The replicas of a pipeline's models (``Model.replicas``), for diagnostics."""
    if len(models) != 1:
        return "not used (pipelines of one model only)"
    name, model = next(iter(models.items()))
    replicas = model.replicas(start=False)
    return f"{name}: " + ("none yet (no frame has backed up)" if replicas is None else replicas.describe())


__all__ = ["IDLE_CHECK_S", "ReplicaBuilder", "Replicas", "Run", "describe_replicas"]
