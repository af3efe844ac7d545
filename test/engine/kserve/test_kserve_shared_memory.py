"""Inputs through system shared memory: the decision from the server's extensions, and the regions themselves.

MLServer does not offer the ``system_shared_memory`` extension, so no test here sends a
request through shared memory to a real server: the decision is tested on the real server
(test_kserve_faults: it falls back, or fails start-up when required), the client side below
on real POSIX shared-memory regions, with a client stand-in that records the registrations a
server would receive.
"""

from __future__ import annotations

import numpy as np
import pytest

from ros_vision_pipe.engine.remote.backend_spec import RemoteBackend, SharedMemory
from ros_vision_pipe.engine.remote.shared_memory import EXTENSION, SharedMemoryInputs, use_shared_memory

shared_memory = pytest.importorskip("tritonclient.utils.shared_memory")


class RecordingClient:
    """Records (un)registrations as the server would see them."""

    def __init__(self) -> None:
        self.backend = RemoteBackend(url="grpc://127.0.0.1:8001", model="m")
        self.registered: dict[str, tuple[str, int]] = {}
        self.calls: list[str] = []

    def register_shared_memory(self, name: str, key: str, byte_size: int) -> None:
        assert name not in self.registered, f"{name} registered twice"
        self.registered[name] = (key, byte_size)
        self.calls.append(f"register {name} {byte_size}")

    def unregister_shared_memory(self, name: str) -> None:
        self.registered.pop(name, None)
        self.calls.append(f"unregister {name}")


def backend(url: str, mode: SharedMemory) -> RemoteBackend:
    return RemoteBackend(url=url, model="m", shared_memory=mode)


@pytest.mark.parametrize(("url", "mode", "extensions", "used", "reason"), [
    ("grpc://127.0.0.1:8001", SharedMemory.AUTO, (EXTENSION,), True, "offers"),
    ("grpc://127.0.0.1:8001", SharedMemory.AUTO, ("binary_tensor_data",), False, "does not offer"),
    ("grpc://gpu-box:8001", SharedMemory.AUTO, (EXTENSION,), False, "not a loopback address"),
    ("grpc://gpu-box:8001", SharedMemory.SYSTEM, (EXTENSION,), True, "offers"),
    ("grpc://127.0.0.1:8001", SharedMemory.OFF, (EXTENSION,), False, "off in the configuration"),
])
def test_shared_memory_is_used_only_where_the_server_offers_it_on_the_same_host(url, mode, extensions, used, reason) -> None:
    decision, why = use_shared_memory(backend(url, mode), extensions)
    assert decision is used and reason in why


def test_inputs_are_written_into_a_registered_region_at_aligned_offsets_and_read_back_unchanged() -> None:
    client = RecordingClient()
    inputs = SharedMemoryInputs(client, slots=2)  # type: ignore[arg-type]
    image = np.arange(2 * 5 * 3, dtype=np.uint8).reshape(2, 5, 3)
    scale = np.array([[0.5, 2.0]], np.float32)
    try:
        slot, regions = inputs.write({"image": image, "scale": scale})
        name, size, offset = regions["image"]
        assert (size, offset) == (image.nbytes, 0)
        scale_name, scale_size, scale_offset = regions["scale"]
        assert scale_name == name and scale_size == 8 and scale_offset == 64
        handle = inputs._slots[slot].handle
        assert np.array_equal(shared_memory.get_contents_as_numpy(handle, np.uint8, [2, 5, 3], offset=0), image)
        assert np.array_equal(shared_memory.get_contents_as_numpy(handle, np.float32, [1, 2], offset=64), scale)
        assert client.registered[name][1] == 128
        inputs.release(slot)
        # the next request reuses a registered region of the right size: no new registration
        again, _ = inputs.write({"image": image, "scale": scale})
        other, _ = inputs.write({"image": image, "scale": scale})
        assert {again, other} == {0, 1} and len(client.calls) == 2
        # a bigger request grows its slot's region: unregistered, created again, registered again
        inputs.release(again)
        big = np.zeros((1, 300, 300, 3), np.uint8)
        grown, regions = inputs.write({"image": big, "scale": scale})
        assert grown == again and client.registered[regions["image"][0]][1] >= big.nbytes + 8
        assert client.calls[-2:] == [f"unregister {regions['image'][0]}", f"register {regions['image'][0]} {270016 + 64}"]  # 270000 B rounded up to 64, then the scale
        inputs.release(grown)
        inputs.release(other)
        # after a server restart every region is registered again
        client.registered.clear()
        inputs.reregister()
        assert len(client.registered) == 2
    finally:
        inputs.close()
    assert client.registered == {}
