"""Shared records of the engine: enums and frozen dataclasses passed between layers."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ros_vision_pipe.engine.remote.backend_spec import RemoteBackend

from ros_vision_pipe.engine.lua.limits import DEFAULT_LIMITS, ScriptLimits


class Mode(enum.Enum):
    """Execution mode of a pipeline (docs/execution-modes.md)."""

    SINGLE = "single"
    SERIAL = "serial"
    PARALLEL_SYNC = "parallel_sync"
    PARALLEL_ASYNC = "parallel_async"


class ResultStatus(enum.Enum):
    """What happened to one model on one frame."""

    OK = "ok"  # computed on this frame
    SKIPPED = "skipped"  # preprocess returned nil, or the frame is not on the model's interval yet
    ERROR = "error"  # the model failed on this frame (per-worker isolation, parallel_async)
    REUSED = "reused"  # parallel_async: latest result of an earlier frame


class OverflowPolicy(enum.Enum):
    """What a bounded queue does when it is full."""

    DROP_OLDEST = "drop_oldest"  # discard the oldest queued item, count it, accept the new one
    BLOCK = "block"  # the producer waits for room
    REJECT = "reject"  # the new item is refused (frame-level pipeline ``submit``)


@dataclass(frozen=True)
class ModelSpec:
    """One model of a pipeline, validated from the Lua configuration.

    Attributes:
        name: Unique model name; key of its result in ``ctx.results``.
        model_path: Absolute path of the ONNX file.
        script_path: Absolute path of the Lua script defining preprocess/postprocess.
        providers: ONNX Runtime execution providers, in priority order.
        intra_op_threads: Threads per inference; ``None`` picks a default for the mode.
        dynamic_shape: Rewrite every input/output dimension to symbolic at load time.
        frame_interval: parallel_async: run on frames whose index is a multiple of this.
        max_queue_size: parallel_async: bound of the worker's queue.
        overflow: parallel_async: what a full worker queue does.
        backend: Where the inferences run: None for the local ONNX file, else a KServe v2
            server (``ros_vision_pipe.engine.remote``).
        script_limits: Time limit of each call into the model's script, memory limit of its runtime.
    """

    name: str
    model_path: Path
    script_path: Path
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    intra_op_threads: int | None = None
    dynamic_shape: bool = False
    frame_interval: int = 1
    max_queue_size: int = 2
    overflow: OverflowPolicy = OverflowPolicy.DROP_OLDEST
    backend: RemoteBackend | None = None
    script_limits: ScriptLimits = DEFAULT_LIMITS


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline configuration (docs/execution-modes.md, Configuration).

    Attributes:
        config_file: The Lua configuration file it was read from.
        mode: Execution mode.
        models: The models, in configuration order.
        has_fusion: Whether the configuration defines ``fusion(results)``.
        has_aggregator: Whether the configuration defines ``aggregator(results)``.
        max_pending_frames: Frame-level pipeline: frames submitted but not yet collected.
        submit_overflow: Frame-level pipeline: what ``submit`` does when that bound is reached.
        script_limits: Limits of the configuration's own runtime (``fusion``/``aggregator``),
            and the default of every model's.
    """

    config_file: Path
    mode: Mode
    models: tuple[ModelSpec, ...]
    has_fusion: bool = False
    has_aggregator: bool = False
    max_pending_frames: int = 8
    submit_overflow: OverflowPolicy = OverflowPolicy.REJECT
    script_limits: ScriptLimits = DEFAULT_LIMITS

    def model(self, name: str) -> ModelSpec:
        """Return the spec of the model called ``name``."""
        for spec in self.models:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True)
class ModelOutcome:
    """The result of one model for one frame, with its provenance.

    Attributes:
        model: Model name.
        status: What happened (ok, skipped, error, reused).
        value: The postprocess result converted to Python (dicts, lists, numbers,
            strings, ndarrays); ``None`` when skipped or failed.
        computed_on: Frame index the value was computed on (== the frame's index when fresh).
        age: Frames between the value's frame and this frame (0 when fresh).
        latency_ms: Wall time of preprocess + inference + postprocess, milliseconds.
        error: Error message when ``status`` is ERROR.
    """

    model: str
    status: ResultStatus
    value: Any
    computed_on: int
    age: int = 0
    latency_ms: float = 0.0
    error: str | None = None

    @property
    def fresh(self) -> bool:
        """True when the value was computed on this very frame."""
        return self.status is ResultStatus.OK


