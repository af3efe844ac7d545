"""A remote model when things go wrong: wrong model, version or shape; timeouts; the server killed and restarted.

Every test talks to a real MLServer on 127.0.0.1. ``scale`` serves y = 2x on float32 [N, 3];
the script sends ``[[frame_id, 1, 2]]``, so a result's first value is 2 * frame_id.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from kserve_server import MLServerProcess, ServedModel, free_port
from kserve_support import backend_table

from ros_vision_pipe.engine.errors import InferenceError, ModelLoadError
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult

IMAGE = np.zeros((8, 8, 3), np.uint8)
Writer = Callable[[str, str], Path]


def scale_config(write: Writer, path: Path | str, backend: str | None, columns: int = 3) -> Path:
    """A single-model pipeline on the scale model; ``backend`` None = local."""
    values = ", ".join(["ctx.frame_id"] + [str(i) for i in range(1, columns)])
    write("scale.lua", f"""
        function preprocess(ctx) return vp.from_table({{{{{values}}}}}) end
        function postprocess(outputs, ctx) return {{ y = outputs[1] }} end
    """)
    option = f", backend = {backend}" if backend else ""
    return write("pipeline.lua", f"""
        return {{ mode = "single", models = {{
          {{ name = "scale", path = "{path}", script = "scale.lua"{option} }} }} }}
    """)


def first_value(result: FrameResult) -> float:
    assert result.error is None, result.error
    return float(np.asarray(result.results["scale"]["y"])[0, 0])


def stream(pipeline: Pipeline, count: int) -> list[FrameResult]:
    """Submit ``count`` frames one after the other and collect their results."""
    results = []
    for _ in range(count):
        assert pipeline.submit(IMAGE)
        result = pipeline.wait_result(timeout=30)
        assert result is not None
        results.append(result)
    return results


# -- start-up checks ---------------------------------------------------------------------------


def test_a_model_name_the_server_does_not_serve_fails_start_up_naming_server_and_models_it_has(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    config = scale_config(write, scale_files["scale"], backend_table(kserve_server.grpc_url, "nope"))
    with pytest.raises(ModelLoadError, match=r"KServe server grpc://127\.0\.0\.1:\d+, served model 'nope' version '1': "
                                             r"not served: .*the server has \[.*'scale:1'.*\] \(model 'scale'\)"):
        Pipeline.from_config(config)


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_version_the_server_does_not_serve_fails_start_up(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path], transport: str
) -> None:
    url = kserve_server.grpc_url if transport == "grpc" else kserve_server.http_url
    config = scale_config(write, scale_files["scale"], backend_table(url, "scale", version="7"))
    with pytest.raises(ModelLoadError, match=r"served model 'scale' version '7': not served: .*\(model 'scale'\)"):
        Pipeline.from_config(config)


def test_a_served_model_that_differs_from_the_local_file_fails_start_up_naming_the_difference(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    config = scale_config(write, scale_files["scale4"], backend_table(kserve_server.grpc_url, "scale"))
    with pytest.raises(ModelLoadError, match=r"KServe server grpc://127\.0\.0\.1:\d+, served model 'scale': differs from "
                                             r"the local file: input 'x' is float32 \[\?,4\] locally, float32 \[\?,3\] "
                                             r"on the server; output 'y' is .* \(model 'scale'\)"):
        Pipeline.from_config(config)


def test_a_script_tensor_of_the_wrong_shape_gets_the_same_error_remote_as_local(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path], tmp_path: Path
) -> None:
    # no local file at all: the check runs against the served model's metadata alone
    remote = scale_config(write, tmp_path / "absent.onnx", backend_table(kserve_server.grpc_url, "scale"), columns=4)
    with Pipeline.from_config(remote) as pipeline, pytest.raises(InferenceError) as remote_error:
        pipeline.run(IMAGE)
    local = scale_config(write, scale_files["scale"], None, columns=4)
    with Pipeline.from_config(local) as pipeline, pytest.raises(InferenceError) as local_error:
        pipeline.run(IMAGE)
    assert str(remote_error.value) == str(local_error.value)
    assert str(remote_error.value) == "input 'x': expected float32 [?,3], got float32 [1,4] (model 'scale', frame 0)"


def test_an_unreachable_server_fails_start_up_within_the_connect_timeout(write: Writer, scale_files: dict[str, Path]) -> None:
    url = f"grpc://127.0.0.1:{free_port()}"
    config = scale_config(write, scale_files["scale"], backend_table(url, "scale", connect_timeout_ms=300))
    with pytest.raises(ModelLoadError, match=r"KServe server grpc://127\.0\.0\.1:\d+, served model 'scale' version '1': "
                                             r"unreachable: .*\(model 'scale'\).*Is the server running\?"):
        Pipeline.from_config(config)


def test_an_unreachable_server_with_local_fallback_starts_on_the_local_file_reported_as_fallback(
    write: Writer, scale_files: dict[str, Path]
) -> None:
    url = f"grpc://127.0.0.1:{free_port()}"
    config = scale_config(write, scale_files["scale"],
                          backend_table(url, "scale", connect_timeout_ms=200, fallback="local"))
    with Pipeline.from_config(config) as pipeline:
        assert [first_value(r) for r in stream(pipeline, 3)] == [0.0, 2.0, 4.0]
        backend = pipeline.stats().backends[0]
    assert backend.state == "fallback" and backend.fallback_runs == 3
    assert "unreachable" in backend.last_error


def test_where_grpc_is_not_reachable_the_http_url_of_the_same_server_is_used(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    dead_grpc = f"grpc://127.0.0.1:{free_port()}"
    backend = backend_table(dead_grpc, "scale", http_url=kserve_server.http_url, connect_timeout_ms=300)
    with Pipeline.from_config(scale_config(write, scale_files["scale"], backend)) as pipeline:
        assert [first_value(r) for r in stream(pipeline, 2)] == [0.0, 2.0]
        stats = pipeline.stats().backends[0]
    assert (stats.url, stats.state, stats.requests, stats.errors) == (kserve_server.http_url, "connected", 2, 0)


def test_shared_memory_required_fails_start_up_on_a_server_without_the_extension(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    config = scale_config(write, scale_files["scale"],
                          backend_table(kserve_server.grpc_url, "scale", shared_memory="system"))
    with pytest.raises(ModelLoadError, match=r"shared_memory = 'system' but the server does not offer the "
                                             r"'system_shared_memory' extension \(it offers \[\]\)"):
        Pipeline.from_config(config)
    auto = scale_config(write, scale_files["scale"], backend_table(kserve_server.grpc_url, "scale"))
    with Pipeline.from_config(auto) as pipeline:  # auto: falls back to tensors in the request
        assert first_value(pipeline.run(IMAGE)) == 0.0
        assert pipeline.stats().backends[0].shared_memory is False


# -- timeouts ------------------------------------------------------------------------------------


def test_a_request_slower_than_timeout_ms_gives_an_error_result_and_the_stream_goes_on(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    config = scale_config(write, scale_files["scale"], backend_table(kserve_server.grpc_url, "slow_scale", timeout_ms=100))
    with Pipeline.from_config(config) as pipeline:
        with pytest.raises(InferenceError, match=r"KServe server grpc://127\.0\.0\.1:\d+, served model 'slow_scale' "
                                                 r"version '1': did not answer within 100 ms.*\(model 'scale', frame 0\)"):
            pipeline.run(IMAGE)
        results = stream(pipeline, 3)
        stats = pipeline.stats()
    assert all(r.error and "did not answer within 100 ms" in r.error for r in results)
    assert [r.frame_id for r in results] == [1, 2, 3]
    # run and submit take the same path: the failed run counts as the model's error too
    assert stats.model("scale").errors == 4 and stats.frames_failed == 4
    assert (stats.backends[0].timeouts, stats.backends[0].errors) == (4, 4)


def test_a_timed_out_request_with_local_fallback_is_computed_locally(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    backend = backend_table(kserve_server.grpc_url, "slow_scale", timeout_ms=100, fallback="local",
                            retry_interval_ms=60000)
    with Pipeline.from_config(scale_config(write, scale_files["scale"], backend)) as pipeline:
        assert [first_value(r) for r in stream(pipeline, 3)] == [0.0, 2.0, 4.0]
        stats = pipeline.stats().backends[0]
    assert (stats.state, stats.timeouts, stats.requests, stats.fallback_runs) == ("fallback", 1, 1, 3)


# -- several requests in flight ----------------------------------------------------------------


@pytest.mark.parametrize(("transport", "max_in_flight"), [("grpc", 1), ("grpc", 4), ("http", 3)])
def test_the_frame_level_pipeline_keeps_max_in_flight_requests_outstanding(
    kserve_server: MLServerProcess, write: Writer, scale_files: dict[str, Path], transport: str, max_in_flight: int
) -> None:
    url = kserve_server.grpc_url if transport == "grpc" else kserve_server.http_url
    backend = backend_table(url, "slow_scale", max_in_flight=max_in_flight)
    with Pipeline.from_config(scale_config(write, scale_files["scale"], backend)) as pipeline:
        for _ in range(8):
            assert pipeline.submit(IMAGE)
        values = []
        for _ in range(8):
            result = pipeline.wait_result(timeout=30)
            assert result is not None
            values.append(first_value(result))
        stats = pipeline.stats().backends[0]
    assert values == [2.0 * i for i in range(8)]  # in submission order
    assert stats.peak_in_flight == max_in_flight and stats.requests == 8


# -- the server killed mid-stream and restarted ------------------------------------------------


def wait_until_ok(pipeline: Pipeline, seconds: float = 30.0) -> FrameResult:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = stream(pipeline, 1)[0]
        if result.error is None:
            return result
        time.sleep(0.1)
    raise AssertionError("the pipeline never used the restarted server")


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_a_server_killed_mid_stream_gives_error_results_naming_it_then_is_used_again_after_restart(
    own_server: MLServerProcess, write: Writer, scale_files: dict[str, Path], transport: str
) -> None:
    url = own_server.grpc_url if transport == "grpc" else own_server.http_url
    config = scale_config(write, scale_files["scale"], backend_table(url, "scale", timeout_ms=2000))
    with Pipeline.from_config(config) as pipeline:
        assert [first_value(r) for r in stream(pipeline, 3)] == [0.0, 2.0, 4.0]
        own_server.kill()
        down = stream(pipeline, 3)
        assert all(r.error and "unreachable" in r.error and f"KServe server {url}" in r.error
                   and "served model 'scale'" in r.error for r in down)
        assert [r.frame_id for r in down] == [3, 4, 5]
        assert pipeline.stats().backends[0].state == "unreachable"
        own_server.start()
        back = wait_until_ok(pipeline)
        assert first_value(back) == 2.0 * back.frame_id
        after = stream(pipeline, 3)
        stats = pipeline.stats()
    assert [first_value(r) for r in after] == [2.0 * r.frame_id for r in after]
    backend = stats.backends[0]
    assert backend.state == "connected" and backend.reconnects == 1 and backend.unreachable >= 3
    assert stats.model("scale").errors == backend.errors >= 3


def test_a_server_restarted_with_another_model_under_the_same_name_gives_errors_naming_the_change(
    own_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    config = scale_config(write, scale_files["scale"], backend_table(own_server.grpc_url, "scale", timeout_ms=2000))
    with Pipeline.from_config(config) as pipeline:
        assert [first_value(r) for r in stream(pipeline, 2)] == [0.0, 2.0]
        own_server.kill()
        assert "unreachable" in (stream(pipeline, 1)[0].error or "")
        own_server.replace_models([ServedModel("scale", scale_files["scale4"], version="1")])
        own_server.start()
        deadline = time.monotonic() + 30
        while "unreachable" in (stream(pipeline, 1)[0].error or "") and time.monotonic() < deadline:
            time.sleep(0.1)  # the channel reconnects within a second
        changed = stream(pipeline, 2)
        stats = pipeline.stats().backends[0]
    for result in changed:
        assert result.error is not None and re.search(
            r"KServe server grpc://127\.0\.0\.1:\d+, served model 'scale' version '1': serves another model than "
            r"at start-up: input 'x' is float32 \[\?,3\] at start-up, float32 \[\?,4\] on the server.*"
            r"\(model 'scale', frame \d+\)", result.error), result.error
    assert stats.state == "unreachable" and stats.reconnects == 0  # never used: nothing was sent to it


def test_with_local_fallback_a_killed_server_costs_no_result_and_is_used_again_after_restart(
    own_server: MLServerProcess, write: Writer, scale_files: dict[str, Path]
) -> None:
    backend = backend_table(own_server.grpc_url, "scale", timeout_ms=2000, fallback="local", retry_interval_ms=100)
    with Pipeline.from_config(scale_config(write, scale_files["scale"], backend)) as pipeline:
        assert [first_value(r) for r in stream(pipeline, 2)] == [0.0, 2.0]
        own_server.kill()
        assert [first_value(r) for r in stream(pipeline, 4)] == [4.0, 6.0, 8.0, 10.0]
        during = pipeline.stats().backends[0]
        assert during.state == "fallback" and during.fallback_runs == 4
        own_server.start()
        deadline = time.monotonic() + 30
        while pipeline.stats().backends[0].state != "connected" and time.monotonic() < deadline:
            first_value(stream(pipeline, 1)[0])
            time.sleep(0.05)
        after = pipeline.stats().backends[0]
        assert after.state == "connected" and after.reconnects == 1
        requests = after.requests
        assert first_value(stream(pipeline, 1)[0]) == 2.0 * (requests + after.fallback_runs - 1)
        assert pipeline.stats().backends[0].requests == requests + 1  # on the server again
    assert pipeline.stats().model("scale").errors == 0  # every frame had a result (first_value asserts it)
