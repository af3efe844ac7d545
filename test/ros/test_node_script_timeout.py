"""The node with a model whose script times out on every frame: real rclpy and DDS, real ONNX, real Lua.

That model's results carry ``STATUS_ERROR`` naming the time limit, ``/diagnostics`` counts its
errors, and the other model keeps publishing one result per input frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.parameter import Parameter
from ros_support import Probe, SlowSession, image_message, wait_for
from ros_vision_pipe.msg import ModelResult
from sensor_msgs.msg import Image
from support import make_scale_model

from ros_vision_pipe.ros.node import PipelineNode, node_session_factory

FEED = 'function preprocess(ctx) return vp.from_table({{ctx.frame_id, 0, 0}}, "float32") end\n'
GOOD = FEED + "function postprocess(outputs, ctx) return { frame = ctx.frame_id } end\n"
STUCK = "function preprocess(ctx) while true do end end\nfunction postprocess(outputs, ctx) return {} end\n"
FRAMES = 8


def _config(folder: Path) -> Path:
    make_scale_model(folder / "scale.onnx")
    (folder / "good.lua").write_text(GOOD, encoding="utf-8")
    (folder / "stuck.lua").write_text(STUCK, encoding="utf-8")
    path = folder / "p.lua"
    path.write_text(
        'return { mode = "parallel_async", models = {\n'
        '  { name = "main", path = "scale.onnx", script = "good.lua" },\n'
        '  { name = "stuck", path = "scale.onnx", script = "stuck.lua", script_timeout_ms = 40 },\n'
        "} }\n", encoding="utf-8")
    return path


def test_a_model_whose_script_times_out_on_every_frame_reports_errors_while_the_other_keeps_publishing(
    context: Any, spin: Any, tmp_path: Path
) -> None:
    def sessions(spec: Any, threads: int, spinning: bool) -> Any:
        inner = node_session_factory(spec, threads, spinning)
        return SlowSession(inner, 0.25) if spec.name == "main" else inner

    node = PipelineNode(context=context, session_factory=sessions, parameter_overrides=[
        Parameter("config_file", value=str(_config(tmp_path))),
        Parameter("image_topics", value=["/cam"]),
        Parameter("diagnostics_period", value=0.2),
    ])
    probe = Probe(context)
    main = probe.listen(ModelResult, "/vision_pipeline/main/result")
    stuck = probe.listen(ModelResult, "/vision_pipeline/stuck/result")
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(node, probe.node, threads=node.executor_threads + 1)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    for index in range(FRAMES):
        publisher.publish(image_message(np.zeros((4, 6, 3), np.uint8), "rgb8", "cam", index))
        assert wait_for(lambda n=index: len(main) > n, timeout=10), f"no result of main for frame {index}"

    assert [m.status for m in main] == [ModelResult.STATUS_OK] * FRAMES
    assert [m.frame_index for m in main] == list(range(FRAMES))
    # the stuck model's result for the last frame travels on its own topic: it may land just after main's
    assert wait_for(lambda: len(stuck) == FRAMES, timeout=5), f"{len(stuck)} results of the stuck model"
    errors = [m for m in stuck if m.status == ModelResult.STATUS_ERROR]
    assert len(errors) >= FRAMES - 1  # the stuck model failed on (nearly) every frame, each reported
    assert all("stuck.lua:1 in preprocess: time limit of 40 ms exceeded (model 'stuck', frame" in m.error
               for m in errors)
    assert wait_for(lambda: node.diagnostics.totals()["model stuck"]["errors"] >= FRAMES - 1)
    assert node.diagnostics.totals()["model main"]["errors"] == 0

    def reported_errors() -> int:
        values = [kv.value for a in list(diagnostics) for s in a.status if s.name.endswith("model stuck")
                  for kv in s.values if kv.key == "errors"]
        return max((int(v) for v in values), default=0)

    assert wait_for(lambda: reported_errors() >= 1, timeout=5)
