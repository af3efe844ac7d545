"""Remote models on a KServe v2 server vs local ONNX Runtime: loopback cost per frame, N clients sharing one server.

Starts MLServer (``.venv-kserve``, ``test/engine/kserve/kserve_server.py``) on 127.0.0.1
serving the SSDLite person detector through ONNX Runtime (1 intra-op thread), then:

1. one client, person detector on bikes.mp4, frame by frame (``run``): the pipeline with the
   model local (default threads, and 1 thread = the server's compute), remote over gRPC, remote
   over HTTP (JSON: MLServer lacks Triton's binary-tensor extension), and the frame-level
   pipeline over gRPC with 4 requests in flight. Also the bare session call (no Lua) local vs
   remote: the difference is the protocol's loopback cost per frame.
2. N clients (separate processes, like N cameras or robots) sharing the server, each running
   its frames back to back, with the server's adaptive batching off and on.

    python bench/bench_kserve.py [--frames 60] [--clients 1,2,4]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test" / "engine" / "kserve"))
sys.path.insert(0, str(REPO / "test"))

from kserve_server import MLServerProcess, ServedModel, server_available  # noqa: E402
from support import make_scale_model  # noqa: E402

from ros_vision_pipe.engine.pipeline import Pipeline  # noqa: E402
from ros_vision_pipe.frames import iter_frames  # noqa: E402

MODEL = REPO / "models" / "ssdlite_person.onnx"
SCRIPT = REPO / "config" / "scripts" / "ssd_person.lua"


def write_config(folder: Path, name: str, backend: str | None, threads: int | None = None,
                 model: Path = MODEL) -> Path:
    options = []
    if backend:
        options.append(f"backend = {backend}")
    if threads is not None:
        options.append(f"intra_op_threads = {threads}")
    extra = "".join(f", {o}" for o in options)
    path = folder / f"{name}.lua"
    path.write_text(f'return {{ mode = "single", models = {{ {{ name = "person", path = "{model}", '
                    f'script = "{SCRIPT}"{extra} }} }} }}\n')
    return path


def backend(url: str, model: str, in_flight: int = 4) -> str:
    return (f'{{ kind = "kserve", url = "{url}", model = "{model}", version = "1", timeout_ms = 5000, '
            f'max_in_flight = {in_flight} }}')


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_run(config: Path, frames: list[np.ndarray], frame_pipeline: bool = False) -> tuple[list[float], float]:
    """Per-frame latencies (ms) and frames per second; ``frame_pipeline``: submit/wait, frames overlapping."""
    with Pipeline.from_config(config, frame_pipeline=frame_pipeline) as pipeline:
        for image in frames[:5]:
            pipeline.run(image, encoding="bgr8")
        latencies = []
        start = time.perf_counter()
        if not frame_pipeline:
            for image in frames:
                t0 = time.perf_counter()
                pipeline.run(image, encoding="bgr8")
                latencies.append((time.perf_counter() - t0) * 1e3)
        else:
            done = 0
            for image in frames:
                while not pipeline.submit(image, encoding="bgr8"):
                    result = pipeline.wait_result(timeout=60)
                    assert result is not None and result.error is None
                    latencies.append(result.outcomes["person"].latency_ms)
                    done += 1
            while done < len(frames):
                result = pipeline.wait_result(timeout=60)
                assert result is not None and result.error is None
                latencies.append(result.outcomes["person"].latency_ms)
                done += 1
        elapsed = time.perf_counter() - start
        for stats in pipeline.stats().backends:
            assert stats.errors == 0, stats
    return latencies, len(frames) / elapsed


def time_session(config: Path, tensor: np.ndarray, count: int) -> list[float]:
    """Bare ``session.run`` latencies (ms) of the pipeline's person model: no Lua, no context."""
    with Pipeline.from_config(config) as pipeline:
        session = pipeline.models["person"].session
        feeds = {session.inputs[0].name: tensor}
        for _ in range(5):
            session.run(feeds)
        samples = []
        for _ in range(count):
            t0 = time.perf_counter()
            session.run(feeds)
            samples.append((time.perf_counter() - t0) * 1e3)
    return samples


def client(config: str, frames: int, barrier: Any, queue: Any) -> None:
    """One camera: its own pipeline in its own process, frames back to back."""
    images = [f.image for f in iter_frames("sample:bikes", limit=frames)]
    with Pipeline.from_config(config) as pipeline:
        pipeline.run(images[0], encoding="bgr8")
        barrier.wait()
        latencies = []
        start = time.perf_counter()
        for image in images:
            t0 = time.perf_counter()
            pipeline.run(image, encoding="bgr8")
            latencies.append((time.perf_counter() - t0) * 1e3)
        queue.put((latencies, time.perf_counter() - start))


