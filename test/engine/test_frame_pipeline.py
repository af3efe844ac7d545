"""The frame-level pipeline (docs/execution-modes.md): submit / try_get_result / wait_result, in every mode."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import InputError, PipelineClosedError
from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.session import InferenceSession

Writer = Callable[[str, str], Path]
IMAGE = np.zeros((4, 6, 3), np.uint8)

ECHO = """
SPIN = 0
local function spin() local x = 0; for i = 1, SPIN do x = x + i % 7 end; return x end
function preprocess(ctx)
  spin()
  return vp.from_table({{ctx.frame_id, 0, 0}}, "float32")
end
function postprocess(outputs, ctx)
  spin()
  if ctx.frame_id == FAIL_ON then error("boom on purpose") end
  return { frame = ctx.frame_id, y = outputs[1]:at(1, 1) }
end
"""

MODES = {
    "single": ("single", ["a"], "", {}),
    "serial": ("serial", ["a", "b"], "", {}),
    "parallel_sync": ("parallel_sync", ["a", "b"], "fusion = function(r) return r.a.frame + r.b.frame end", {}),
    "parallel_async": ("parallel_async", ["a", "b"], "", {}),
    "parallel_async_lossless": ("parallel_async", ["a", "b"], "", {"lossless": True}),
}


class _Delayed:
    """A real session that sleeps before each inference (releases the GIL, like ONNX Runtime)."""

    def __init__(self, inner: InferenceSession, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.inputs, self.outputs, self.metadata = inner.inputs, inner.outputs, inner.metadata

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        time.sleep(self.delay_s)
        return self.inner.run(feeds)


def delayed(delay_s: float) -> Callable[[ModelSpec, int, bool], InferenceSession]:
    def factory(spec: ModelSpec, threads: int, spinning: bool) -> InferenceSession:
        return _Delayed(onnx_session_factory(spec, threads, spinning), delay_s)  # type: ignore[return-value]
    return factory


@pytest.fixture
def make(write: Writer, scale_model: Path) -> Iterator[Callable[..., Pipeline]]:
    """``make(mode_key, extra="", spin=0, fail_on=-1, delay=0.0, **from_config)``; closed at teardown."""
    made: list[Pipeline] = []

    def _make(key: str, extra: str = "", spin: int = 0, fail_on: int = -1, delay: float = 0.0,
              **kwargs: Any) -> Pipeline:
        mode, names, fusion, options = MODES[key]
        for name in names:
            write(f"{name}.lua", f"FAIL_ON = {fail_on if name == names[-1] else -1}\n"
                  + ECHO.replace("SPIN = 0", f"SPIN = {spin}"))
        models = ", ".join(f'{{ name = "{n}", path = "scale.onnx", script = "{n}.lua" }}' for n in names)
        top = ", ".join(part for part in (fusion, extra) if part)
        path = write("p.lua", f'return {{ mode = "{mode}", models = {{ {models} }}, {top} }}')
        factory = delayed(delay) if delay else onnx_session_factory
        pipeline = Pipeline.from_config(path, session_factory=factory, **{**options, **kwargs})
        made.append(pipeline)
        return pipeline

    yield _make
    for pipeline in made:
        pipeline.close()


def live_contexts() -> int:
    gc.collect()
    return sum(isinstance(o, FrameContext) for o in gc.get_objects())


@pytest.mark.parametrize("key", list(MODES))
def test_results_come_back_in_order_none_lost_or_duplicated_over_500_frames_with_bounded_memory(
    make: Callable[..., Pipeline], key: str
) -> None:
    pipeline = make(key)
    results = []
    peak_contexts = peak_pending = 0
    for frame in range(500):
        while not pipeline.submit(IMAGE, stamp=("header", frame)):  # full: collect one, then retry
            result = pipeline.wait_result(5)
            assert result is not None
            results.append(result)
        peak_pending = max(peak_pending, pipeline.stats().pending)
        if frame % 100 == 50:
            peak_contexts = max(peak_contexts, live_contexts())
    while len(results) < 500:
        result = pipeline.wait_result(5)
        assert result is not None, f"only {len(results)} results"
        results.append(result)
    assert pipeline.try_get_result() is None
    assert [r.frame_id for r in results] == list(range(500))
    assert [r.stamp for r in results] == [("header", f) for f in range(500)]
    completed = [r for r in results if not r.dropped]
    assert all(r.error is None for r in completed)
    assert all(r.results["a"]["frame"] == r.frame_id for r in completed)
    dropped = [r for r in results if r.dropped]
    if key == "parallel_async":  # live: the main model's queue (2) drops what it cannot take, and says so
        assert all("was dropped before main model 'a' ran it" in (r.error or "") for r in dropped)
        assert pipeline.stats().model("a").dropped == pipeline.stats().frames_dropped == len(dropped)
    else:
        assert dropped == []
    assert peak_pending <= 8, "max_pending_frames bounds the frames in the pipeline"
    assert peak_contexts <= 8 * 3, f"{peak_contexts} frame contexts alive"
    stats = pipeline.stats()
    assert (stats.frames_in, stats.frames_out, stats.pending) == (500, 500, 0)


def test_pre_inference_and_postprocess_of_consecutive_frames_overlap(make: Callable[..., Pipeline]) -> None:
    # inference sleeps 40 ms (no core needed, like a GIL-free accelerator call); Lua pre+post
    # about 20 ms: overlapped (after the first frame), a frame costs ~40 ms even on one free core, sequential ~60 ms
    pipeline = make("single", "max_pending_frames = 16", spin=800_000, delay=0.04)  # Lua 5.4 with its time-limit hook
    pipeline.run(IMAGE)
    start = time.perf_counter()
    for _ in range(16):
        pipeline.run(IMAGE)
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(16):
        assert pipeline.submit(IMAGE)
    results = [pipeline.wait_result(5) for _ in range(16)]
    overlapped = time.perf_counter() - start
    assert [r.frame_id for r in results if r is not None] == list(range(17, 33))
    assert overlapped < 0.85 * sequential, f"overlapped {overlapped:.3f} s vs run() loop {sequential:.3f} s"


def test_reject_policy_refuses_a_frame_beyond_max_pending_frames_and_counts_it(
    make: Callable[..., Pipeline]
) -> None:
    pipeline = make("single", "max_pending_frames = 2", delay=0.2)
    assert pipeline.submit(IMAGE) and pipeline.submit(IMAGE)
    assert not pipeline.submit(IMAGE)
    assert [pipeline.wait_result(5).frame_id for _ in range(2)] == [0, 1]  # type: ignore[union-attr]
    assert pipeline.submit(IMAGE)
    assert pipeline.wait_result(5).frame_id == 2  # type: ignore[union-attr]
    assert pipeline.stats().frames_rejected == 1


def test_drop_oldest_policy_drops_the_oldest_pending_frames_and_counts_them(
    make: Callable[..., Pipeline]
) -> None:
    pipeline = make("serial", 'max_pending_frames = 2, submit_overflow = "drop_oldest"', delay=0.1)
    assert all(pipeline.submit(IMAGE) for _ in range(5))
    assert [pipeline.wait_result(5).frame_id for _ in range(2)] == [3, 4]  # type: ignore[union-attr]
    assert pipeline.wait_result(0.3) is None
    assert pipeline.stats().frames_dropped == 3


def test_block_policy_waits_for_a_collected_result_or_times_out(make: Callable[..., Pipeline]) -> None:
    pipeline = make("single", 'max_pending_frames = 1, submit_overflow = "block"', delay=0.05)
    assert pipeline.submit(IMAGE)
    assert not pipeline.submit(IMAGE, timeout=0.05)
    accepted: list[bool] = []
    producer = threading.Thread(target=lambda: accepted.append(pipeline.submit(IMAGE, timeout=5)))
    producer.start()
    assert pipeline.wait_result(5).frame_id == 0  # type: ignore[union-attr]
    producer.join(5)
    assert accepted == [True]
    assert pipeline.wait_result(5).frame_id == 1  # type: ignore[union-attr]
    assert pipeline.stats().frames_rejected == 1


def test_a_failing_frame_comes_back_with_its_error_and_the_stream_goes_on(make: Callable[..., Pipeline]) -> None:
    pipeline = make("serial", fail_on=3)
    for _ in range(6):
        assert pipeline.submit(IMAGE)
    results = [pipeline.wait_result(5) for _ in range(6)]
    assert [r.frame_id for r in results if r is not None] == list(range(6))
    failed = results[3]
    assert failed is not None and failed.error is not None and failed.outcomes == {}
    assert "ScriptError: b.lua:" in failed.error and "boom on purpose (model 'b', frame 3)" in failed.error
    assert all(r is not None and r.error is None for i, r in enumerate(results) if i != 3)
    assert pipeline.stats().frames_failed == 1


def test_an_invalid_image_raises_at_submit_and_takes_no_frame_index(make: Callable[..., Pipeline]) -> None:
    pipeline = make("single")
    with pytest.raises(InputError, match=r"image must be H x W x C uint8, got float32"):
        pipeline.submit(np.zeros((4, 6, 3), np.float32))
    assert pipeline.submit(IMAGE)
    assert pipeline.wait_result(5).frame_id == 0  # type: ignore[union-attr]


def test_run_keeps_working_alongside_submit(make: Callable[..., Pipeline]) -> None:
    pipeline = make("parallel_sync", delay=0.02)
    assert pipeline.submit(IMAGE, source="cam")
    direct = pipeline.run(IMAGE, source="other")
    assert (direct.source, direct.frame_id, direct.fused) == ("other", 0, 0)
    queued = pipeline.wait_result(5)
    assert queued is not None and (queued.source, queued.frame_id) == ("cam", 0)


@pytest.mark.parametrize("key", list(MODES))
def test_close_while_frames_are_in_flight_joins_every_thread_within_a_second(
    make: Callable[..., Pipeline], key: str
) -> None:
    pipeline = make(key, 'max_pending_frames = 8', delay=0.05)
    for _ in range(8):
        assert pipeline.submit(IMAGE)
    time.sleep(0.06)
    waiting: list[BaseException] = []

    def wait() -> None:
        try:
            while True:
                pipeline.wait_result(5)
        except PipelineClosedError as error:
            waiting.append(error)

    waiter = threading.Thread(target=wait)
    waiter.start()
    start = time.perf_counter()
    pipeline.close()
    assert time.perf_counter() - start < 1.0
    waiter.join(1)
    assert len(waiting) == 1
    assert [t.name for t in threading.enumerate() if t.name.startswith("vp-")] == []
    with pytest.raises(PipelineClosedError, match="the pipeline is closed"):
        pipeline.submit(IMAGE)
    with pytest.raises(PipelineClosedError, match="the pipeline is closed"):
        pipeline.wait_result(0)
