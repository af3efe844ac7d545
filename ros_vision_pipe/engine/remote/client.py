"""One model on one KServe v2 server through ``tritonclient``: metadata and inference over gRPC or HTTP.

Every failure becomes a ``RemoteServerError`` whose message names the server and the
served model, with a ``FailureKind``: the server could not be reached, did not answer
in time, or answered with an error (unknown model or version, bad tensor...).

gRPC: one channel (thread-safe) that reconnects by itself with a short backoff (at most
one second), so a restarted server is used again within a second of being back;
requests go out asynchronously, several at once. HTTP (where only HTTP is reachable):
``tritonclient.http`` is not thread-safe, so each thread has its own client; tensors go
as binary data where the server offers the ``binary_tensor_data`` extension (Triton),
as JSON otherwise (MLServer).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ros_vision_pipe.engine.errors import EngineError, ModelLoadError
from ros_vision_pipe.engine.remote.backend_spec import RemoteBackend, Transport
from ros_vision_pipe.engine.remote.tensors import NUMPY_TO_KSERVE, specs_from_metadata
from ros_vision_pipe.engine.session import TensorSpec

#: gRPC reconnection backoff, milliseconds: a restarted server is found again within a second.
_RECONNECT_BACKOFF_MS = (100, 1000)
_MAX_MESSAGE = 2**31 - 1


class FailureKind(enum.Enum):
    """Why a request to the server failed."""

    UNREACHABLE = "unreachable"  # no connection (server down, restarting, network)
    TIMEOUT = "timeout"  # no answer within the request's deadline
    REJECTED = "rejected"  # the server answered with an error


class RemoteServerError(EngineError):
    """A KServe server failed a request; the message names the server and the served model."""

    def __init__(self, message: str, kind: FailureKind) -> None:
        """Keep ``kind`` with the message."""
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class ServerInfo:
    """What the server says about itself and the model at start-up."""

    server: str
    version: str
    extensions: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    versions: tuple[str, ...]


#: A shared-memory input: (region name, byte size, offset) per input name.
ShmInputs = Mapping[str, tuple[str, int, int]]


class KServeClient:
    """Talks to one server about one model (``backend.model``, ``backend.version``).

    Args:
        backend: The validated ``backend`` option.
    """

    def __init__(self, backend: RemoteBackend) -> None:
        """Create the connection (lazily connected: nothing is sent yet)."""
        self.backend = backend
        self.transport = backend.transport
        self._timeout_s = backend.timeout_ms / 1e3
        self._local = threading.local()
        self._pool: ThreadPoolExecutor | None = None
        #: HTTP: tensors as binary data (set from the server's extensions by ``server_info``).
        self.binary_data = False
        try:
            if self.transport is Transport.GRPC:
                import tritonclient.grpc as module
            else:
                import tritonclient.http as module  # type: ignore[no-redef]
        except ImportError as error:
            raise ModelLoadError(f"a 'kserve' backend needs the client library: pip install "
                                 f"'tritonclient[grpc,http]' (server {backend.url}): {error}") from error
        self._module: Any = module
        if self.transport is Transport.GRPC:
            low, high = _RECONNECT_BACKOFF_MS
            self._grpc = module.InferenceServerClient(backend.address, channel_args=[
                ("grpc.max_send_message_length", _MAX_MESSAGE),
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.initial_reconnect_backoff_ms", low),
                ("grpc.min_reconnect_backoff_ms", low),
                ("grpc.max_reconnect_backoff_ms", high),
            ])
        else:
            self._pool = ThreadPoolExecutor(max_workers=backend.max_in_flight,
                                            thread_name_prefix=f"kserve-{backend.model}")

    # -- errors ---------------------------------------------------------------------------

    def error(self, what: str, detail: object, kind: FailureKind) -> RemoteServerError:
        """A ``RemoteServerError`` naming the server and the model."""
        return RemoteServerError(f"KServe server {self.backend.url}, {self._model_words()}: {what}: {detail}", kind)

    def _model_words(self) -> str:
        version = f" version {self.backend.version!r}" if self.backend.version else ""
        return f"served model {self.backend.model!r}{version}"

    def classify(self, error: BaseException, what: str = "failed") -> RemoteServerError:
        """Turn a client library exception into a ``RemoteServerError`` of the right kind."""
        if isinstance(error, RemoteServerError):
            return error
        from tritonclient.utils import InferenceServerException

        if isinstance(error, InferenceServerException):
            status = str(error.status() or "")
            detail = error.message() or str(error)
            if "UNAVAILABLE" in status:
                return self.error("unreachable", detail, FailureKind.UNREACHABLE)
            if "DEADLINE_EXCEEDED" in status:
                return self.error(f"did not answer within {self.backend.timeout_ms} ms", detail, FailureKind.TIMEOUT)
            if "CANCELLED" in status:
                return self.error("unreachable (request cancelled)", detail, FailureKind.UNREACHABLE)
            return self.error(f"rejected the request ({status or 'error'})", detail, FailureKind.REJECTED)
        if isinstance(error, TimeoutError) or type(error).__name__ in ("Timeout", "timeout"):
            return self.error(f"did not answer within {self.backend.timeout_ms} ms", error, FailureKind.TIMEOUT)
        # HTTP: refused or reset connections, DNS failures... (socket and gevent errors)
        return self.error("unreachable", f"{type(error).__name__}: {error}", FailureKind.UNREACHABLE)

    # -- clients --------------------------------------------------------------------------

    def _client(self, timeout_s: float | None = None) -> Any:
        if self.transport is Transport.GRPC:
            return self._grpc
        client = getattr(self._local, "client", None)
        if client is None:
            timeout = self._timeout_s if timeout_s is None else timeout_s
            client = self._module.InferenceServerClient(
                self.backend.address, connection_timeout=timeout, network_timeout=timeout, concurrency=1)
            self._local.client = client
        return client

    def _call(self, method: str, *args: Any, timeout_s: float, **kwargs: Any) -> Any:
        """A non-inference call (metadata, health) with its own deadline."""
        try:
            if self.transport is Transport.GRPC:
                return getattr(self._grpc, method)(*args, client_timeout=timeout_s, **kwargs)
            client = self._module.InferenceServerClient(
                self.backend.address, connection_timeout=timeout_s, network_timeout=timeout_s, concurrency=1)
            try:
                return getattr(client, method)(*args, **kwargs)
            finally:
                client.close()
        except Exception as error:  # the client libraries raise several unrelated types
            raise self.classify(error, method) from error

    # -- start-up -------------------------------------------------------------------------

    def server_info(self, timeout_s: float) -> ServerInfo:
        """Server name, version and extensions, and the model's inputs and outputs.

        Raises:
            RemoteServerError: Unreachable, or the model (version) is not served; ``REJECTED``
                messages list the models the server has when it says.
        """
        json = self.transport is Transport.HTTP
        server = self._call("get_server_metadata", timeout_s=timeout_s, **({} if json else {"as_json": True}))
        try:
            model = self._call("get_model_metadata", self.backend.model, self.backend.version, timeout_s=timeout_s,
                               **({} if json else {"as_json": True}))
        except RemoteServerError as error:
            if error.kind is not FailureKind.REJECTED:
                raise
            detail = str(error).rpartition(": ")[2]
            raise self.error("not served", f"{detail}{self._served_models(timeout_s)}",
                             FailureKind.REJECTED) from error
        try:
            inputs = specs_from_metadata(model.get("inputs", []))
            outputs = specs_from_metadata(model.get("outputs", []))
        except ValueError as error:
            raise self.error("unusable metadata", error, FailureKind.REJECTED) from error
        if not inputs or not outputs:
            raise self.error("no inputs or outputs declared", f"metadata {model!r}", FailureKind.REJECTED)
        extensions = tuple(server.get("extensions", ()))
        self.binary_data = "binary_tensor_data" in extensions
        return ServerInfo(
            server=str(server.get("name", "")), version=str(server.get("version", "")),
            extensions=extensions, inputs=inputs, outputs=outputs,
            versions=tuple(str(v) for v in model.get("versions", ())),
        )

    def _served_models(self, timeout_s: float) -> str:
        try:
            index = self._call("get_model_repository_index", timeout_s=timeout_s,
                               **({} if self.transport is Transport.HTTP else {"as_json": True}))
        except RemoteServerError:
            return ""
        entries = index if isinstance(index, list) else index.get("models", [])
        served = sorted(f"{e.get('name')}:{e.get('version', '')}".rstrip(":") for e in entries)
        return f"; the server has {served}" if served else ""

    def live(self, timeout_s: float) -> bool:
        """Whether the server answers its liveness check within ``timeout_s``."""
        try:
            return bool(self._call("is_server_live", timeout_s=timeout_s))
        except RemoteServerError:
            return False

    def register_shared_memory(self, name: str, key: str, byte_size: int) -> None:
        """Register a system shared-memory region with the server."""
        self._call("register_system_shared_memory", name, key, byte_size, timeout_s=self._timeout_s)

    def unregister_shared_memory(self, name: str) -> None:
        """Unregister a region (best effort: the server may be gone)."""
        try:
            self._call("unregister_system_shared_memory", name, timeout_s=self._timeout_s)
        except RemoteServerError:
            pass

    # -- inference ------------------------------------------------------------------------

    def _request(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str],
                 shm: ShmInputs | None) -> tuple[list[Any], list[Any]]:
        inputs = []
        http = self.transport is Transport.HTTP
        for name, array in feeds.items():
            item = self._module.InferInput(name, list(array.shape), NUMPY_TO_KSERVE.get(str(array.dtype), "BYTES"))
            if shm is not None and name in shm:
                region, size, offset = shm[name]
                item.set_shared_memory(region, size, offset)
            elif http:
                item.set_data_from_numpy(array, binary_data=self.binary_data)
            else:
                item.set_data_from_numpy(array)
            inputs.append(item)
        requested = [self._module.InferRequestedOutput(name, binary_data=self.binary_data) if http
                     else self._module.InferRequestedOutput(name) for name in outputs]
        return inputs, requested

    def _arrays(self, result: Any, outputs: Sequence[str]) -> list[np.ndarray]:
        arrays = []
        for name in outputs:
            array = result.as_numpy(name)
            if array is None:
                raise self.error("answered without an output", f"no {name!r} in the response", FailureKind.REJECTED)
            arrays.append(array)
        return arrays

    def infer(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str],
              shm: ShmInputs | None = None) -> list[np.ndarray]:
        """One request, waiting for its answer (at most ``timeout_ms``).

        Raises:
            RemoteServerError: The request failed (kind says why).
        """
        try:
            inputs, requested = self._request(feeds, outputs, shm)
            common = {"model_version": self.backend.version, "outputs": requested}
            if self.transport is Transport.GRPC:
                result = self._grpc.infer(self.backend.model, inputs, client_timeout=self._timeout_s, **common)
            else:
                result = self._client().infer(self.backend.model, inputs, **common)
            return self._arrays(result, outputs)
        except Exception as error:  # the client libraries raise several unrelated types
            raise self.classify(error) from error

    def infer_async(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[str],
                    shm: ShmInputs | None = None) -> Future[list[np.ndarray]]:
        """Send one request without waiting; the future holds the outputs or a ``RemoteServerError``."""
        future: Future[list[np.ndarray]] = Future()
        if self._pool is not None:  # HTTP: a worker thread per request in flight
            def run() -> None:
                try:
                    future.set_result(self.infer(feeds, outputs, shm))
                except RemoteServerError as error:
                    future.set_exception(error)

            self._pool.submit(run)
            return future

        def done(result: Any, error: Any) -> None:
            try:
                if error is not None:
                    future.set_exception(self.classify(error))
                else:
                    future.set_result(self._arrays(result, outputs))
            except Exception as failure:  # a malformed response: fail the request, never the gRPC thread
                if not future.done():
                    future.set_exception(self.classify(failure))

        try:
            inputs, requested = self._request(feeds, outputs, shm)
            self._grpc.async_infer(self.backend.model, inputs, done, model_version=self.backend.version,
                                   outputs=requested, client_timeout=self._timeout_s)
        except Exception as error:  # the request could not even be sent
            future.set_exception(self.classify(error))
        return future

    def close(self) -> None:
        """Close the connection and the HTTP workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        if self.transport is Transport.GRPC:
            try:
                self._grpc.close()
            except Exception:  # closing a broken channel must not raise
                pass

