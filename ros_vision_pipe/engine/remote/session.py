"""``KServeSession``: a model's ``InferenceSession`` on a KServe v2 server, with local fallback.

Start-up reads the server's metadata of the model (waiting up to
``connect_timeout_ms`` for the server) and checks it against the local ONNX file
when that file exists (names, dtypes, shapes; the file's output order is kept, so a
script's ``outputs[1]`` means the same remote and local). The script's tensors are
then checked against the served model's inputs by ``Model`` with the same errors as
for a local model.

Per request: a deadline of ``timeout_ms``; a failure raises ``RemoteServerError``
naming the server and the served model (the frame's result is an error, counted;
the stream goes on). The gRPC channel reconnects by itself; each request tries the
server again. With ``fallback = "local"``, a request that finds no server (or no
answer in time) runs on the local ONNX file instead, and so do the next ones until
``retry_interval_ms`` has passed; then the server is probed (metadata re-checked) and
used again once it answers. ``backend_stats()`` reports the state and the counters.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ros_vision_pipe.engine.errors import ModelLoadError
from ros_vision_pipe.engine.records import BackendStats
from ros_vision_pipe.engine.remote.backend_spec import Fallback, RemoteBackend, SharedMemory
from ros_vision_pipe.engine.remote.client import FailureKind, KServeClient, RemoteServerError, ServerInfo
from ros_vision_pipe.engine.remote.local_reference import read_local_reference
from ros_vision_pipe.engine.remote.shared_memory import SharedMemoryInputs, use_shared_memory
from ros_vision_pipe.engine.remote.tensors import differences
from ros_vision_pipe.engine.session import DescribedSession, InferenceSession, TensorSpec

_LOG = logging.getLogger("ros_vision_pipe.engine.remote")


class BackendState(enum.Enum):
    """Where a remote model's inferences go now."""

    CONNECTED = "connected"
    UNREACHABLE = "unreachable"
    FALLBACK = "fallback"


class _Counters:
    __slots__ = ("requests", "errors", "timeouts", "unreachable", "fallback_runs", "reconnects", "in_flight",
                 "peak_in_flight", "last_error")

    def __init__(self) -> None:
        self.requests = self.errors = self.timeouts = self.unreachable = 0
        self.fallback_runs = self.reconnects = self.in_flight = self.peak_in_flight = 0
        self.last_error = ""


def _ordered(served: tuple[TensorSpec, ...], local: tuple[TensorSpec, ...] | None) -> tuple[TensorSpec, ...]:
    """The served specs in the local file's order (the order the scripts were written for)."""
    if local is None:
        return served
    by_name = {spec.name: spec for spec in served}
    return tuple(by_name[spec.name] for spec in local if spec.name in by_name)


