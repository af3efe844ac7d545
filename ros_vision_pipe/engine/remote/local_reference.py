"""What the local ONNX file of a remote model says: inputs, outputs (in order) and custom metadata.

Read with ``onnx`` (no inference session), so a remote model without fallback costs no
ONNX Runtime memory; the file is optional on a robot that only uses the server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ros_vision_pipe.engine.errors import ModelLoadError
from ros_vision_pipe.engine.session import TensorSpec

#: ONNX TensorProto element types -> numpy dtype names.
_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
                9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}


@dataclass(frozen=True)
class LocalReference:
    """Inputs, outputs and custom metadata of a local ONNX file."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)


def _specs(values: object, skip: set[str]) -> tuple[TensorSpec, ...]:
    specs = []
    for value in values:  # type: ignore[attr-defined]
        if value.name in skip:
            continue
        tensor = value.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
        specs.append(TensorSpec(value.name, shape, _ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type))))
    return tuple(specs)


def read_local_reference(path: Path) -> LocalReference | None:
    """The file's inputs, outputs and metadata; None when the file does not exist.

    Raises:
        ModelLoadError: The file exists but is not a readable ONNX model.
    """
    if not path.is_file():
        return None
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # onnx raises several unrelated types
        raise ModelLoadError(f"cannot read ONNX file {str(path)!r}: {error}") from error
    initializers = {init.name for init in model.graph.initializer}
    return LocalReference(
        inputs=_specs(model.graph.input, initializers),
        outputs=_specs(model.graph.output, set()),
        metadata={prop.key: prop.value for prop in model.metadata_props},
    )
