"""Fixtures of the parallel-mode tests: configs around the real ``y = 2x`` ONNX model,
and sessions that are slow or fail on purpose (faults injected through ``SessionFactory``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.model import SessionFactory, onnx_session_factory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.session import InferenceSession, TensorSpec

IMAGE = np.zeros((4, 6, 3), np.uint8)

#: A model script: feeds [[frame_id, 0, 0]] to ``y = 2x``; returns the frame it ran on,
#: 2 * frame_id as computed by ONNX Runtime, and the frame of every result it could see.
ECHO = """
function preprocess(ctx)
  return vp.from_table({{ctx.frame_id, 0, 0}}, "float32")
end
function postprocess(outputs, ctx)
  local seen = {}
  for name, value in pairs(ctx.results) do seen[name] = value.frame end
  return { frame = ctx.frame_id, y = outputs[1]:at(1, 1), seen = seen }
end
"""


class Scripts:
    """Lua model scripts for the tests."""

    echo = ECHO

    @staticmethod
    def failing(function: str, frame: int) -> str:
        """``ECHO`` whose ``function`` (preprocess or postprocess) raises on frame ``frame``."""
        header = "function postprocess(outputs, ctx)" if function == "postprocess" else "function preprocess(ctx)"
        return ECHO.replace(header, header + f'\n  if ctx.frame_id == {frame} then error("boom on purpose") end')


class SlowSession:
    """A real session that sleeps before each inference, or raises on chosen calls."""

    def __init__(self, inner: InferenceSession, delay_s: float = 0.0, fail_calls: Sequence[int] = ()) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.fail_calls = set(fail_calls)
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.inner.outputs

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.inner.metadata

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            call = self.calls
            self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        if call in self.fail_calls:
            raise RuntimeError("device lost on purpose")
        return self.inner.run(feeds)


class Sessions:
    """A ``SessionFactory`` that records every session it builds (name -> list of sessions)."""

    def __init__(self, delays: Mapping[str, float] | None = None,
                 fail_calls: Mapping[str, Sequence[int]] | None = None) -> None:
        self.delays = dict(delays or {})
        self.fail_calls = dict(fail_calls or {})
        self.built: dict[str, list[SlowSession]] = {}
        self.threads: dict[str, int] = {}

    def __call__(self, spec: ModelSpec, intra_op_threads: int, allow_spinning: bool) -> InferenceSession:
        inner = onnx_session_factory(spec, intra_op_threads, allow_spinning)
        session = SlowSession(inner, self.delays.get(spec.name, 0.0), self.fail_calls.get(spec.name, ()))
        self.built.setdefault(spec.name, []).append(session)
        self.threads[spec.name] = intra_op_threads
        return session


#: ``make_pipeline(mode, [(name, script, options), ...], extra="", **from_config kwargs)``
MakePipeline = Callable[..., Pipeline]


@pytest.fixture
def make_pipeline(write: Callable[[str, str], Path], scale_model: Path) -> Iterator[MakePipeline]:
    """Write a configuration of ``y = 2x`` models with the given scripts and load it; closed at teardown."""
    made: list[Pipeline] = []

    def _make(mode: str, models: Sequence[tuple[str, str, str]], extra: str = "",
              session_factory: SessionFactory = onnx_session_factory, **kwargs: Any) -> Pipeline:
        entries = []
        for name, script, options in models:
            write(f"{name}.lua", script)
            entries.append(f'{{ name = "{name}", path = "scale.onnx", script = "{name}.lua", {options} }}')
        path = write("p.lua", f'return {{ mode = "{mode}", models = {{ {", ".join(entries)} }}, {extra} }}')
        pipeline = Pipeline.from_config(path, session_factory=session_factory, **kwargs)
        made.append(pipeline)
        return pipeline

    yield _make
    for pipeline in made:
        pipeline.close()


@pytest.fixture
def scripts() -> type[Scripts]:
    """The Lua scripts: ``scripts.echo``, ``scripts.failing(function, frame)``."""
    return Scripts


@pytest.fixture
def within() -> Callable[[float, Callable[[], Any]], Any]:
    """``within(seconds, function)``: call it in a thread, fail when it blocks longer."""
    return call_within


@pytest.fixture
def engine_threads() -> Callable[[], list[threading.Thread]]:
    """``engine_threads()``: the engine's threads still alive."""
    return alive_engine_threads


def call_within(seconds: float, function: Callable[[], Any]) -> Any:
    """Call ``function`` in a thread; fail the test if it has not returned after ``seconds``."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = function()
        except BaseException as error:  # handed back to the test
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still blocked after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value")


def alive_engine_threads() -> list[threading.Thread]:
    """The engine's threads still alive (their names start with ``vp-``)."""
    return [t for t in threading.enumerate() if t.name.startswith("vp-") and t.is_alive()]


@pytest.fixture
def sessions() -> type[Sessions]:
    """``sessions(delays={model: s}, fail_calls={model: [call index]})``: a recording ``SessionFactory``."""
    return Sessions


@pytest.fixture
def image() -> np.ndarray:
    """A small black RGB frame."""
    return IMAGE