@dataclass(frozen=True)
class FrameResult:
    """Everything the pipeline produced for one frame.

    Attributes:
        frame_id: Pipeline frame index of the source (0, 1, 2, ...).
        source: Source (camera / topic) the frame came from.
        timestamp: Capture time of the frame, seconds.
        mode: Execution mode that produced it.
        outcomes: Per model outcome, in configuration order.
        fused: Output of ``fusion``/``aggregator`` converted to Python, if defined.
        has_fused: Whether a fusion/aggregator function ran.
        error: Frame-level failure (frame-level pipeline only; ``run`` raises instead).
        stamp: Opaque value handed in with the frame and returned untouched (e.g. a ROS header).
        dropped: The frame was dropped before its main model ran (a full queue, or
            ``submit`` with ``drop_oldest``); ``error`` says where.
    """

    frame_id: int
    source: str
    timestamp: float
    mode: Mode
    outcomes: Mapping[str, ModelOutcome] = field(default_factory=lambda: MappingProxyType({}))
    fused: Any = None
    has_fused: bool = False
    error: str | None = None
    stamp: Any = None
    dropped: bool = False

    @classmethod
    def failed(cls, frame_id: int, source: str, timestamp: float, mode: Mode, error: BaseException,
               stamp: Any = None) -> FrameResult:
        """The result of a frame that ``error`` ended: ``error`` reads ``"<ErrorType>: <message>"``."""
        return cls(frame_id=frame_id, source=source, timestamp=timestamp, mode=mode,
                   error=f"{type(error).__name__}: {error}", stamp=stamp)

    @property
    def results(self) -> dict[str, Any]:
        """Model name -> value, as ``ctx.results`` holds them (skipped models absent)."""
        return {
            name: outcome.value
            for name, outcome in self.outcomes.items()
            if outcome.value is not None
        }


@dataclass(frozen=True)
class ModelStats:
    """Counters of one model on one source, as published on ``/diagnostics``.

    Every outcome is counted once, where it is created: ``runs``, ``skipped``
    (preprocess returned nil) and ``errors`` by the thread that ran the model;
    ``reused`` and ``skipped`` ("no result yet") by the parallel_async aggregator.

    Attributes:
        source: Source (camera / topic) the frames came from.
        model: Model name.
        runs: Frames on which the model computed a value.
        skipped: Frames with no value: preprocess returned nil, or (parallel_async)
            no result of the model existed yet.
        reused: parallel_async: frames that carried an earlier frame's value.
        errors: Frames on which the model failed.
        dropped: parallel_async: frames discarded from the model's full queue.
        queue_depth: Frames waiting in the model's queue for this source now.
        latency_mean_ms: Mean preprocess + inference + postprocess time of recent runs.
        latency_p95_ms: 95th percentile of the same samples.
        latency_samples: Number of recent runs the two figures are computed on.
        latency_total_ms: Sum of the latencies of all ``runs`` (the mean over any period is
            the difference of two snapshots' totals over the difference of their runs).
        latency_last_ms: Latency of the latest run (0 before the first).
    """

    source: str
    model: str
    runs: int = 0
    skipped: int = 0
    reused: int = 0
    errors: int = 0
    dropped: int = 0
    queue_depth: int = 0
    latency_mean_ms: float = 0.0
    latency_p95_ms: float = 0.0
    latency_samples: int = 0
    latency_total_ms: float = 0.0
    latency_last_ms: float = 0.0


@dataclass(frozen=True)
class BackendStats:
    """Counters of one model served by a remote (KServe v2) server, as published on ``/diagnostics``.

    Attributes:
        model: Model name in the pipeline.
        url: Server URL (``grpc://host:port`` or ``http://host:port``).
        served_model: Model name on the server.
        version: Model version on the server ("" = the server's choice).
        state: ``connected`` (last request answered), ``unreachable`` (last request found no
            server), ``fallback`` (unreachable; the local ONNX file runs instead).
        shared_memory: Inputs travel through system shared memory.
        requests: Requests sent to the server.
        errors: Requests that failed (any reason).
        timeouts: Requests that got no answer within ``timeout_ms``.
        unreachable: Requests that found no server.
        fallback_runs: Inferences run on the local ONNX file instead.
        reconnects: Times the server was used again after being unreachable.
        in_flight: Requests sent and not answered yet.
        peak_in_flight: Most requests ever outstanding at once.
        last_error: Message of the latest failure ("" when none).
    """

    model: str
    url: str
    served_model: str
    version: str
    state: str
    shared_memory: bool = False
    requests: int = 0
    errors: int = 0
    timeouts: int = 0
    unreachable: int = 0
    fallback_runs: int = 0
    reconnects: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    last_error: str = ""


@dataclass(frozen=True)
class PipelineStats:
    """A snapshot of a pipeline's counters (``Pipeline.stats()``).

    Attributes:
        mode: Execution mode.
        models: One entry per (source, model) pair seen so far, sources in first-seen order.
        frames_in: Frames given to ``run`` or accepted by ``submit``.
        frames_out: Frame results handed back (``run`` returns, ``try_get_result``/``wait_result``).
        frames_failed: Frames that raised (``run``) or came back with ``error`` set.
        frames_rejected: Frames ``submit`` refused (``reject`` policy, or ``block`` timed out).
        frames_dropped: Frames dropped whole: ``submit`` with ``drop_oldest``, or the
            main model's queue overflowing (parallel_async).
        pending: Frames submitted to the frame-level pipeline and not yet collected.
        backends: One entry per model served by a remote server.
    """

    mode: Mode
    models: tuple[ModelStats, ...] = ()
    frames_in: int = 0
    frames_out: int = 0
    frames_failed: int = 0
    frames_rejected: int = 0
    frames_dropped: int = 0
    pending: int = 0
    backends: tuple[BackendStats, ...] = ()

    def model(self, name: str, source: str = "default") -> ModelStats:
        """The counters of model ``name`` on ``source`` (zeros when it has seen no frame)."""
        for stats in self.models:
            if stats.model == name and stats.source == source:
                return stats
        return ModelStats(source=source, model=name)