class KServeSession(DescribedSession):
    """A model served by a KServe v2 server (Triton, MLServer...), behind the ``InferenceSession`` Protocol.

    Args:
        backend: The model's validated ``backend`` option.
        model_name: The model's name in the pipeline (error messages, stats).
        model_path: The model's local ONNX file: reference for the checks and the output
            order, and the fallback; need not exist without ``fallback = "local"``.
        local_factory: Builds the local session (``fallback = "local"`` only).

    Raises:
        ModelLoadError: The server is unreachable at start-up (without fallback), does not
            serve the model or version, or serves one that differs from the local file.
    """

    def __init__(self, backend: RemoteBackend, *, model_name: str, model_path: Path,
                 local_factory: Callable[[], InferenceSession] | None = None) -> None:
        """Connect, read and check the model's metadata, prepare the fallback and shared memory."""
        self.backend = backend
        self.model_name = model_name
        self.max_in_flight = backend.max_in_flight
        self._where = f"(model {model_name!r})"
        self._client = KServeClient(backend)
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._counters = _Counters()
        self._retry_at = 0.0
        self._local: InferenceSession | None = None
        self._fallback_pool: ThreadPoolExecutor | None = None
        self._shm: SharedMemoryInputs | None = None
        self._shm_stale = False  # a server that went away forgot the regions: register them again
        self.shared_memory_reason = ""
        try:
            reference = read_local_reference(model_path)
            if backend.fallback is Fallback.LOCAL:
                if local_factory is None:
                    raise ModelLoadError(f"fallback = 'local' needs the local ONNX file {str(model_path)!r} "
                                         f"{self._where}")
                self._local = local_factory()
                self._fallback_pool = ThreadPoolExecutor(1, thread_name_prefix=f"kserve-fallback-{model_name}")
            self._reference = reference
            info = self._connect()
            if info is None:  # unreachable, running on the local file until the server answers
                assert self._local is not None
                self._state = BackendState.FALLBACK
                self._inputs, self._outputs = self._local.inputs, self._local.outputs
            else:
                self._state = BackendState.CONNECTED
                self._inputs = _ordered(info.inputs, reference.inputs if reference else None)
                self._outputs = _ordered(info.outputs, reference.outputs if reference else None)
                self._setup_shared_memory(info)
        except BaseException:
            self.close()
            raise
        self._output_names = [spec.name for spec in self._outputs]
        metadata = reference.metadata if reference else {}
        self._metadata: Mapping[str, str] = MappingProxyType(dict(metadata))

    # -- start-up ---------------------------------------------------------------------------

    def _first_answer(self, timeout_s: float) -> ServerInfo:
        """Metadata over ``url``; when gRPC is unreachable and ``http_url`` is set, over HTTP instead."""
        try:
            return self._client.server_info(timeout_s)
        except RemoteServerError as error:
            if error.kind is FailureKind.REJECTED or not self.backend.http_url:
                raise
            http = KServeClient(dataclasses.replace(self.backend, url=self.backend.http_url, http_url=""))
            try:
                info = http.server_info(timeout_s)
            except RemoteServerError as http_error:
                http.close()
                if http_error.kind is FailureKind.REJECTED:
                    raise
                raise error from http_error
            _LOG.warning("%s %s: using HTTP, %s", error, self._where, self.backend.http_url)
            self._client.close()
            self._client = http
            self.backend = http.backend
            return info

    def _connect(self) -> ServerInfo | None:
        """The server's metadata of the model, checked; None when unreachable and on fallback."""
        deadline = time.monotonic() + self.backend.connect_timeout_ms / 1e3
        while True:
            remaining = deadline - time.monotonic()
            try:
                info = self._first_answer(max(0.05, min(remaining, self.backend.timeout_ms / 1e3 * 5)))
                break
            except RemoteServerError as error:
                if error.kind is FailureKind.REJECTED:
                    raise ModelLoadError(f"{error} {self._where}") from error
                if time.monotonic() + 0.1 < deadline:
                    time.sleep(0.1)
                    continue
                if self._local is not None:
                    _LOG.warning("%s %s: starting on the local ONNX file (fallback)", error, self._where)
                    self._note_failure(error)
                    self._retry_at = time.monotonic() + self.backend.retry_interval_ms / 1e3
                    return None
                raise ModelLoadError(
                    f"{error} {self._where}; within connect_timeout_ms = {self.backend.connect_timeout_ms}. "
                    f"Is the server running? (fallback = 'local' would run the local file meanwhile)") from error
        self._check(info)
        return info

    def _check(self, info: ServerInfo) -> None:
        local = self._local or self._reference
        if local is None:
            return
        problems = (differences(local.inputs, info.inputs, "inputs")
                    + differences(local.outputs, info.outputs, "outputs"))
        if problems:
            raise ModelLoadError(
                f"KServe server {self.backend.url}, served model {self.backend.model!r}: differs from the local "
                f"file: {'; '.join(problems)} {self._where}")

    def _setup_shared_memory(self, info: ServerInfo) -> None:
        use, reason = use_shared_memory(self.backend, info.extensions)
        self.shared_memory_reason = reason
        if self.backend.shared_memory is SharedMemory.SYSTEM and not use:
            raise ModelLoadError(f"shared_memory = 'system' but {reason} (server {self.backend.url}) {self._where}")
        if use:
            self._shm = SharedMemoryInputs(self._client, self.max_in_flight)
        _LOG.info("%s %s: shared memory %s (%s)", self.backend.describe(), self._where,
                  "on" if use else "off", reason)

    # -- InferenceSession (inputs, outputs, metadata: DescribedSession) ---------------------

    @property
    def state(self) -> BackendState:
        """Where the inferences go now."""
        return self._state

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One inference, waiting for it (on the local file while on fallback).

        Raises:
            RemoteServerError: The request failed and there is no fallback (or the server rejected it).
        """
        if self._on_fallback_now():
            return self._run_local(feeds)
        self._sent()
        try:
            self._recheck_after_outage()
            outputs = self._send(feeds)
        except RemoteServerError as error:
            if self._failed(error):
                return self._run_local(feeds)
            raise
        self._answered()
        return outputs

    def run_async(self, feeds: Mapping[str, np.ndarray]) -> Future[list[np.ndarray]]:
        """Send one inference without waiting (several may be in flight); the future holds the outputs."""
        if self._on_fallback_now():
            return self._completed(lambda: self._run_local(feeds))
        try:
            self._recheck_after_outage()
            slot, shm = self._write_shared(feeds) if self._shm is not None else (None, None)
        except RemoteServerError as error:  # still away, changed, or its regions could not be registered
            self._sent()
            if self._failed(error):
                return self._completed(lambda: self._run_local(feeds))
            failed: Future[list[np.ndarray]] = Future()
            failed.set_exception(error)
            return failed
        self._sent()
        request = self._client.infer_async(feeds, self._output_names, shm)
        result: Future[list[np.ndarray]] = Future()

        def done(request: Future[list[np.ndarray]]) -> None:
            if slot is not None and self._shm is not None:
                self._shm.release(slot)
            error = request.exception()
            if error is None:
                self._answered()
                result.set_result(request.result())
            elif isinstance(error, RemoteServerError) and self._failed(error):
                assert self._fallback_pool is not None
                try:
                    self._fallback_pool.submit(self._settle, result, lambda: self._run_local(feeds))
                except RuntimeError as closed:  # the session was closed meanwhile
                    result.set_exception(closed)
            else:
                result.set_exception(error)

        request.add_done_callback(done)
        return result

    # -- requests, failures, fallback -------------------------------------------------------

    def _send(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if self._shm is None:
            return self._client.infer(feeds, self._output_names)
        slot, shm = self._write_shared(feeds)
        try:
            return self._client.infer(feeds, self._output_names, shm)
        finally:
            self._shm.release(slot)

    def _recheck_after_outage(self) -> None:
        """After the server was unreachable (no fallback): check it serves the same model before sending.

        A restarted server may serve another model under the same name; its metadata is checked
        again (one short call) before the first request goes to it.

        Raises:
            RemoteServerError: Still unreachable, or it now serves a model that differs (``REJECTED``).
        """
        if self._state is not BackendState.UNREACHABLE:
            return
        info = self._client.server_info(min(self.backend.connect_timeout_ms, self.backend.timeout_ms) / 1e3)
        problems = (differences(self._inputs, info.inputs, "inputs")
                    + differences(self._outputs, info.outputs, "outputs"))
        if problems:
            raise self._client.error("serves another model than at start-up",
                                     "; ".join(problems).replace("locally", "at start-up"), FailureKind.REJECTED)

    def _write_shared(self, feeds: Mapping[str, np.ndarray]) -> tuple[int, Mapping[str, tuple[str, int, int]]]:
        assert self._shm is not None
        if self._shm_stale:
            self._shm.reregister()
            self._shm_stale = False
        return self._shm.write(feeds)

    def _sent(self) -> None:
        with self._lock:
            self._counters.requests += 1
            self._counters.in_flight += 1
            self._counters.peak_in_flight = max(self._counters.peak_in_flight, self._counters.in_flight)

    def _answered(self) -> None:
        with self._lock:
            self._counters.in_flight -= 1
            if self._state is not BackendState.CONNECTED:
                self._counters.reconnects += 1
                _LOG.warning("KServe server %s answers again %s", self.backend.url, self._where)
            self._state = BackendState.CONNECTED

    def _note_failure(self, error: RemoteServerError) -> None:
        counters = self._counters
        counters.errors += 1
        counters.timeouts += error.kind is FailureKind.TIMEOUT
        counters.unreachable += error.kind is FailureKind.UNREACHABLE
        counters.last_error = str(error)

    def _failed(self, error: RemoteServerError) -> bool:
        """Count a failed request; True when it should run on the local file instead."""
        transport = error.kind is not FailureKind.REJECTED
        with self._lock:
            self._counters.in_flight -= 1
            self._note_failure(error)
            if not transport:
                return False
            self._shm_stale = self._shm is not None
            if self._local is None:
                self._state = BackendState.UNREACHABLE
                return False
            if self._state is not BackendState.FALLBACK:
                _LOG.warning("%s %s: running the local ONNX file until the server answers", error, self._where)
            self._state = BackendState.FALLBACK
            self._retry_at = time.monotonic() + self.backend.retry_interval_ms / 1e3
            return True

    def _on_fallback_now(self) -> bool:
        """True while on fallback and not yet time to try the server (or the probe failed)."""
        if self._state is not BackendState.FALLBACK:
            return False
        if time.monotonic() < self._retry_at or not self._probe_lock.acquire(blocking=False):
            return True
        try:  # one caller probes; the others keep running locally meanwhile
            timeout_s = min(self.backend.connect_timeout_ms, self.backend.timeout_ms) / 1e3
            info = self._client.server_info(timeout_s)
            self._check(info)
        except (RemoteServerError, ModelLoadError) as error:
            with self._lock:
                self._counters.last_error = str(error)
                self._retry_at = time.monotonic() + self.backend.retry_interval_ms / 1e3
            return True
        finally:
            self._probe_lock.release()
        with self._lock:  # half-open: this request tries the server, the others stay local until it answers
            self._retry_at = time.monotonic() + self.backend.retry_interval_ms / 1e3
        return False  # this request goes to the server; its answer marks the reconnection

    def _run_local(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        assert self._local is not None
        with self._lock:
            self._counters.fallback_runs += 1
        return self._local.run(feeds)

    @staticmethod
    def _settle(future: Future[list[np.ndarray]], compute: Callable[[], list[np.ndarray]]) -> None:
        try:
            future.set_result(compute())
        except BaseException as error:  # handed to the waiting stage through the future
            future.set_exception(error)

    def _completed(self, compute: Callable[[], list[np.ndarray]]) -> Future[list[np.ndarray]]:
        future: Future[list[np.ndarray]] = Future()
        self._settle(future, compute)
        return future

    # -- reporting, closing -----------------------------------------------------------------

    def backend_stats(self) -> BackendStats:
        """A snapshot of the state and counters (``Pipeline.stats().backends``)."""
        with self._lock:
            c = self._counters
            return BackendStats(
                model=self.model_name, url=self.backend.url, served_model=self.backend.model,
                version=self.backend.version, state=self._state.value, shared_memory=self._shm is not None,
                requests=c.requests, errors=c.errors, timeouts=c.timeouts, unreachable=c.unreachable,
                fallback_runs=c.fallback_runs, reconnects=c.reconnects, in_flight=c.in_flight,
                peak_in_flight=c.peak_in_flight, last_error=c.last_error)

    def close(self) -> None:
        """Release the shared memory, the fallback thread and the connection."""
        if self._shm is not None:
            self._shm.close()
            self._shm = None
        if self._fallback_pool is not None:
            self._fallback_pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()
