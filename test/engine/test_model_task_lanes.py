"""Injected task runners: every inference of a model runs on that model's lane."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.session import InferenceSession
from ros_vision_pipe.engine.tasks import ThreadTaskRunner

Writer = Callable[[str, str], Path]
SCRIPT = """
function preprocess(ctx) return vp.from_table({{1, 2, 3}}, "float32") end
function postprocess(outputs, ctx) return { y = outputs.y:at(1, 1) } end
"""


class SlowSession:
    """A real session that records which thread ran it, and when."""

    def __init__(self, inner: InferenceSession, log: list[tuple[str, str, float, float]], name: str) -> None:
        self.inner, self.log, self.name = inner, log, name
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        start = time.perf_counter()
        time.sleep(0.05)
        out = self.inner.run(feeds)
        self.log.append((self.name, threading.current_thread().name, start, time.perf_counter()))
        return out


def test_inferences_run_on_each_models_lane_and_two_models_overlap(write: Writer, scale_model: Path) -> None:
    write("m.lua", SCRIPT)
    path = write("p.lua", """
      return { mode = "parallel_sync", models = {
        { name = "a", path = "scale.onnx", script = "m.lua" },
        { name = "b", path = "scale.onnx", script = "m.lua" } } }
    """)
    log: list[tuple[str, str, float, float]] = []

    def factory(spec: ModelSpec, threads: int, spinning: bool) -> InferenceSession:
        return SlowSession(onnx_session_factory(spec, threads, spinning), log, spec.name)

    runner = ThreadTaskRunner(thread_name_prefix="lane")
    try:
        with Pipeline.from_config(path, session_factory=factory, task_runner=runner) as pipeline:
            for _ in range(3):
                result = pipeline.run(np.zeros((4, 4, 3), np.uint8))
                assert result.results == {"a": {"y": 2}, "b": {"y": 2}}
    finally:
        runner.close()
    assert {(name, thread) for name, thread, _, _ in log} == {("a", "lane-a_0"), ("b", "lane-b_0")}
    by_model = {name: [(s, e) for n, _, s, e in log if n == name] for name in ("a", "b")}
    overlaps = sum(1 for sa, ea in by_model["a"] for sb, eb in by_model["b"] if sa < eb and sb < ea)
    assert overlaps >= 1


class RecordingSession:
    """A real session whose outputs are tracked with weak references."""

    def __init__(self, inner: InferenceSession) -> None:
        self.inner = inner
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata
        self.refs: list[weakref.ref[np.ndarray]] = []

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        outputs = self.inner.run(feeds)
        self.refs.extend(weakref.ref(array) for array in outputs)
        return outputs


def test_model_outputs_seen_by_lua_are_freed_when_the_frame_is_done(write: Writer, scale_model: Path) -> None:
    # A [200000, 3] float32 output (2.4 MB) and a 6 MB frame: Lua counts their handles as a few
    # bytes; the engine collects after each call so the arrays do not outlive the frame.
    write("m.lua", """
      function preprocess(ctx) return vp.zeros({200000, 3}, "float32") end
      function postprocess(outputs, ctx)
        local kept = vp.squeeze(outputs.y)   -- a view keeping the output alive while referenced
        return { rows = kept:dim(1) }
      end
    """)
    path = write("p.lua", 'return { mode = "single", models = { { name = "m", path = "scale.onnx", script = "m.lua" } } }')
    sessions: list[RecordingSession] = []

    def factory(spec: ModelSpec, threads: int, spinning: bool) -> InferenceSession:
        sessions.append(RecordingSession(onnx_session_factory(spec, threads, spinning)))
        return sessions[-1]

    with Pipeline.from_config(path, session_factory=factory) as pipeline:
        for _ in range(3):
            assert pipeline.run(np.zeros((1000, 2000, 3), np.uint8)).results == {"m": {"rows": 200000}}
        assert len(sessions[0].refs) == 3
        assert all(ref() is None for ref in sessions[0].refs)
