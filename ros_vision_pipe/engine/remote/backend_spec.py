"""The ``backend`` option of a model: where its inferences run, validated from the configuration.

A model entry without ``backend`` (or with ``kind = "local"``) runs its ONNX file in
ONNX Runtime. ``kind = "kserve"`` sends its tensors to a KServe v2 inference server
(Triton, MLServer, KServe...)::

    backend = { kind = "kserve", url = "grpc://gpu-box:8001", model = "ssdlite_person",
                version = "1", timeout_ms = 200, fallback = "local" }
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class Transport(enum.Enum):
    """Transport of the KServe v2 protocol, chosen by the URL's scheme."""

    GRPC = "grpc"
    HTTP = "http"


class Fallback(enum.Enum):
    """What a model does while its server is unreachable."""

    NONE = "none"  # the frame gets an error result naming the server and model
    LOCAL = "local"  # the model's local ONNX file runs instead (reported as fallback)


class SharedMemory(enum.Enum):
    """Whether inputs travel through system shared memory (client and server on one host)."""

    AUTO = "auto"  # when the server offers the extension and the URL is a loopback address
    OFF = "off"  # always in the request body
    SYSTEM = "system"  # required: start-up fails when the server does not offer it


#: Default per-request deadline (connect + send + infer + receive), milliseconds.
DEFAULT_TIMEOUT_MS = 1000
#: Default time start-up waits for the server, milliseconds.
DEFAULT_CONNECT_TIMEOUT_MS = 5000
#: Default wait before a model on local fallback tries its server again, milliseconds.
DEFAULT_RETRY_INTERVAL_MS = 1000
#: Default requests of one model in flight at once (frame-level pipeline and parallel modes).
DEFAULT_MAX_IN_FLIGHT = 4

_KEYS = {"kind", "url", "http_url", "model", "version", "timeout_ms", "connect_timeout_ms", "retry_interval_ms",
         "fallback", "max_in_flight", "shared_memory"}


@dataclass(frozen=True)
class RemoteBackend:
    """A model served by a KServe v2 inference server.

    Attributes:
        url: ``grpc://host:port`` or ``http://host:port`` as written in the configuration.
        http_url: With a gRPC ``url``: the same server's HTTP endpoint, used when gRPC is not
            reachable at start-up (e.g. a proxy that passes only HTTP); "" for none.
        model: Name of the model on the server.
        version: Version on the server; "" lets the server choose.
        timeout_ms: Deadline of one request (connect, send, infer, receive).
        connect_timeout_ms: How long start-up waits for the server (and each health probe).
        retry_interval_ms: On local fallback: time before the server is tried again.
        fallback: What runs while the server is unreachable.
        max_in_flight: Requests of this model outstanding at once (1 = one at a time).
        shared_memory: Whether inputs go through system shared memory.
    """

    url: str
    model: str
    version: str = ""
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS
    retry_interval_ms: int = DEFAULT_RETRY_INTERVAL_MS
    fallback: Fallback = Fallback.NONE
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    shared_memory: SharedMemory = SharedMemory.AUTO
    http_url: str = ""

    @property
    def transport(self) -> Transport:
        """gRPC or HTTP, from the URL scheme."""
        return Transport(urlsplit(self.url).scheme)

    @property
    def address(self) -> str:
        """``host:port`` as the client library takes it."""
        return urlsplit(self.url).netloc

    @property
    def host(self) -> str:
        """Host name or address of the server."""
        return urlsplit(self.url).hostname or ""

    def describe(self) -> str:
        """``model 'x' version '1' on grpc://host:8001`` for messages."""
        version = f" version {self.version!r}" if self.version else ""
        return f"model {self.model!r}{version} on {self.url}"


def parse_backend(value: Any, fail: Callable[[str], Exception]) -> RemoteBackend | None:
    """Validate a model's ``backend`` table; None for a local model.

    Args:
        value: The table converted to Python (a dict), or None when absent.
        fail: Builds the configuration error for a message (names the file and model).

    Raises:
        ConfigError: Through ``fail``, naming the offending key and value.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise fail(f"backend must be a table such as {{ kind = 'kserve', url = ..., model = ... }}, got {value!r}")
    kind = value.get("kind", "local")
    if kind == "local":
        extra = sorted(set(value) - {"kind"})
        if extra:
            raise fail(f"backend kind 'local' takes no other option, got {extra}")
        return None
    if kind != "kserve":
        raise fail(f"backend.kind must be 'local' or 'kserve', got {kind!r}")
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise fail(f"unknown backend option(s) {unknown}; expected some of {sorted(_KEYS)}")
    url = value.get("url")
    if not isinstance(url, str):
        raise fail(f"backend.url must be 'grpc://host:port' or 'http://host:port', got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("grpc", "http") or not parts.hostname or parts.port is None \
            or parts.path not in ("", "/"):
        raise fail(f"backend.url must be 'grpc://host:port' or 'http://host:port', got {url!r}")
    http_url = value.get("http_url", "")
    if http_url:
        http_parts = urlsplit(http_url) if isinstance(http_url, str) else None
        if parts.scheme != "grpc" or http_parts is None or http_parts.scheme != "http" \
                or not http_parts.hostname or http_parts.port is None or http_parts.path not in ("", "/"):
            raise fail(f"backend.http_url must be 'http://host:port' next to a 'grpc://' url, got {http_url!r}")
    model = value.get("model")
    if not isinstance(model, str) or not model:
        raise fail(f"backend.model must be the served model's name, got {model!r}")
    version = value.get("version", "")
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        version = str(version)
    if not isinstance(version, str):
        raise fail(f"backend.version must be a version string such as '1', got {version!r}")

    def positive(key: str, default: int) -> int:
        number = value.get(key, default)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise fail(f"backend.{key} must be an integer >= 1, got {number!r}")
        return number

    def choice(key: str, enum_type: type[enum.Enum], default: enum.Enum) -> Any:
        name = value.get(key, default.value)
        try:
            return enum_type(name)
        except ValueError:
            raise fail(f"backend.{key} must be one of {[e.value for e in enum_type]}, got {name!r}") from None

    return RemoteBackend(
        url=url.rstrip("/"),
        http_url=str(http_url).rstrip("/"),
        model=model,
        version=version,
        timeout_ms=positive("timeout_ms", DEFAULT_TIMEOUT_MS),
        connect_timeout_ms=positive("connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS),
        retry_interval_ms=positive("retry_interval_ms", DEFAULT_RETRY_INTERVAL_MS),
        fallback=choice("fallback", Fallback, Fallback.NONE),
        max_in_flight=positive("max_in_flight", DEFAULT_MAX_IN_FLIGHT),
        shared_memory=choice("shared_memory", SharedMemory, SharedMemory.AUTO),
    )