def shared_server(config: Path, clients: int, frames: int) -> tuple[float, float, float]:
    """N client processes on one server: total fps, median and p95 latency (ms)."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(clients)
    queue = context.Queue()
    processes = [context.Process(target=client, args=(str(config), frames, barrier, queue)) for _ in range(clients)]
    for process in processes:
        process.start()
    results = [queue.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    latencies = [x for lat, _ in results for x in lat]
    wall = max(seconds for _, seconds in results)
    return clients * frames / wall, statistics.median(latencies), percentile(latencies, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--clients", default="1,2,4")
    args = parser.parse_args()
    if not server_available():
        sys.exit("the KServe server venv is missing: run tools/setup_env.sh (creates .venv-kserve)")
    counts = [int(n) for n in args.clients.split(",")]
    frames = [f.image for f in iter_frames("sample:bikes", limit=args.frames)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        scale = make_scale_model(folder / "scale.onnx")
        big = make_scale_model(folder / "big.onnx", shape=("N", 300, 300, 3))
        server = MLServerProcess(folder / "server", [
            ServedModel("scale", scale),
            ServedModel("big", big),
            ServedModel("person", MODEL),
            ServedModel("person_batched", MODEL, max_batch_size=max(counts), max_batch_time_s=0.004),
        ])
        with server:
            configs = {
                "local, default threads": write_config(folder, "local", None),
                "local, 1 thread (= server)": write_config(folder, "local1", None, threads=1),
                "remote gRPC": write_config(folder, "grpc", backend(server.grpc_url, "person")),
                "remote HTTP (JSON)": write_config(folder, "http", backend(server.http_url, "person")),
            }
            print(f"## One client, person detector, {len(frames)} frames of bikes.mp4\n")
            print("| run | median ms/frame | p95 ms | frames/s | median / local 1 thread |")
            print("|---|---|---|---|---|")
            base = None
            rows = [(name, config, False) for name, config in configs.items()]
            rows.append(("remote gRPC, frame-level pipeline, 4 in flight", configs["remote gRPC"], True))
            for name, config, overlapped in rows:
                latencies, fps = time_run(config, frames, frame_pipeline=overlapped)
                median = statistics.median(latencies)
                base = median if name.startswith("local, 1 thread") else base
                ratio = f"{median / base:.2f}" if base else "-"
                print(f"| {name} | {median:.2f} | {percentile(latencies, 95):.2f} | {fps:.1f} | {ratio} |")

            tensor = np.zeros((1, 300, 300, 3), np.uint8)
            local = statistics.median(time_session(configs["local, 1 thread (= server)"], tensor, args.frames))
            print("\n## Bare session call (no Lua): the protocol's loopback cost\n")
            print("| model, tensor | session | median ms | cost vs local (ms) |")
            print("|---|---|---|---|")
            print(f"| person, [1,300,300,3] uint8 (270 KB in, 2 KB out) | local ONNX Runtime, 1 thread "
                  f"| {local:.2f} | - |")
            for name in ("remote gRPC", "remote HTTP (JSON)"):
                remote = statistics.median(time_session(configs[name], tensor, args.frames))
                print(f"| person, 270 KB | {name} | {remote:.2f} | {remote - local:+.2f} |")
            for label, model_name, path, array in (
                ("y = 2x, [1,3] float32 (12 bytes in and out)", "scale", scale, np.ones((1, 3), np.float32)),
                ("y = 2x, [1,300,300,3] float32 (1 MB in and out)", "big", big,
                 np.ones((1, 300, 300, 3), np.float32)),
            ):
                local_config = write_config(folder, f"{model_name}_local", None, 1, path)
                base_ms = statistics.median(time_session(local_config, array, args.frames))
                print(f"| {label} | local ONNX Runtime, 1 thread | {base_ms:.3f} | - |")
                for name, url in (("remote gRPC", server.grpc_url), ("remote HTTP (JSON)", server.http_url)):
                    config = write_config(folder, f"{model_name}_{name[7:11]}", backend(url, model_name), None, path)
                    remote = statistics.median(time_session(config, array, args.frames))
                    print(f"| {label.split(' (')[0]} | {name} | {remote:.3f} | {remote - base_ms:+.3f} |")

            print(f"\n## N clients (processes) sharing one server, {len(frames)} frames each\n")
            print("| clients | server batching | total frames/s | median ms | p95 ms |")
            print("|---|---|---|---|---|")
            for batching, model in (("off", "person"), (f"on (max {max(counts)}, 4 ms)", "person_batched")):
                config = write_config(folder, f"shared_{model}", backend(server.grpc_url, model))
                for count in counts:
                    fps, median, p95 = shared_server(config, count, len(frames))
                    print(f"| {count} | {batching} | {fps:.1f} | {median:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()
