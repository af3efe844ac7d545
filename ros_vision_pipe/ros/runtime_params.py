"""Runtime switches of the models as dynamic parameters: ``models.<name>.enabled`` / ``.frame_interval``.

Declared once a configuration is loaded (one pair per model, with descriptors), validated and
applied in the node's ``add_on_set_parameters_callback``: ``ros2 param set /vision_pipeline
models.pose.enabled false`` switches the model off at the next frame. A refused value answers
``SetParametersResult(successful=False, reason=...)`` naming the model. The parameters are the
truth across reloads: each new generation gets the current values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import Mode, PipelineSpec
from ros_vision_pipe.engine.reload import ModelSwitches

PREFIX = "models."
ENABLED = "enabled"
FRAME_INTERVAL = "frame_interval"
#: Largest frame_interval the parameter accepts.
MAX_FRAME_INTERVAL = 10_000


def parameter_name(model: str, what: str) -> str:
    """``models.<model>.<what>``."""
    return f"{PREFIX}{model}.{what}"


def skip_reason(model: str) -> str:
    """What a disabled model's SKIPPED results say (``ModelResult.skip_reason``)."""
    return f"model {model!r} disabled by parameter {parameter_name(model, ENABLED)}"


def _split(name: str) -> tuple[str, str] | None:
    if not name.startswith(PREFIX):
        return None
    model, _, what = name[len(PREFIX):].rpartition(".")
    return (model, what) if model and what in (ENABLED, FRAME_INTERVAL) else None


class ModelParameters:
    """Declares, validates and applies the per-model parameters of a node.

    Args:
        node: The node the parameters live on.
        switches: The on/off switches every generation obeys.
        pipeline: Returns the serving generation's pipeline (None before one is loaded).
    """

    def __init__(self, node: Node, switches: ModelSwitches, pipeline: Callable[[], Pipeline | None]) -> None:
        """No parameter declared yet."""
        self._node = node
        self._switches = switches
        self._pipeline = pipeline
        self._specs: dict[str, Any] = {}
        self._mode = Mode.SINGLE
        self._main = ""

    def declare(self, spec: PipelineSpec) -> None:
        """Declare the parameters of models not seen before; remember ``spec``'s models for validation."""
        self._specs = {model.name: model for model in spec.models}
        self._mode = spec.mode
        self._main = spec.models[0].name if spec.models else ""
        for model in spec.models:
            if not self._node.has_parameter(parameter_name(model.name, ENABLED)):
                self._node.declare_parameter(parameter_name(model.name, ENABLED), True, ParameterDescriptor(
                    description=f"Run model {model.name!r}. false: its results are published with STATUS_SKIPPED "
                                "and a skip_reason, its task queue idles, the other models go on (serial dependents "
                                "see nil).",
                    read_only=False))
            if not self._node.has_parameter(parameter_name(model.name, FRAME_INTERVAL)):
                descriptor = ParameterDescriptor(
                    description=f"parallel_async: run model {model.name!r} on frames whose index is a multiple "
                                "of this (the main model stays 1); other modes: must stay 1.",
                    read_only=False)
                descriptor.integer_range = [IntegerRange(from_value=1, to_value=MAX_FRAME_INTERVAL, step=1)]
                self._node.declare_parameter(parameter_name(model.name, FRAME_INTERVAL), model.frame_interval,
                                             descriptor)

    def check(self, parameter: Parameter[Any]) -> str | None:
        """Why ``parameter`` is refused, or None (also None for parameters that are not per-model)."""
        parts = _split(parameter.name)
        if parts is None:
            return None
        model, what = parts
        if self._specs and model not in self._specs:
            return f"model {model!r} is not in the pipeline ({', '.join(self._specs)})"
        if what == ENABLED:
            if parameter.type_ is not Parameter.Type.BOOL:
                return f"{parameter.name} of model {model!r} must be a bool, got {parameter.value!r}"
            return None
        if parameter.type_ is not Parameter.Type.INTEGER or parameter.value < 1:
            return f"{parameter.name} of model {model!r} must be an integer >= 1, got {parameter.value!r}"
        if parameter.value != 1 and self._specs and self._mode is not Mode.PARALLEL_ASYNC:
            return (f"frame_interval of model {model!r} applies to parallel_async only (this pipeline is "
                    f"{self._mode.value}); it must stay 1")
        if parameter.value != 1 and model == self._main:
            return f"model {model!r} is the main model of parallel_async: its frame_interval stays 1"
        return None

    def apply(self, parameter: Parameter[Any]) -> None:
        """Apply an accepted per-model parameter to the switches / the serving pipeline."""
        parts = _split(parameter.name)
        if parts is None:
            return
        model, what = parts
        if what == ENABLED:
            self._switches.set_enabled(model, bool(parameter.value), skip_reason(model))
            return
        pipeline = self._pipeline()
        if pipeline is not None and self._mode is Mode.PARALLEL_ASYNC and model in self._specs:
            pipeline.set_frame_interval(model, int(parameter.value))

    def apply_all(self, pipeline: Pipeline) -> None:
        """Give a new generation the current values (enabled and frame_interval of each of its models)."""
        for model in pipeline.spec.models:
            self._switches.set_enabled(model.name, bool(self._node.get_parameter(
                parameter_name(model.name, ENABLED)).value), skip_reason(model.name))
            interval = int(self._node.get_parameter(parameter_name(model.name, FRAME_INTERVAL)).value)
            if pipeline.spec.mode is Mode.PARALLEL_ASYNC and model.name != pipeline.spec.models[0].name:
                pipeline.set_frame_interval(model.name, interval)


__all__ = ["ENABLED", "FRAME_INTERVAL", "ModelParameters", "parameter_name", "skip_reason"]
