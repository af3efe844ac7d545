"""Reload without restart: build a pipeline beside the running one, swap it in at a frame boundary.

Three collaborators, all ROS-free (the node in ``ros/reload.py`` drives them):

- ``SessionCache``: a ``SessionFactory`` that hands back the session of a model whose file
  (path, size, modification time) and session options did not change, so that editing a Lua
  script reloads in milliseconds instead of re-creating the ONNX Runtime session.
- ``ModelSwitches``: per-model on/off switches shared by every generation; a disabled model's
  ``preprocess`` is not called (its result is SKIPPED, its task queue idles, serial dependents see nil).
- ``SwappablePipeline`` (generations.py): the generation serving now plus the ones still draining.

``PipelineBuilder.build`` loads a configuration, its sessions and scripts, and runs one warm-up
frame; only a generation that got that far is handed to ``SwappablePipeline.swap``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ros_vision_pipe.engine.config import load_config
from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.engine.generations import Generation
from ros_vision_pipe.engine.model import Model, Prepared, SessionFactory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import (
    FrameResult,
    ModelOutcome,
    ModelSpec,
    PipelineSpec,
    PipelineStats,
    ResultStatus,
)
from ros_vision_pipe.engine.runners import build_runner, session_options
from ros_vision_pipe.engine.session import InferenceSession
from ros_vision_pipe.engine.stats import StatsCollector
from ros_vision_pipe.engine.tasks import ModelTaskRunner

#: Source name of the warm-up frame a new generation runs before it is swapped in.
WARMUP_SOURCE = "reload-warmup"
#: Image of the warm-up frame when no real frame was seen yet (black, bgr8).
WARMUP_SHAPE = (480, 640, 3)
#: Skip reasons remembered per model until published (a bounded record).
MAX_SKIP_RECORDS = 1024
#: The ``ModelStats`` counter of each outcome status.
_STATUS_COUNTER = {ResultStatus.OK: "runs", ResultStatus.SKIPPED: "skipped", ResultStatus.REUSED: "reused",
                   ResultStatus.ERROR: "errors"}


class ReloadError(EngineError):
    """A new configuration could not be swapped in (the message carries the engine's error)."""


def config_hash(spec: PipelineSpec) -> str:
    """SHA-256 (16 hex digits) of the configuration file, every script, and each model file's identity.

    Model files count by path, size and modification time (hashing hundreds of MB would cost
    more than the reload); configuration and scripts by content.
    """
    digest = hashlib.sha256(spec.config_file.read_bytes())
    for model in spec.models:
        digest.update(model.name.encode())
        digest.update(model.script_path.read_bytes())
        stat = model.model_path.stat()
        digest.update(f"{model.model_path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


class SessionCache:
    """A ``SessionFactory`` that reuses the session of an unchanged model file with unchanged options.

    Args:
        factory: Builds a session on a miss.
    """

    def __init__(self, factory: SessionFactory) -> None:
        """Wrap ``factory``; nothing cached yet."""
        self._factory = factory
        self._sessions: dict[tuple[Any, ...], InferenceSession] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(spec: ModelSpec, intra_op_threads: int, allow_spinning: bool) -> tuple[Any, ...]:
        """What must be equal for a session to be reused: model name, file identity, options, backend."""
        stat = spec.model_path.stat()
        return (spec.name, str(spec.model_path), stat.st_size, stat.st_mtime_ns, spec.providers,
                spec.dynamic_shape, intra_op_threads, allow_spinning, spec.backend)

    def __call__(self, spec: ModelSpec, intra_op_threads: int, allow_spinning: bool) -> InferenceSession:
        """The cached session for ``spec`` and these options, or a new one."""
        try:
            key = self.key(spec, intra_op_threads, allow_spinning)
        except OSError:  # missing file: let the factory raise its ModelLoadError
            return self._factory(spec, intra_op_threads, allow_spinning)
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                self.hits += 1
                return session
        session = self._factory(spec, intra_op_threads, allow_spinning)
        with self._lock:
            self.misses += 1
            self._sessions[key] = session
        return session

    def retain(self, models: Any) -> None:
        """Forget every session that none of ``models`` (``Model``s of the serving generation) uses."""
        keep = {id(model.session) for model in models}
        with self._lock:
            self._sessions = {k: s for k, s in self._sessions.items() if id(s) in keep}


class ModelSwitches:
    """Per-model on/off switches, shared by every generation of a pipeline (thread-safe)."""

    def __init__(self) -> None:
        """Every model enabled."""
        self._disabled: dict[str, str] = {}
        self._skips: OrderedDict[tuple[str, str, int], str] = OrderedDict()
        self._published_skipped: Counter[tuple[str, str, ResultStatus]] = Counter()
        self._lock = threading.Lock()

    def set_enabled(self, model: str, enabled: bool, reason: str = "") -> None:
        """Enable ``model``, or disable it with ``reason`` (what its SKIPPED results will say)."""
        with self._lock:
            if enabled:
                self._disabled.pop(model, None)
            else:
                self._disabled[model] = reason or f"model {model!r} is disabled"

    def reason(self, model: str) -> str | None:
        """Why ``model`` is disabled, or None when it is enabled."""
        return self._disabled.get(model)

    def skipped(self, model: str, source: str, frame_id: int, reason: str) -> None:
        """Record that ``model`` skipped frame ``frame_id`` of ``source`` because it was disabled."""
        with self._lock:
            self._skips[(model, source, frame_id)] = reason
            while len(self._skips) > MAX_SKIP_RECORDS:
                self._skips.popitem(last=False)

    def apply(self, result: FrameResult) -> tuple[FrameResult, dict[str, str]]:
        """The result as published: disabled models SKIPPED (a value reused from before too), with reasons.

        Returns:
            The result (unchanged when no model was disabled) and model name -> skip reason.
        """
        if not self._disabled and not self._skips:
            return result, {}
        reasons: dict[str, str] = {}
        outcomes = dict(result.outcomes)
        with self._lock:
            for name, outcome in result.outcomes.items():
                reason = self._skips.pop((name, result.source, result.frame_id), None)
                if reason is None and outcome.status is ResultStatus.REUSED:
                    reason = self._disabled.get(name)
                if reason is not None:
                    reasons[name] = reason
                    outcomes[name] = ModelOutcome(name, ResultStatus.SKIPPED, None, result.frame_id)
                    if outcome.status is not ResultStatus.SKIPPED:
                        self._published_skipped[(result.source, name, outcome.status)] += 1
        if not reasons:
            return result, {}
        return replace(result, outcomes=MappingProxyType(outcomes)), reasons

    def as_published(self, stats: PipelineStats) -> PipelineStats:
        """``stats`` with the outcomes ``apply`` turned into SKIPPED counted as skipped.

        The engine counts an outcome where it is created; a disabled model's value reused from an
        earlier frame (parallel_async) is published as SKIPPED, and is counted so here.
        """
        with self._lock:
            moved = dict(self._published_skipped)
        if not moved:
            return stats
        rows = []
        for row in stats.models:
            counts: dict[str, Any] = {"skipped": row.skipped}
            for status in (ResultStatus.OK, ResultStatus.REUSED, ResultStatus.ERROR):
                count = moved.get((row.source, row.model, status), 0)
                if count:
                    field_name = _STATUS_COUNTER[status]
                    counts[field_name] = getattr(row, field_name) - count
                    counts["skipped"] += count
            rows.append(replace(row, **counts))
        return replace(stats, models=tuple(rows))


class SwitchableModel(Model):
    """A ``Model`` whose ``preprocess`` is not called while its switch is off (result SKIPPED)."""

    switches: ModelSwitches

    def preprocess(self, ctx: FrameContext) -> Prepared | None:
        """None (skip, reason recorded) while disabled, else the script's ``preprocess``."""
        reason = self.switches.reason(self.name)
        if reason is not None:
            self.switches.skipped(self.name, ctx.source, ctx.frame_id, reason)
            return None
        return super().preprocess(ctx)


class PipelineBuilder:
    """Builds generations: sessions through a ``SessionCache``, models that obey ``ModelSwitches``.

    Args:
        session_factory: Builds a session the cache does not hold.
        task_runner: Where each model's inferences run (shared by every generation: one task queue per
            model name, so an old and a new generation never run one session twice at once).
        switches: The on/off switches every generation's models obey.
        shares_cores: Busy threads outside the engine share the cores (the node): sessions are
            sized by the cores free (``session_options``).
        direct: single/serial pipelines take the direct path (``build_runner``; needs a
            ``task_runner`` that runs tasks in other threads).
        replicas: see ``build_runner``.
    """

    def __init__(self, session_factory: SessionFactory, task_runner: ModelTaskRunner | None = None,
                 switches: ModelSwitches | None = None, *, shares_cores: bool = False, direct: bool = False,
                 replicas: bool = True) -> None:
        """No generation built yet."""
        self.shares_cores = shares_cores
        self.direct = direct
        self.replicas = replicas
        self.sessions = SessionCache(session_factory)
        self.task_runner = task_runner
        self.switches = switches or ModelSwitches()
        self._number = 0
        self._lock = threading.Lock()

    def build(self, path: Path | str, warmup: np.ndarray | None = None, warmup_encoding: str = "bgr8", *,
              warm_up: bool = True) -> Generation:
        """Load ``path`` into a new pipeline and run one warm-up frame through it.

        Args:
            path: Pipeline configuration (Lua).
            warmup: The image of the warm-up frame (the last frame received); black 640x480 if None.
            warmup_encoding: Its encoding.
            warm_up: Run the warm-up frame (False for the first generation, built before anything spins).

        Raises:
            ReloadError: Loading or the warm-up frame failed; the message holds the engine's error.
        """
        start = time.perf_counter()
        hits = self.sessions.hits
        pipeline: Pipeline | None = None
        try:
            config = load_config(path)
            spec = config.spec
            threads, allow_spinning = session_options(spec.mode, len(spec.models), shares_cores=self.shares_cores,
                                                      direct=self.direct)
            models: list[Model] = []
            for model_spec in spec.models:
                model = SwitchableModel.load(
                    model_spec, intra_op_threads=threads if model_spec.intra_op_threads is None
                    else model_spec.intra_op_threads, allow_spinning=allow_spinning,
                    display_root=spec.config_file.parent, session_factory=self.sessions, tasks=self.task_runner)
                model.switches = self.switches  # type: ignore[attr-defined]
                models.append(model)
            stats = StatsCollector(spec.mode, tuple(model.name for model in models))
            runner = build_runner(config, models, stats=stats, direct=self.direct, replicas=self.replicas)
            pipeline = Pipeline(config, models, runner, stats=stats)
            baseline = None
            if warm_up:
                self._warm_up(pipeline, path, warmup, warmup_encoding)
                baseline = pipeline.stats()
            digest = config_hash(spec)
        except BaseException as error:
            if pipeline is not None:
                pipeline.close()
            if isinstance(error, ReloadError):
                raise
            if isinstance(error, (EngineError, OSError)):
                raise ReloadError(f"{type(error).__name__}: {error}") from error
            raise
        with self._lock:
            self._number += 1
            number = self._number
        return Generation(number, digest, pipeline, (time.perf_counter() - start) * 1e3,
                          self.sessions.hits - hits, baseline)


    @staticmethod
    def _warm_up(pipeline: Pipeline, path: Path | str, image: np.ndarray | None, encoding: str) -> None:
        if image is None:
            image, encoding = np.zeros(WARMUP_SHAPE, np.uint8), "bgr8"
        result = pipeline.run(image, source=WARMUP_SOURCE, encoding=encoding, frame_id=0)
        failed = [f"{o.model}: {o.error}" for o in result.outcomes.values() if o.status is ResultStatus.ERROR]
        if result.error or failed:
            raise ReloadError(f"warm-up frame of {str(path)!r} failed: {result.error or '; '.join(failed)}")


__all__ = ["MAX_SKIP_RECORDS", "WARMUP_SOURCE", "ModelSwitches", "PipelineBuilder", "ReloadError", "SessionCache",
           "SwitchableModel", "config_hash"]
