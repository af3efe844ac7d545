"""The MLServer runtime the KServe tests serve the project's ONNX models with (runs inside MLServer).

MLServer imports this module from the model folder it writes (``implementation`` =
``onnx_runtime_model.OnnxRuntimeModel``); it is not imported by the tests themselves.
It loads ``parameters.uri`` with ONNX Runtime and declares the model's inputs and
outputs (KServe v2 datatypes, -1 for dynamic dimensions) as its metadata, so a
client can validate its tensors against the served model. ``parameters.extra``:
``delay_ms`` makes every request that much slower (timeout tests).
"""

from __future__ import annotations

import asyncio

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse, MetadataTensor

_DATATYPES = {
    "tensor(float)": "FP32", "tensor(float16)": "FP16", "tensor(double)": "FP64",
    "tensor(uint8)": "UINT8", "tensor(int8)": "INT8", "tensor(int32)": "INT32",
    "tensor(int64)": "INT64", "tensor(bool)": "BOOL",
}


def _metadata(nodes: list) -> list[MetadataTensor]:
    return [
        MetadataTensor(name=node.name, datatype=_DATATYPES[node.type],
                       shape=[d if isinstance(d, int) else -1 for d in node.shape])
        for node in nodes
    ]


class OnnxRuntimeModel(MLModel):
    """Serves one ONNX file through ONNX Runtime (CPU)."""

    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        uri = self.settings.parameters.uri
        self._session = ort.InferenceSession(uri, sess_options=options, providers=["CPUExecutionProvider"])
        self.inputs = _metadata(self._session.get_inputs())
        self.outputs = _metadata(self._session.get_outputs())
        extra = self.settings.parameters.extra or {}
        self._delay_s = float(extra.get("delay_ms", 0)) / 1e3
        self._output_names = [node.name for node in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {item.name: NumpyCodec.decode_input(item) for item in payload.inputs}
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        outputs = await asyncio.to_thread(self._session.run, self._output_names, feeds)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(name, np.asarray(array))
                     for name, array in zip(self._output_names, outputs, strict=True)],
        )
