"""The managed (lifecycle) pipeline node: ``ros2 lifecycle set /vision_pipeline configure`` etc.

``LifecyclePipelineNode`` is an ``rclpy.lifecycle.LifecycleNode`` with the same parameters, topics,
services and behaviour as ``PipelineNode``; its publishers are lifecycle publishers (they publish
only while active). Transitions (driven through ``<node>/change_state``, as ``ros2 lifecycle set``
and launch_ros's ``LifecycleNode`` do):

=============  ===================================================================================
transition     does
=============  ===================================================================================
configure      declare/read parameters; load the configuration and its sessions and scripts; create
               publishers, ``~/reload`` and the per-model parameters. A configuration that does not
               load fails the transition (back to unconfigured, the error logged).
activate       subscribe to the inputs, start /diagnostics; publishers go live
deactivate     stop intake, wait until every frame taken is published (drain), publishers go quiet
cleanup        close the pipeline, its threads and sessions; destroy publishers and services
shutdown       as cleanup, from any state
=============  ===================================================================================

Run it with ``ros2 run ros_vision_pipe pipeline_node --lifecycle`` or ``lifecycle:=true`` of
``launch/pipeline.launch.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rclpy.context import Context
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile

from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.engine.model import SessionFactory
from ros_vision_pipe.ros.node import NODE_NAME, node_session_factory
from ros_vision_pipe.ros.node_core import PipelineNodeCore
from ros_vision_pipe.ros.params import NodeConfigError


class LifecyclePipelineNode(PipelineNodeCore, LifecycleNode):
    """The pipeline node as a managed node (arguments as ``PipelineNode``); starts unconfigured."""

    def __init__(self, node_name: str = NODE_NAME, *, context: Context | None = None,
                 parameter_overrides: Sequence[Parameter[Any]] | None = None,
                 session_factory: SessionFactory = node_session_factory, **kwargs: Any) -> None:
        """Create the node and its lifecycle services; nothing is loaded until ``configure``."""
        super().__init__(node_name, context=context, parameter_overrides=list(parameter_overrides or []), **kwargs)
        self._init_core(node_name, session_factory)
        self.model_names: tuple[str, ...] = ()

    def _publisher(self, message_type: Any, topic: str, qos: QoSProfile) -> Any:
        return self.create_lifecycle_publisher(
            message_type, topic, qos, event_callbacks=self.qos_events.publisher(topic, qos))

    def _debug_publisher_factory(self) -> Any:
        return self.create_lifecycle_publisher

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the configuration, its sessions and scripts; create publishers and services."""
        try:
            self._configure()
        except (EngineError, NodeConfigError) as error:
            self.get_logger().error(f"configure failed: {type(error).__name__}: {error}")
            self._teardown()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: {str(self.config.config_file)!r} ({self.spec.mode.value}: "
                               f"{', '.join(self.model_names)})")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to the inputs and start /diagnostics; publishers go live."""
        self._activate()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop intake and drain: every frame taken is published before the publishers go quiet."""
        if not self._deactivate():
            self.get_logger().warning("deactivate: frames still in flight after the drain timeout")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Close the pipeline and destroy publishers and services."""
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """As cleanup, from any state."""
        if self._active:
            self._deactivate(timeout=1.0)
        self._teardown()
        return TransitionCallbackReturn.SUCCESS

    def _teardown(self) -> None:
        """Close everything ``_configure`` opened, so that a later configure starts afresh."""
        self.close()
        for publisher in [*getattr(self, "model_publishers", {}).values(),
                          *getattr(self, "detection_publishers", {}).values(),
                          getattr(self, "fused_publisher", None), getattr(self, "diagnostics_publisher", None),
                          getattr(getattr(self, "debug_image", None), "publisher", None)]:
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        service = getattr(self, "reload_service", None)
        if service is not None:
            self.destroy_service(service)
        if getattr(self, "task_runner", None) is not None:
            self.task_runner.destroy()
        self.model_publishers, self.detection_publishers = {}, {}
        self.fused_publisher = self.debug_image = self.reload_service = None  # type: ignore[assignment]
        self.reloader = None  # type: ignore[assignment]  # config_file set while unconfigured: kept for configure
        self.pipeline = None

    def destroy_node(self) -> None:
        """``close`` and destroy the node's entities."""
        self.close()
        super().destroy_node()


__all__ = ["LifecyclePipelineNode"]
