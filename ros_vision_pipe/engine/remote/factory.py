"""The default session factory: a local ONNX Runtime session, or ``KServeSession`` for a ``backend``."""

from __future__ import annotations

from ros_vision_pipe.engine.model import onnx_session_factory
from ros_vision_pipe.engine.records import ModelSpec
from ros_vision_pipe.engine.remote.backend_spec import Fallback
from ros_vision_pipe.engine.session import InferenceSession


def default_session_factory(spec: ModelSpec, intra_op_threads: int, allow_spinning: bool) -> InferenceSession:
    """The session of ``spec``: its ONNX file in ONNX Runtime, or its KServe v2 server when it has a backend.

    Raises:
        ModelLoadError: The file or the server cannot be used (the message names the model).
    """
    if spec.backend is None:
        return onnx_session_factory(spec, intra_op_threads, allow_spinning)
    from ros_vision_pipe.engine.remote.session import KServeSession

    def local() -> InferenceSession:
        return onnx_session_factory(spec, intra_op_threads, allow_spinning)

    return KServeSession(spec.backend, model_name=spec.name, model_path=spec.model_path,
                         local_factory=local if spec.backend.fallback is Fallback.LOCAL else None)
