"""Inferences in flight: models whose session sends requests without waiting (remote servers).

A session with ``run_async(feeds) -> Future`` and ``max_in_flight > 1`` (``KServeSession``)
lets ``ModelStages`` keep several frames' requests outstanding at once: the inference
thread only sends, and the postprocess thread waits for each answer in frame order.
Local ONNX Runtime sessions compute in the inference thread as before (window 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from ros_vision_pipe.engine.errors import InferenceError, frame_suffix
from ros_vision_pipe.engine.model import Model, Prepared

#: Requests outstanding at once for one model.
Requests = Sequence[Future[list[np.ndarray]]]


def in_flight_window(model: Model) -> int:
    """Requests of ``model`` that may be outstanding at once (1 unless its session is asynchronous)."""
    session: Any = model.session
    if not callable(getattr(session, "run_async", None)):
        return 1
    return max(1, int(getattr(session, "max_in_flight", 1)))


def start_inference(model: Model, prepared: Prepared) -> Requests:
    """Send the inference of one frame; a batch on a fixed-batch-1 model goes as one request per item."""
    session: Any = model.session
    feeds = prepared.feeds
    fixed = {spec.name for spec in session.inputs if spec.fixed_batch}
    batch = {array.shape[0] for array in feeds.values() if array.ndim > 0}
    if len(batch) == 1 and next(iter(batch)) > 1 and fixed & set(feeds):
        size = next(iter(batch))
        return [session.run_async({n: a[i : i + 1] for n, a in feeds.items()}) for i in range(size)]
    return [session.run_async(feeds)]


def collect_outputs(requests: Requests, model: str, frame_id: int) -> list[np.ndarray]:
    """Wait for the answers of ``start_inference`` (items of a split batch concatenated back).

    Raises:
        InferenceError: A request failed; the message names the model and frame (and the
            server, for a remote model), as ``Model.infer`` does.
    """
    try:
        parts = [request.result() for request in requests]
    except InferenceError:
        raise
    except Exception as error:  # the session's own error type (RemoteServerError) or a bug
        raise InferenceError(f"inference failed: {error}{frame_suffix(model, frame_id)}") from error
    if len(parts) == 1:
        return parts[0]
    return [np.concatenate([part[k] for part in parts], axis=0) for k in range(len(parts[0]))]
