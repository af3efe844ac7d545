"""A model on a real KServe v2 server (MLServer on 127.0.0.1) gives the same results as the local file.

Same detections remote vs local on the cyclist clip; a configuration with one remote
model and one local model gives the all-local results in every mode, through ``run``
and through the frame-level pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kserve_server import MLServerProcess
from kserve_support import backend_table
from support import CONFIG_DIR

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult, ResultStatus
from ros_vision_pipe.engine.remote.session import KServeSession
from ros_vision_pipe.frames import Frame


def run_all(pipeline: Pipeline, frames: list[Frame], source: str = "clip") -> list[FrameResult]:
    return [pipeline.run(f.image, encoding=f.encoding, source=source, frame_id=i) for i, f in enumerate(frames)]


def submit_all(pipeline: Pipeline, frames: list[Frame], source: str = "clip-submitted") -> list[FrameResult]:
    """Every frame through the frame-level pipeline (a source of its own: parallel_async keeps state per source)."""
    results: list[FrameResult] = []
    for i, frame in enumerate(frames):
        while not pipeline.submit(frame.image, encoding=frame.encoding, source=source, frame_id=i):
            result = pipeline.wait_result(timeout=60)
            assert result is not None
            results.append(result)
    while len(results) < len(frames):
        result = pipeline.wait_result(timeout=60)
        assert result is not None, "a frame never came back"
        results.append(result)
    return results


def nan_safe(value: Any) -> Any:
    """``value`` with NaN (a keypoint without a score) replaced by a marker, so that == compares it."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {key: nan_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [nan_safe(item) for item in value]
    return value


def comparable(result: FrameResult) -> dict[str, Any]:
    assert result.error is None, result.error
    return nan_safe({"results": result.results, "fused": result.fused,
                     "status": {name: o.status for name, o in result.outcomes.items()}})


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_the_person_detector_finds_the_same_people_on_the_clip_remote_and_local(
    kserve_server: MLServerProcess, clip: list[Frame], remote_variant: Callable[[str, str], Path], transport: str
) -> None:
    url = kserve_server.grpc_url if transport == "grpc" else kserve_server.http_url
    remote_config = remote_variant("person_pose.lua", backend_table(url, "ssdlite_person"))
    with Pipeline.from_config(CONFIG_DIR / "person_pose.lua") as local, Pipeline.from_config(remote_config) as remote:
        assert isinstance(remote.models["person"].session, KServeSession)
        expected = [r.results["person"] for r in run_all(local, clip)]
        got = [r.results["person"] for r in run_all(remote, clip)]
        stats = remote.stats().backends[0]
    assert got == expected
    assert sum(len(person["detections"]) for person in expected) >= 5  # the clip has people to find
    assert (stats.model, stats.state, stats.requests, stats.errors) == ("person", "connected", len(clip), 0)


@pytest.mark.parametrize(("config", "lossless"), [
    ("person_pose.lua", False),                        # serial: remote person -> local pose
    ("parallel_sync_person_face.lua", False),          # remote person + local face, fusion
    ("parallel_async_person_pose_scene.lua", True),    # remote main model, local pose and scene
])
def test_one_remote_and_one_local_model_give_the_all_local_results_in_every_mode(
    kserve_server: MLServerProcess, clip: list[Frame], remote_variant: Callable[[str, str], Path],
    config: str, lossless: bool,
) -> None:
    remote_config = remote_variant(config, backend_table(kserve_server.grpc_url, "ssdlite_person"))
    with Pipeline.from_config(CONFIG_DIR / config, lossless=lossless) as local:
        expected = [comparable(r) for r in run_all(local, clip)]
    with Pipeline.from_config(remote_config, lossless=lossless) as remote:
        assert isinstance(remote.models["person"].session, KServeSession)
        assert [comparable(r) for r in run_all(remote, clip)] == expected
        assert [comparable(r) for r in submit_all(remote, clip)] == expected
        assert remote.stats().backends[0].errors == 0
    assert any(status is ResultStatus.OK for e in expected for name, status in e["status"].items() if name != "person")


def test_single_mode_with_the_remote_person_detector_matches_local_through_the_frame_level_pipeline(
    kserve_server: MLServerProcess, clip: list[Frame], write: Callable[[str, str], Path],
) -> None:
    script = (CONFIG_DIR / "scripts" / "ssd_person.lua").as_posix()
    model = (CONFIG_DIR.parent / "models" / "ssdlite_person.onnx").as_posix()
    local = write("local.lua", f'return {{ mode = "single", models = {{ {{ name = "person", path = "{model}", '
                               f'script = "{script}" }} }} }}')
    remote = write("remote.lua", f'return {{ mode = "single", models = {{ {{ name = "person", path = "{model}", '
                                 f'script = "{script}", backend = '
                                 f'{backend_table(kserve_server.grpc_url, "ssdlite_person")} }} }} }}')
    with Pipeline.from_config(local) as pipeline:
        expected = [comparable(r) for r in run_all(pipeline, clip)]
    with Pipeline.from_config(remote, frame_pipeline=True) as pipeline:
        assert [comparable(r) for r in submit_all(pipeline, clip)] == expected
        assert [comparable(r) for r in run_all(pipeline, clip)] == expected
