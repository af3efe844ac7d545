"""The inference runtime behind a small Protocol, and its ONNX Runtime implementation.

Tests swap in a slow or failing session through ``InferenceSession``; everything
else runs real ONNX models through ``OnnxSession``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np

from ros_vision_pipe.engine.cores import available_cores, shared_free_cores
from ros_vision_pipe.engine.errors import ModelLoadError
from ros_vision_pipe.engine.replicas import ReplicaBuilder, Replicas

#: ONNX Runtime element types -> numpy dtype names.
_ORT_DTYPES: dict[str, str] = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}

#: Short provider names accepted in configurations.
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of a model input or output.

    ``shape`` holds ints for fixed dimensions and ``None`` for symbolic ones.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def describe(self) -> str:
        """Human-readable ``float32 [1,3,?,?]``."""
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype} [{dims}]"

    @property
    def fixed_batch(self) -> bool:
        """True when the leading (batch) dimension is fixed at 1."""
        return len(self.shape) > 0 and self.shape[0] == 1


class InferenceSession(Protocol):
    """What the engine needs from an inference runtime."""

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Model inputs, in order."""
        ...

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Model outputs, in order."""
        ...

    @property
    def metadata(self) -> Mapping[str, str]:
        """Custom metadata of the model file (e.g. a label list)."""
        ...

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one inference; returns the outputs in ``outputs`` order."""
        ...


def resolve_providers(names: Sequence[str]) -> tuple[str, ...]:
    """Map short or full provider names to ONNX Runtime names (``"cuda"`` -> ``CUDAExecutionProvider``)."""
    return tuple(PROVIDER_ALIASES.get(name.lower(), name) for name in names)


def _spec(node: object) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)  # type: ignore[attr-defined]
    ort_type = node.type  # type: ignore[attr-defined]
    return TensorSpec(node.name, shape, _ORT_DTYPES.get(ort_type, ort_type))  # type: ignore[attr-defined]


def _dynamic_model_bytes(path: Path) -> bytes:
    """Return the model with every graph input/output dimension made symbolic.

    Models exported with a static shape (e.g. CenterFace ``[10,3,32,32]``) are fully
    convolutional in fact; symbolic dims let them take any batch and image size.
    """
    import onnx

    model = onnx.load(str(path))
    for kind, values in (("in", model.graph.input), ("out", model.graph.output)):
        for value in values:
            dims = value.type.tensor_type.shape.dim
            for index, dim in enumerate(dims):
                if index == 1 and kind == "in" and dim.HasField("dim_value") and dim.dim_value <= 4:
                    continue  # keep the channel count of NCHW inputs
                dim.ClearField("dim_value")
                dim.dim_param = f"{value.name}_d{index}"
    del model.graph.value_info[:]
    return bytes(model.SerializeToString())


class DescribedSession:
    """The description half of ``InferenceSession``: a session sets these three attributes when it starts."""

    _inputs: tuple[TensorSpec, ...]
    _outputs: tuple[TensorSpec, ...]
    _metadata: Mapping[str, str]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        """Model inputs, in order (a remote model: the local file's order when it exists)."""
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        """Model outputs, in order (a remote model: the local file's order when it exists)."""
        return self._outputs

    @property
    def metadata(self) -> Mapping[str, str]:
        """Custom metadata of the model file (a remote model: of its local file; empty without one)."""
        return self._metadata


#: ``intra_op_threads`` of a session sized by the cores free at each inference (``OnnxSession``).
FREE_CORES = -1


