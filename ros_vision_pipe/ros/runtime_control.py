"""Runtime control of the pipeline node: ``~/reload``, a writable ``config_file``, ``models.<name>.*``.

A mixin of ``PipelineNodeCore`` (node_core.py), kept apart from the frame path: these callbacks run in
the parameter/service callback group and only hand work to the ``Reloader`` (ros/reload.py) and the
``ModelParameters`` (ros/runtime_params.py) that the node built at configure time. docs/ros.md,
"Operating the node while it runs", describes the behaviour.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from ros_vision_pipe.engine.generations import Generation
from ros_vision_pipe.huge_pages import SETTLE_FRAMES
from ros_vision_pipe.ros.params import NodeConfig, resolve_config_file

if TYPE_CHECKING:
    from ros_vision_pipe.huge_pages import HugePages
    from ros_vision_pipe.ros.debug_image import DebugImage
    from ros_vision_pipe.ros.diagnostics import DiagnosticsCollector
    from ros_vision_pipe.ros.reload import Reloader
    from ros_vision_pipe.ros.runtime_params import ModelParameters


class RuntimeControl:
    """Reload and per-model switches; the attributes below are set by ``PipelineNodeCore._configure``."""

    config: NodeConfig
    model_names: tuple[str, ...]
    model_parameters: ModelParameters
    reloader: Reloader
    debug_image: DebugImage | None
    huge_pages: HugePages | None
    diagnostics: DiagnosticsCollector
    _closing: bool

    if TYPE_CHECKING:  # provided by PipelineNodeCore and by the rclpy Node it is mixed into
        def _model_outputs(self, names: tuple[str, ...]) -> None: ...

        def get_logger(self) -> Any: ...

    def _prepare_generation(self, generation: Generation) -> None:
        """Publishers, task queues and parameters of the new generation's models; the current switch values."""
        names = tuple(generation.pipeline.models)
        self._model_outputs(names)
        self.model_parameters.declare(generation.pipeline.spec)
        self.model_parameters.apply_all(generation.pipeline)
        if self.debug_image is not None:
            self.debug_image.configure(generation.pipeline.config)
        self.model_names = tuple(dict.fromkeys((*self.model_names, *names)))

    def _log_reload(self, success: bool, message: str) -> None:
        logger = self.get_logger()
        (logger.info if success else logger.error)(message)
        if success and self.huge_pages is not None:  # the new models' memory, once they have settled
            self.huge_pages.rearm()
            last = self.huge_pages.last
            self.diagnostics.huge_pages = ("" if last is None else f"{last.describe()}; ") + \
                f"again {SETTLE_FRAMES} frames after the reload"

    def _on_reload(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        """``~/reload``: reload ``config_file`` (the file may have been edited in place)."""
        outcome = self.reloader.reload(self.config.config_file)
        response.success = outcome.success
        response.message = outcome.message
        return response

    def _on_config_changed(self) -> None:
        if not self._closing:
            self.reloader.reload(self.config.config_file)

    def _on_set_parameters(self, parameters: list[Parameter[Any]]) -> SetParametersResult:
        """Validate (and apply) ``config_file`` and ``models.<name>.*``; refusals name the model / file."""
        model_parameters = getattr(self, "model_parameters", None)
        for parameter in parameters:
            reason = model_parameters.check(parameter) if model_parameters is not None else None
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        for parameter in parameters:
            if parameter.name == "config_file" and getattr(self, "reloader", None) is not None:
                if parameter.type_ is not Parameter.Type.STRING or not str(parameter.value).strip():
                    return SetParametersResult(successful=False, reason="config_file must be a non-empty path")
                path = resolve_config_file(str(parameter.value))
                outcome = self.reloader.reload(path)
                if not outcome.success:
                    return SetParametersResult(successful=False, reason=outcome.message)
                self.config = _replace_config(self.config, path)
        if model_parameters is not None:
            for parameter in parameters:
                model_parameters.apply(parameter)
        return SetParametersResult(successful=True)


def _replace_config(config: NodeConfig, path: Any) -> NodeConfig:
    return replace(config, config_file=path)


__all__ = ["RuntimeControl"]
