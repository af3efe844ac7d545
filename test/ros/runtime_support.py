"""Helpers of the runtime-control tests: service calls, parameter sets and a steady frame stream."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from ros_support import SSD_MODEL, SSD_SCRIPT, image_message, wait_for


def call(node: Any, service_type: Any, name: str, request: Any, timeout: float = 60.0, *,
         resend_every: float | None = None) -> Any:
    """Call ``name`` from ``node`` (spun elsewhere) and return the response.

    ``resend_every`` (idempotent services only): send the request again after that many seconds
    without an answer. A server seen by ``wait_for_service`` may not have matched the client's
    response reader yet (another process just started), and then its first answer is lost.
    """
    client = node.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=30.0), f"no service {name}"
    deadline = time.monotonic() + timeout
    while True:
        future = client.call_async(request)
        wait = timeout if resend_every is None else min(resend_every, max(0.0, deadline - time.monotonic()))
        if wait_for(future.done, timeout=wait):
            break
        assert resend_every is not None and time.monotonic() < deadline, f"{name} did not answer"
    node.destroy_client(client)
    return future.result()


def set_parameter(node: Any, target: str, name: str, value: Any) -> Any:
    """Set one parameter of node ``target`` through its real ``set_parameters`` service; the result."""
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return call(node, SetParameters, f"{target}/set_parameters", request).results[0]


def write_person_config(folder: Path, *, label: str = "person", model: Path = SSD_MODEL,
                        name: str = "person.lua", extra: str = "") -> Path:
    """A single-model SSDLite config whose script (a copy of ssd_person.lua) labels its boxes ``label``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "ssd.lua"
    script.write_text(SSD_SCRIPT.read_text(encoding="utf-8").replace(
        'local LABELS = { "person" }', f'local LABELS = {{ "{label}" }}'), encoding="utf-8")
    path = folder / name
    path.write_text(f"return {{ mode = 'single', {extra}models = {{\n"
                    f"  {{ name = 'person', path = {str(model)!r}, script = 'ssd.lua' }},\n}} }}\n", encoding="utf-8")
    return path


class Stream:
    """Publishes frames in a loop at ``rate`` Hz from a thread until ``stop``."""

    def __init__(self, publisher: Any, images: list[Any], rate: float = 15.0) -> None:
        """Start publishing (frames cycle through ``images``)."""
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(publisher, images, 1.0 / rate), daemon=True)
        self._thread.start()

    def _run(self, publisher: Any, images: list[Any], period: float) -> None:
        while not self._stop.is_set():
            image = images[self.sent % len(images)]
            publisher.publish(image_message(image, "bgr8", "cam", 1000 + self.sent))
            self.sent += 1
            time.sleep(period)

    def stop(self) -> None:
        """Stop and join."""
        self._stop.set()
        self._thread.join(5.0)
