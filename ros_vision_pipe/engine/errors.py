"""Exceptions of the engine: one base class, one subclass per kind of failure.

Messages name the model, the file and the frame at fault, e.g.
``ScriptError: det.lua:14 in postprocess: attempt to index a nil value (model 'det', frame 37)``.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises."""


class ConfigError(EngineError):
    """The pipeline configuration is invalid (unknown mode, duplicate names, bad option...)."""


class ModelLoadError(EngineError):
    """An ONNX model file is missing, unreadable or rejected by the runtime."""


class ScriptError(EngineError):
    """A Lua script failed to load, or raised while running."""


class ScriptTimeoutError(ScriptError):
    """A script call ran past its time limit and was aborted inside the interpreter."""


class ScriptMemoryError(ScriptError):
    """A script's runtime reached its memory limit (the Lua heap or the arrays it holds)."""


class ScriptResultError(ScriptError):
    """A value returned by a script cannot be converted exactly, or is too large."""


class InferenceError(EngineError):
    """The inference runtime failed on a frame, or a tensor does not match the model input."""


class InputError(EngineError):
    """A frame given to the pipeline is not a valid image."""


class PipelineClosedError(EngineError):
    """The pipeline was closed; no more frames are accepted."""


class ScriptInterruptedError(ScriptError, PipelineClosedError):
    """A script call was aborted (or refused) because its pipeline closed."""


def frame_suffix(model: str | None, frame_id: int | None) -> str:
    """Return the ``(model 'x', frame N)`` suffix used by every per-frame error message."""
    parts = []
    if model is not None:
        parts.append(f"model {model!r}")
    if frame_id is not None:
        parts.append(f"frame {frame_id}")
    return f" ({', '.join(parts)})" if parts else ""
