"""Time and memory limits of script calls, through real pipelines (real ONNX model, real Lua)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ros_vision_pipe.engine.config import load_config
from ros_vision_pipe.engine.errors import ConfigError, EngineError, ScriptMemoryError, ScriptTimeoutError
from ros_vision_pipe.engine.lua.limits import DEFAULT_SCRIPT_MEMORY_MB, DEFAULT_SCRIPT_TIMEOUT_MS

LOOP_ON_FRAME_1 = "if ctx.frame_id == 1 then while true do end end"


def _looping(scripts: Any, function: str) -> str:
    header = "function postprocess(outputs, ctx)" if function == "postprocess" else "function preprocess(ctx)"
    return scripts.echo.replace(header, f"{header}\n  {LOOP_ON_FRAME_1}")


@pytest.mark.parametrize("mode", ["single", "serial", "parallel_sync"])
@pytest.mark.parametrize("function", ["preprocess", "postprocess"])
def test_a_script_stuck_on_one_frame_times_out_with_a_named_error_and_later_frames_run(
    make_pipeline: Any, scripts: Any, image: np.ndarray, mode: str, function: str
) -> None:
    models = [("det", _looping(scripts, function), "script_timeout_ms = 200")]
    if mode != "single":
        models.append(("other", scripts.echo, ""))
    pipeline = make_pipeline(mode, models)
    assert pipeline.run(image).results["det"]["frame"] == 0
    start = time.monotonic()
    with pytest.raises(ScriptTimeoutError,
                       match=rf"^det\.lua:\d+ in {function}: time limit of 200 ms exceeded \(model 'det', frame 1\)"):
        pipeline.run(image)
    assert time.monotonic() - start < 5.0
    for frame in (2, 3):
        assert pipeline.run(image).results["det"]["frame"] == frame


def test_fusion_stuck_on_one_frame_times_out_under_the_pipeline_default(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    fusion = ("script_timeout_ms = 150, fusion = function(results)\n"
              "  if results.det.frame == 1 then while true do end end\n"
              "  return { seen = results.det.frame }\nend")
    pipeline = make_pipeline("serial", [("det", scripts.echo, "")], extra=fusion)
    assert pipeline.run(image).fused == {"seen": 0}
    with pytest.raises(ScriptTimeoutError,
                       match=r"^p\.lua:\d+ in fusion: time limit of 150 ms exceeded \(model 'pipeline', frame 1\)"):
        pipeline.run(image)
    assert pipeline.run(image).fused == {"seen": 2}


def test_aggregator_stuck_on_one_frame_fails_that_frame_and_the_stream_goes_on(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    aggregator = ("script_timeout_ms = 150, aggregator = function(results, meta)\n"
                  "  if meta.frame_id == 1 then while true do end end\n"
                  "  return { frame = meta.frame_id }\nend")
    pipeline = make_pipeline("parallel_async", [("det", scripts.echo, "")], extra=aggregator)
    assert pipeline.run(image).fused == {"frame": 0}
    with pytest.raises(ScriptTimeoutError, match=r"in aggregator: time limit of 150 ms exceeded"):
        pipeline.run(image)
    assert pipeline.run(image).fused == {"frame": 2}


def test_the_config_chunk_runs_under_the_default_time_limit(write: Any, scale_model: Path) -> None:
    path = write("p.lua", 'local n = 0\nwhile true do n = n + 1 end\nreturn { mode = "single" }')
    start = time.monotonic()
    with pytest.raises(ScriptTimeoutError, match=rf"^p\.lua:2 in main chunk: time limit of "
                                                 rf"{DEFAULT_SCRIPT_TIMEOUT_MS} ms exceeded \(model 'pipeline'\)"):
        load_config(path)
    assert time.monotonic() - start < DEFAULT_SCRIPT_TIMEOUT_MS / 1000 + 4.0


def test_the_frame_level_pipeline_keeps_serving_after_a_timed_out_frame(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    pipeline = make_pipeline("serial", [("det", _looping(scripts, "preprocess"), "script_timeout_ms = 200")])
    for _ in range(5):
        assert pipeline.submit(image)
    results = [pipeline.wait_result(timeout=10) for _ in range(5)]
    assert all(result is not None for result in results)
    assert [r.frame_id for r in results if r is not None] == [0, 1, 2, 3, 4]
    failed = results[1]
    assert failed is not None and "time limit of 200 ms exceeded (model 'det', frame 1)" in str(failed.error)
    assert [r.results["det"]["frame"] for r in results if r is not None and r.frame_id != 1] == [0, 2, 3, 4]


def _cpu_share() -> float:
    """CPU seconds the process uses per second of wall time, sampled over half a second."""
    start_cpu, start = time.process_time(), time.monotonic()
    time.sleep(0.5)
    return (time.process_time() - start_cpu) / (time.monotonic() - start)


@pytest.mark.parametrize("mode", ["single", "parallel_sync", "parallel_async"])
def test_close_stops_a_script_stuck_in_a_loop_and_leaves_no_thread_spinning(
    make_pipeline: Any, scripts: Any, engine_threads: Any, image: np.ndarray, mode: str
) -> None:
    stuck = scripts.echo.replace("function preprocess(ctx)", "function preprocess(ctx)\n  while true do end")
    pipeline = make_pipeline(mode, [("det", stuck, "script_timeout_ms = 600000")])
    errors: list[EngineError] = []

    def call() -> None:
        try:
            pipeline.run(image)
        except EngineError as error:  # the call stopped by close()
            errors.append(error)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    time.sleep(0.5)  # the script is in its loop
    assert _cpu_share() > 0.15  # busy with it (a share of a core on a shared machine)
    start = time.monotonic()
    pipeline.close()
    caller.join(5)
    assert time.monotonic() - start < 2.0
    assert not caller.is_alive()
    assert len(errors) == 1, "run() must end with an engine error once close() stopped its script"
    assert engine_threads() == []
    assert _cpu_share() < 0.1  # nothing left spinning


def test_a_model_that_times_out_on_every_frame_does_not_hold_up_the_main_model(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    stuck = scripts.echo.replace("function preprocess(ctx)", "function preprocess(ctx)\n  while true do end")
    pipeline = make_pipeline("parallel_async", [("main", scripts.echo, ""),
                                                ("stuck", stuck, "script_timeout_ms = 50, max_queue_size = 1")])
    results = []
    for _ in range(8):
        results.append(pipeline.run(image))
        time.sleep(0.1)
    assert [r.results["main"]["frame"] for r in results] == list(range(8))
    stuck_stats = next(m for m in pipeline.stats().models if m.model == "stuck")
    assert stuck_stats.errors >= 2 and stuck_stats.runs == 0


def test_each_model_has_its_own_memory_limit_and_the_pipeline_default_applies_to_the_others(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    hoard = scripts.echo.replace(
        "function postprocess(outputs, ctx)",
        "KEEP = KEEP or {}\nfunction postprocess(outputs, ctx)\n  KEEP[#KEEP + 1] = string.rep('x', 4 * 1024 * 1024)")
    pipeline = make_pipeline("serial", [("small", hoard, "script_memory_mb = 16"), ("large", hoard, "")],
                             extra="script_memory_mb = 24")
    assert pipeline.models["small"].script.limits.memory_mb == 16
    assert pipeline.models["large"].script.limits.memory_mb == 24
    assert pipeline.config.script.limits.memory_mb == 24
    pipeline.run(image)  # 4 MiB kept each (8 MiB at the peak: string.rep copies its buffer)
    pipeline.run(image)  # 8 MiB kept (12 MiB at the peak)
    with pytest.raises(ScriptMemoryError, match=r"^small\.lua in postprocess: memory limit of 16 MiB exceeded "
                                                r"\(model 'small', frame 2\)"):
        pipeline.run(image)


def test_tensors_a_script_keeps_count_against_its_memory_limit(
    make_pipeline: Any, scripts: Any, image: np.ndarray
) -> None:
    hoard = scripts.echo.replace(
        "function postprocess(outputs, ctx)",
        "KEEP = {}\nfunction postprocess(outputs, ctx)\n  KEEP[#KEEP + 1] = vp.zeros({1024, 1024}, 'float32')")
    pipeline = make_pipeline("single", [("det", hoard, "script_memory_mb = 10")])
    pipeline.run(image)
    pipeline.run(image)
    with pytest.raises(ScriptMemoryError, match=r"memory limit of 10 MiB exceeded \(arrays held by the script"):
        pipeline.run(image)
    assert pipeline.models["det"].script.held_bytes <= 10 * 2**20


def test_limits_default_to_the_documented_values(make_pipeline: Any, scripts: Any) -> None:
    pipeline = make_pipeline("single", [("det", scripts.echo, "")])
    limits = pipeline.models["det"].script.limits
    assert (limits.timeout_ms, limits.memory_mb) == (DEFAULT_SCRIPT_TIMEOUT_MS, DEFAULT_SCRIPT_MEMORY_MB) == (1000, 256)


@pytest.mark.parametrize(("option", "message"), [
    ("script_timeout_ms = 0", r"model 'det': script_timeout_ms must be an integer >= 1 \(milliseconds\), got 0"),
    ("script_memory_mb = 'lots'", r"model 'det': script_memory_mb must be an integer >= 1 \(MiB\), got 'lots'"),
])
def test_invalid_limit_options_are_rejected_naming_the_model(
    make_pipeline: Any, scripts: Any, option: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_pipeline("single", [("det", scripts.echo, option)])
