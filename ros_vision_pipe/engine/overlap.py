"""Overlap on the direct path: a model's frames that back up run their inferences side by side.

A direct job (``ModelStages.start_direct``) normally runs preprocess, inference and postprocess as
one task on the model's task queue, one frame of the model at a time. When frames back up (one
comes in before the last result is out: ``backlog``, from ``PendingFrames``) and the session has
replicas (replicas.py), the task runs preprocess and hands the inference to a free replica
(``send``); the model's task queue is then free for the next frame's preprocess. When an inference
ends, the rest of its job (postprocess, result) is queued on the model's task queue as a task of its
own, in frame order; a frame that starts while frames ahead of it are on replicas goes to a replica
too (``replicas_for``). The script's functions thus still run one at a time and in frame order.
After ``CALM_FRAMES`` frames in a row found the model free, frames run whole again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from typing import TYPE_CHECKING, Any

from ros_vision_pipe.engine.model import Model
from ros_vision_pipe.engine.replicas import Replicas

if TYPE_CHECKING:
    from ros_vision_pipe.engine.stages import ModelJob

#: Frames in a row that find the model free before frames that backed up stop overlapping.
CALM_FRAMES = 3


class Overlap:
    """The overlap of one model's direct jobs (see the module docstring).

    Args:
        model: The model (its replicas and its task queue).
        finish: Runs on the model's task queue for a job whose inference ended on a replica: the
            rest of the job, then ``ended``.
        close: Ends a job that cannot go on (the task runner closed, or ``stop`` ran), after
            ``ended``.
    """

    def __init__(self, model: Model, finish: Callable[[ModelJob], None], close: Callable[[ModelJob], None]) -> None:
        """Off until the mode sets ``enabled``."""
        self._model = model
        self._finish = finish
        self._close = close
        #: Whether the model may overlap at all (a one-model pipeline on the direct path). Set by the mode.
        self.enabled = False
        self._overlapping = False
        self._calm = 0  # frames in a row that found the model free (``room``)
        self._lock = threading.Lock()
        self._stopped = False
        self._jobs = 0  # jobs sent to a replica and not ended: later frames follow them (frame order)
        self._on_replicas: deque[ModelJob] = deque()  # jobs whose inference is on a replica, in frame order

    def backlog(self) -> None:
        """A frame came in before the previous one's result was out: overlap frames (when enabled)."""
        if self.enabled:
            self._calm = 0
            self._overlapping = self._model.replicas() is not None  # the first call starts building them

    def room(self, busy: int) -> bool:
        """Whether a frame started now, with ``busy`` direct jobs of the model in flight, runs at once."""
        if busy == 0:
            if self._overlapping:
                self._calm += 1
                self._overlapping = self._calm < CALM_FRAMES
            return True
        replicas = self._model.replicas() if self._overlapping else None
        return replicas is not None and busy < replicas.size

    def replicas_for(self, job: ModelJob) -> Replicas | None:
        """The replicas ``job``'s inference goes to (None: the job runs whole). Runs in the model's
        task, like ``finish``: the count of jobs on replicas is stable meanwhile."""
        if not job.pending:
            return None
        if self._jobs:  # frames ahead of this one are still on replicas: it follows them, in order
            return self._model.replicas(start=False)
        return self._model.replicas() if self._overlapping else None

    def send(self, job: ModelJob, replicas: Replicas) -> bool:
        """Run ``job``'s inference on a free replica of ``replicas``; False after ``stop`` (nothing sent)."""
        assert job.prepared is not None
        sent = time.perf_counter()
        with self._lock:
            if self._stopped:
                return False
            self._jobs += 1
            self._on_replicas.append(job)
            replica = job.replica = self._model.infer_on_replica(replicas, job.prepared, job.ctx.frame_id)
        replica.add_done_callback(partial(self._inferred, job, sent))
        return True

    def _inferred(self, job: ModelJob, sent: float, _: Future[list[Any]]) -> None:
        """In the replica's thread: queue the rest of each job whose inference ended, in frame order."""
        job.elapsed += time.perf_counter() - sent
        closed: list[ModelJob] = []
        with self._lock:  # held while queueing: the tasks go in frame order
            while self._on_replicas and _inference_ended(self._on_replicas[0]):
                ready = self._on_replicas.popleft()
                try:
                    future = self._model.run_task(partial(self._finish, ready))
                except RuntimeError:  # the task runner is closed
                    closed.append(ready)
                    continue
                future.add_done_callback(partial(self._cancelled, ready))
        for ready in closed:
            self.ended()
            self._close(ready)

    def _cancelled(self, job: ModelJob, future: Future[None]) -> None:
        if future.cancelled():  # the task runner closed before ``finish`` ran
            self.ended()
            self._close(job)

    def ended(self) -> None:
        """A job sent to a replica has ended."""
        with self._lock:
            self._jobs -= 1

    def stop(self) -> None:
        """Nothing more starts on a replica; an inference no replica has started is cancelled (its job
        is closed)."""
        with self._lock:
            self._stopped = True
        for future in self.running():
            future.cancel()

    def running(self) -> list[Future[list[Any]]]:
        """The inferences sent to replicas and not ended."""
        with self._lock:
            return [job.replica for job in self._on_replicas if job.replica is not None]


def _inference_ended(job: ModelJob) -> bool:
    return job.replica is not None and job.replica.done()


__all__ = ["CALM_FRAMES", "Overlap"]
