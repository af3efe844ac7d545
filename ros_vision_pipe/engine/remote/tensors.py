"""KServe v2 tensor metadata: datatypes, the engine's ``TensorSpec``, and checks between two models."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ros_vision_pipe.engine.session import TensorSpec

#: KServe v2 datatypes -> numpy dtype names (BYTES, i.e. strings, is not a tensor the scripts use).
KSERVE_TO_NUMPY: dict[str, str] = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64",
}
#: numpy dtype names -> KServe v2 datatypes.
NUMPY_TO_KSERVE: dict[str, str] = {value: key for key, value in KSERVE_TO_NUMPY.items()}


def spec_from_metadata(name: str, datatype: str, shape: Iterable[int]) -> TensorSpec:
    """A ``TensorSpec`` from one tensor of a model's KServe metadata (-1 dimensions -> None).

    Raises:
        ValueError: The datatype has no numpy equivalent the engine handles (e.g. BYTES).
    """
    dtype = KSERVE_TO_NUMPY.get(datatype)
    if dtype is None:
        raise ValueError(f"tensor {name!r} has datatype {datatype!r}, which the engine does not handle")
    return TensorSpec(name, tuple(None if int(d) < 0 else int(d) for d in shape), dtype)


def specs_from_metadata(tensors: Iterable[Any]) -> tuple[TensorSpec, ...]:
    """``TensorSpec`` of each item with ``name``, ``datatype`` and ``shape`` (gRPC message or JSON dict)."""
    specs = []
    for tensor in tensors:
        if isinstance(tensor, dict):
            specs.append(spec_from_metadata(tensor["name"], tensor["datatype"], tensor.get("shape", ())))
        else:
            specs.append(spec_from_metadata(tensor.name, tensor.datatype, tensor.shape))
    return tuple(specs)


def _dims_compatible(a: tuple[int | None, ...], b: tuple[int | None, ...]) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b, strict=True))


def differences(local: Sequence[TensorSpec], served: Sequence[TensorSpec], kind: str) -> list[str]:
    """How two models' inputs (or outputs) differ: names, dtypes, incompatible shapes; [] when they agree."""
    problems = []
    local_by_name = {spec.name: spec for spec in local}
    served_by_name = {spec.name: spec for spec in served}
    if set(local_by_name) != set(served_by_name):
        problems.append(f"{kind} {sorted(local_by_name)} locally, {sorted(served_by_name)} on the server")
    for name in sorted(set(local_by_name) & set(served_by_name)):
        a, b = local_by_name[name], served_by_name[name]
        if a.dtype != b.dtype or not _dims_compatible(a.shape, b.shape):
            problems.append(f"{kind[:-1]} {name!r} is {a.describe()} locally, {b.describe()} on the server")
    return problems