class OnnxSession(DescribedSession):
    """An ONNX Runtime session configured for one model of a pipeline.

    With ``intra_op_threads=FREE_CORES`` (a CPU model on a machine of 2+ cores) it holds two
    ONNX Runtime sessions of the model, both with every core: a spinning one (ONNX Runtime's
    default: threads spin between operators and for a while after an inference, so the next one
    starts hot) and a quiet one (threads that block), and runs each inference on the spinning one
    while other processes leave the cores free (``cores.FreeCores``), on the quiet one otherwise:
    a thread spinning on a core that another process wants stalls every operator, and holds the
    core that process needs (bench/bench_spinning.py, docs/performance.md). Spinning only during
    an inference (``session.force_spinning_stop``) was measured too: one inference in 12 took 3x
    as long. The cost is the model's weights twice in memory.

    For frames that back up it builds, the first time ``replicas()`` is asked, one one-thread session
    per core (replicas.py): two frames side by side on one-thread sessions run more inferences per
    second than one after the other on every core.
    """

    def __init__(
        self,
        path: Path,
        *,
        model_name: str,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        intra_op_threads: int = 0,
        allow_spinning: bool = True,
        dynamic_shape: bool = False,
    ) -> None:
        """Load ``path`` and create the session.

        Args:
            path: ONNX file.
            model_name: Model name, for error messages.
            providers: Execution providers in priority order.
            intra_op_threads: Threads per inference (0 = ONNX Runtime default; ``FREE_CORES``:
                every core, spinning only while other processes leave the cores free).
            allow_spinning: Let idle intra-op threads spin (ONNX Runtime's default; off when
                models share cores, and for ``FREE_CORES`` only while the cores are free).
            dynamic_shape: Make every input/output dimension symbolic before loading.

        Raises:
            ModelLoadError: The file is missing, corrupt, or a provider is not installed.
        """
        import onnxruntime as ort

        where = f"model {model_name!r}, file {str(path)!r}"
        if not path.is_file():
            raise ModelLoadError(f"ONNX file not found: {str(path)!r} (model {model_name!r})")
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise ModelLoadError(
                f"execution provider(s) {missing} not available ({where}); "
                f"this onnxruntime build offers {available}"
            )
        cores = available_cores()
        adaptive = intra_op_threads == FREE_CORES and cores > 1 and tuple(providers) == ("CPUExecutionProvider",)
        if intra_op_threads == FREE_CORES and not adaptive:
            intra_op_threads = 0
        try:
            source: str | bytes = _dynamic_model_bytes(path) if dynamic_shape else str(path)
            self._session = _ort_session(source, providers, cores if adaptive else intra_op_threads, allow_spinning)
            self._quiet = _ort_session(source, providers, cores, False) if adaptive else None
        except Exception as error:  # onnxruntime raises several unrelated types
            raise ModelLoadError(f"cannot load ONNX model ({where}): {error}") from error
        self._free = shared_free_cores() if adaptive else None
        self._cores = cores
        # one-thread sessions for frames that back up (replicas.py); built on first use
        outputs = [node.name for node in self._session.get_outputs()]
        self._replicas = (ReplicaBuilder(lambda: _ort_session(source, providers, 1, False), cores, outputs, model_name)
                          if adaptive else None)
        #: Inferences run on the spinning and on the quiet session (``FREE_CORES``).
        self.spinning_runs = self.quiet_runs = 0
        self._inputs = tuple(_spec(node) for node in self._session.get_inputs())
        self._outputs = tuple(_spec(node) for node in self._session.get_outputs())
        self._output_names = [spec.name for spec in self._outputs]
        meta = self._session.get_modelmeta().custom_metadata_map
        self._metadata: Mapping[str, str] = MappingProxyType(dict(meta))
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())

    def replicas(self, start: bool = True) -> Replicas | None:
        """One-thread sessions of the model, one per core, that run several frames at once (replicas.py).

        Only with ``FREE_CORES``. With ``start`` (to run frames on them): None while another
        process keeps a core busy (frames side by side would share what is left), and the first
        call starts building them in the background (None until they are built, and always when
        they could not be). Without ``start``: the replicas if built.
        """
        if self._replicas is None:
            return None
        if not start:
            return self._replicas.replicas
        if self._free is not None and self._free.free() < self._cores - 0.5:  # a core is busy elsewhere
            return None
        return self._replicas.get()

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run one inference (releases the GIL while ONNX Runtime computes)."""
        session = self._session
        if self._quiet is not None and self._free is not None:
            if self._free.free() < self._cores - 0.5:  # a core is busy elsewhere
                session = self._quiet
                self.quiet_runs += 1
            else:
                self.spinning_runs += 1
        return list(session.run(self._output_names, dict(feeds)))


def _ort_session(source: str | bytes, providers: Sequence[str], threads: int, spinning: bool) -> Any:
    """An ``onnxruntime.InferenceSession`` with the engine's options."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(source, sess_options=options, providers=list(providers))
