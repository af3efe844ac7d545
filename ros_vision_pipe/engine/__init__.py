"""The ROS-free engine: frame contexts, Lua-scripted ONNX models, execution modes.

Nothing in this package imports rclpy; it runs and is tested with plain Python.
"""

from ros_vision_pipe.engine.context import FrameContext
from ros_vision_pipe.engine.errors import (
    ConfigError,
    EngineError,
    InferenceError,
    InputError,
    ModelLoadError,
    PipelineClosedError,
    ScriptError,
)
from ros_vision_pipe.engine.records import (
    FrameResult,
    Mode,
    ModelOutcome,
    ModelSpec,
    OverflowPolicy,
    PipelineSpec,
    ResultStatus,
)

__all__ = [
    "ConfigError",
    "EngineError",
    "FrameContext",
    "FrameResult",
    "InferenceError",
    "InputError",
    "Mode",
    "ModelLoadError",
    "ModelOutcome",
    "ModelSpec",
    "OverflowPolicy",
    "PipelineClosedError",
    "PipelineSpec",
    "ResultStatus",
    "ScriptError",
]
