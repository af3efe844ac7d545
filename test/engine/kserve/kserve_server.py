"""A real KServe v2 server for the tests and the benchmark: MLServer in its own venv, on 127.0.0.1.

MLServer (PyPI ``mlserver``) has dependencies that conflict with the project venv's
pins, so ``tools/setup_env.sh`` installs it into ``.venv-kserve``; this module writes
a model repository (``settings.json`` + one folder per model, served by
``onnx_runtime_model.OnnxRuntimeModel``), starts ``mlserver start`` as a child process
on free loopback ports, waits until every model is ready, and kills it at the end.
It binds 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

#: Interpreter of the server's venv (override with RVP_KSERVE_PYTHON).
KSERVE_PYTHON = Path(os.environ.get("RVP_KSERVE_PYTHON", REPO / ".venv-kserve" / "bin" / "python"))

LOOPBACK = "127.0.0.1"


def server_available() -> bool:
    """Whether the MLServer venv is installed (``tools/setup_env.sh`` creates it)."""
    return KSERVE_PYTHON.is_file()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ServedModel:
    """One model of the repository.

    Attributes:
        name: Name the server serves it under.
        path: ONNX file.
        version: Version the server serves (KServe ``model_version``).
        delay_ms: Extra time every request takes (timeout tests).
        max_batch_size: MLServer adaptive batching: requests merged into one batch, at most (0 = off).
        max_batch_time_s: Adaptive batching: longest wait for a batch to fill, seconds.
    """

    name: str
    path: Path
    version: str = "1"
    delay_ms: int = 0
    max_batch_size: int = 0
    max_batch_time_s: float = 0.0


class MLServerProcess:
    """MLServer serving ``models`` from ``workdir`` on free 127.0.0.1 ports (kept across restarts).

    Args:
        workdir: Where the repository, the settings and the server log are written.
        models: The models to serve.
    """

    def __init__(self, workdir: Path, models: list[ServedModel]) -> None:
        """Pick the ports and write the repository; nothing runs yet."""
        self.workdir = Path(workdir)
        self.models = list(models)
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.log_path = self.workdir / "mlserver.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._write_repository()

    @property
    def grpc_url(self) -> str:
        """``grpc://127.0.0.1:PORT``."""
        return f"grpc://{LOOPBACK}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.http_port}"

    def _write_repository(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = {
            "host": LOOPBACK, "http_port": self.http_port, "grpc_port": self.grpc_port,
            "metrics_endpoint": None, "parallel_workers": 0, "debug": False,
        }
        (self.workdir / "settings.json").write_text(json.dumps(settings, indent=2))
        for model in self.models:
            folder = self.workdir / f"{model.name}-{model.version}"
            folder.mkdir(exist_ok=True)
            entry = {
                "name": model.name,
                "implementation": "onnx_runtime_model.OnnxRuntimeModel",
                "max_batch_size": model.max_batch_size,
                "max_batch_time": model.max_batch_time_s,
                "parameters": {"uri": str(Path(model.path).resolve()), "version": model.version,
                               "extra": {"delay_ms": model.delay_ms}},
            }
            (folder / "model-settings.json").write_text(json.dumps(entry, indent=2))

    def replace_models(self, models: list[ServedModel]) -> None:
        """Serve ``models`` from the next ``start`` on (a server restarted with another repository)."""
        self.models = list(models)
        self._write_repository()

    def start(self, timeout: float = 90.0) -> None:
        """Start the server and wait until every model is ready.

        Raises:
            RuntimeError: The server exited or was not ready in time (the message holds its log tail).
        """
        env = dict(os.environ)
        env["PYTHONPATH"] = str(HERE)
        env.pop("MLSERVER_HOST", None)
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(KSERVE_PYTHON), "-c", "import sys; from mlserver.cli import main; sys.exit(main())",
             "start", str(self.workdir)],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"MLServer exited with {self._process.returncode}:\n{self.log_tail()}")
            if all(self.model_ready(m) for m in self.models):
                return
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"MLServer not ready within {timeout} s:\n{self.log_tail()}")

    def model_ready(self, model: ServedModel) -> bool:
        """Whether the server answers that ``model`` is ready (HTTP health endpoint)."""
        url = f"{self.http_url}/v2/models/{model.name}/versions/{model.version}/ready"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the server's process group (SIGKILL by default: a crash, nothing flushed) and wait for it."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log."""
        if not self.log_path.is_file():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> MLServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
