"""The node with its person detector on a real KServe v2 server (MLServer on 127.0.0.1) that goes away and comes back.

While the server is down, the model's results are ``STATUS_ERROR`` naming the server and
the served model, ``/diagnostics`` reports the backend unreachable, and the node goes on;
once the server is back, results are computed remotely again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.parameter import Parameter
from ros_support import SSD_MODEL, SSD_SCRIPT, Probe, image_message, wait_for
from ros_vision_pipe.msg import ModelResult
from sensor_msgs.msg import Image

from ros_vision_pipe.ros.node import PipelineNode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine" / "kserve"))
from kserve_server import MLServerProcess, ServedModel, server_available  # noqa: E402

pytestmark = pytest.mark.skipif(not server_available(), reason="KServe test server venv .venv-kserve missing "
                                                                "(tools/setup_env.sh)")


@pytest.fixture
def server(tmp_path: Path) -> Any:
    process = MLServerProcess(tmp_path / "mlserver", [ServedModel("ssdlite_person", SSD_MODEL)])
    process.start()
    yield process
    process.kill()


def test_a_server_outage_gives_error_results_and_diagnostics_and_the_node_recovers(
    context, spin, bikes, server: MLServerProcess, tmp_path: Path
) -> None:
    config = tmp_path / "remote_person.lua"
    config.write_text(
        "return { mode = 'single', models = {\n"
        f"  {{ name = 'person', path = {str(SSD_MODEL)!r}, script = {str(SSD_SCRIPT)!r},\n"
        f"    backend = {{ kind = 'kserve', url = {server.grpc_url!r}, model = 'ssdlite_person', version = '1',\n"
        "                timeout_ms = 2000 } },\n} }\n")
    node = PipelineNode(context=context, parameter_overrides=[
        Parameter("config_file", value=str(config)), Parameter("image_topics", value=["/cam"]),
        Parameter("qos.reliable", value=True), Parameter("diagnostics_period", value=0.2)])
    probe = Probe(context)
    results = probe.listen(ModelResult, "/vision_pipeline/person/result")
    diagnostics = probe.listen(DiagnosticArray, "/diagnostics")
    spin(node, probe.node, threads=node.executor_threads + 1)
    publisher = probe.publisher(Image, "/cam", reliable=True)
    assert wait_for(lambda: publisher.get_subscription_count() > 0
                    and node.count_subscribers("/vision_pipeline/person/result") > 0)

    def publish(index: int) -> ModelResult:
        count = len(results)
        publisher.publish(image_message(bikes[5], "bgr8", "cam", index))
        assert wait_for(lambda: len(results) > count, timeout=15), f"no result for message {index}"
        return results[-1]

    def backend_status() -> DiagnosticStatus | None:
        found = [s for a in list(diagnostics) for s in a.status if s.name == "/vision_pipeline: backend person"]
        return found[-1] if found else None

    first = publish(1)
    assert first.status == ModelResult.STATUS_OK and first.detections[0].label == "person"
    server.kill()
    down = [publish(i) for i in (2, 3)]
    for result in down:
        assert result.status == ModelResult.STATUS_ERROR
        assert f"KServe server {server.grpc_url}, served model 'ssdlite_person' version '1': unreachable" in result.error
    def values() -> dict[str, str]:
        status = backend_status()
        return {kv.key: kv.value for kv in status.values} if status is not None else {}

    assert wait_for(lambda: int(values().get("unreachable", 0)) >= 2, timeout=5)
    assert backend_status().level == DiagnosticStatus.ERROR and values()["state"] == "unreachable"
    assert node.diagnostics.totals()["model person"]["errors"] >= 2

    server.start()
    deadline, index = time.monotonic() + 30, 4
    while publish(index).status != ModelResult.STATUS_OK:
        assert time.monotonic() < deadline, "the node never used the restarted server"
        index += 1
        time.sleep(0.1)
    assert results[-1].detections[0].label == "person"
    assert wait_for(lambda: backend_status().level == DiagnosticStatus.OK, timeout=5)
