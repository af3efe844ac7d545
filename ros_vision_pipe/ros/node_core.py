"""What the plain and the managed (lifecycle) pipeline node share, in their lifecycle's steps.

``PipelineNodeCore`` is mixed into ``rclpy.node.Node`` (``node.PipelineNode``: every step at
construction) or ``rclpy.lifecycle.LifecycleNode`` (``lifecycle_node.LifecyclePipelineNode``):

==============  ===========================================================================
step            does
==============  ===========================================================================
``_configure``  parameters, the pipeline (sessions, scripts), publishers, ``~/reload``,
                the per-model parameters, publishing on ``pipeline.on_ready``, the config watcher
``_activate``   image subscriptions, the /diagnostics and input-watch timers
``_deactivate`` destroy the subscriptions and timers, wait until every frame taken is published
``close``       stop the watcher, the model task queues, every pipeline generation
==============  ===========================================================================

Callback groups and threads are described in node.py; publishing a frame's results in
result_publishing.py, taking images in intake_loop.py and image_intake.py.
"""

from __future__ import annotations

import threading
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.generations import SwappablePipeline
from ros_vision_pipe.engine.live_feed import Intake, submit_live
from ros_vision_pipe.engine.model import SessionFactory
from ros_vision_pipe.engine.reload import PipelineBuilder, ReloadError
from ros_vision_pipe.engine.replicas import describe_replicas
from ros_vision_pipe.huge_pages import SETTLE_FRAMES, Collapsed, HugePages
from ros_vision_pipe.messages.image_encoding import DecodedImage, ImageDecodeError
from ros_vision_pipe.msg import FusedResult, ModelResult
from ros_vision_pipe.ros.debug_image import DebugImage
from ros_vision_pipe.ros.diagnostics import DiagnosticsCollector
from ros_vision_pipe.ros.image_intake import ImageReader, Serialized
from ros_vision_pipe.ros.intake_loop import IntakeGroup, IntakeLoop
from ros_vision_pipe.ros.params import NodeConfig, declare_parameters
from ros_vision_pipe.ros.qos_events import QosEventReporter, SilentInputs
from ros_vision_pipe.ros.reload import ConfigWatcher, Reloader
from ros_vision_pipe.ros.result_publishing import WARN_PERIOD_S, FrameStamp, ResultPublishing
from ros_vision_pipe.ros.runtime_control import RuntimeControl
from ros_vision_pipe.ros.runtime_params import ModelParameters
from ros_vision_pipe.ros.task_runner import CallbackGroupTaskRunner

#: Seconds ``_deactivate`` waits for the frames taken to be published.
DRAIN_TIMEOUT_S = 10.0
_RESULT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
_DIAGNOSTICS_QOS = QoSProfile(depth=10)
_DEBUG_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
#: Seconds between two looks at the inputs' matched publishers (silent-input warning).
WATCH_PERIOD_S = 0.5


def _seconds(header: Header) -> float:
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


if TYPE_CHECKING:  # what the mixin is mixed into: a Node or a LifecycleNode (a Node too)
    from rclpy.node import Node as _NodeBase
else:
    _NodeBase = object


class PipelineNodeCore(ResultPublishing, RuntimeControl, _NodeBase):
    """The pipeline node's behaviour, mixed into a ``Node`` or a ``LifecycleNode`` (see the module docstring)."""

    _session_factory: SessionFactory

    def _init_core(self, node_name: str, session_factory: SessionFactory) -> None:
        self._node_name = node_name
        self._session_factory = session_factory
        self._closing = False
        self._active = False
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()  # results are published in submission order
        self._last_warning: dict[str, float] = {}
        self._last_frame: tuple[Any, str] | None = None
        self._timers: list[Any] = []
        self.image_subscriptions: dict[str, Any] = {}
        self._readers: dict[str, ImageReader] = {}  # per input, built with its subscription
        self.intake: IntakeLoop | None = None  # the intake thread, while active
        self.watcher: ConfigWatcher | None = None
        self.pipeline: SwappablePipeline | None = None
        self.huge_pages: HugePages | None = None  # set by _configure when the huge_pages parameter is on

    def _publisher(self, message_type: Any, topic: str, qos: QoSProfile) -> Any:
        return self.create_publisher(  # type: ignore[attr-defined]
            message_type, topic, qos, event_callbacks=self.qos_events.publisher(topic, qos))

    # -- configure ------------------------------------------------------------------------

    def _configure(self) -> None:
        """Parameters, the pipeline, publishers, ``~/reload``, per-model parameters, publishing."""
        self._closing = False
        if self.has_parameter("config_file"):  # type: ignore[attr-defined]  # lifecycle: configured again
            self.config: NodeConfig = self._reread_config()
        else:
            self.config = declare_parameters(self)  # type: ignore[arg-type]
        self.task_runner = CallbackGroupTaskRunner(self, ())  # type: ignore[arg-type]  # one task queue per model, on demand
        # direct: a single/serial frame runs each model's steps as one task in the model's group
        self.builder = PipelineBuilder(self._session_factory, self.task_runner, shares_cores=True, direct=True,
                                       replicas=self.config.replicas)
        try:
            first = self.builder.build(self.config.config_file, warm_up=False)  # nothing spins yet to run task queues
        except ReloadError as error:  # at start-up: the engine's own error (ConfigError, ModelLoadError...)
            raise (error.__cause__ or error) from None
        self.pipeline = SwappablePipeline(first)
        self.pipeline.on_ready(self._publish_ready)  # results are published by the thread that ends a frame
        self.model_names = tuple(first.pipeline.models)
        self.spec = first.pipeline.spec
        self.diagnostics = DiagnosticsCollector(
            self.get_fully_qualified_name(), self.config.config_file.name,  # type: ignore[attr-defined]
            self.model_names, self.config.image_topics)
        self.qos_events = QosEventReporter(self)  # one warning per incompatible peer, topic and policy
        self.model_publishers: dict[str, Any] = {}
        self.detection_publishers: dict[str, Any] = {}
        self.fused_publisher = (
            self._publisher(FusedResult, self.config.output_topic("fused"), _RESULT_QOS)
            if self.config.publish_fused else None
        )
        self._model_outputs(self.model_names)
        self.diagnostics_publisher = self._publisher(DiagnosticArray, "/diagnostics", _DIAGNOSTICS_QOS)
        self.debug_image = (DebugImage(self, self.config.output_topic("debug_image"),  # type: ignore[arg-type]
                                       self.config.debug_image_rate, _DEBUG_QOS, self._debug_publisher_factory())
                            if self.config.debug_image_rate > 0 else None)
        if self.debug_image is not None:
            self.debug_image.configure(first.pipeline.config)
        self.model_parameters = ModelParameters(
            self, self.builder.switches, lambda: self.pipeline.current.pipeline if self.pipeline else None)
        self.model_parameters.declare(first.pipeline.spec)
        self.model_parameters.apply_all(first.pipeline)
        if not getattr(self, "_parameter_callback_added", False):
            self.add_on_set_parameters_callback(self._on_set_parameters)  # type: ignore[attr-defined]
            self._parameter_callback_added = True
        self.reloader = Reloader(self.builder, self.pipeline, lambda: self._last_frame, self._prepare_generation,
                                 self._log_reload)
        # reload group: one reload at a time, in parallel with intake and the models' task queues it needs.
        self.reload_group = MutuallyExclusiveCallbackGroup()
        self.reload_service = self.create_service(  # type: ignore[attr-defined]
            Trigger, "~/reload", self._on_reload, callback_group=self.reload_group)
        if self.config.watch_config:
            self.watcher = ConfigWatcher(self.config.config_file.parent, self._on_config_changed)
        self.huge_pages = HugePages(self._huge_pages_done) if self.config.huge_pages else None
        if self.huge_pages is not None:
            self.diagnostics.huge_pages = f"after {SETTLE_FRAMES} frames"

    def _reread_config(self) -> NodeConfig:
        from ros_vision_pipe.ros.params import PARAMETERS, _validate

        return _validate({name: self.get_parameter(name).value for name in PARAMETERS})  # type: ignore[attr-defined]

    def _debug_publisher_factory(self) -> Any:
        return None  # plain node: create_publisher

    def _model_outputs(self, names: tuple[str, ...]) -> None:
        """Publishers of models not seen before (a reload may add models)."""
        vision = self._vision_msgs_class() if self.config.vision_msgs else None
        for name in names:
            if name not in self.model_publishers:
                self.model_publishers[name] = self._publisher(
                    ModelResult, self.config.output_topic(name, "result"), _RESULT_QOS)
                if vision is not None:
                    self.detection_publishers[name] = self._publisher(
                        vision, self.config.output_topic(name, "detections"), _RESULT_QOS)

    def _vision_msgs_class(self) -> Any:
        from ros_vision_pipe.ros.params import NodeConfigError

        try:
            from vision_msgs.msg import Detection2DArray
        except ImportError as error:
            raise NodeConfigError(
                "parameter 'vision_msgs.detections' is true but the vision_msgs package cannot be imported "
                f"({error}); install it (apt install ros-$ROS_DISTRO-vision-msgs, or rosdep install "
                "--from-paths <this package>) or set vision_msgs.detections:=false") from error
        return Detection2DArray

    @property
    def executor_threads(self) -> int:
        """Threads the executor needs: one per model, diagnostics, parameters, reload (intake has its own)."""
        return len(self.model_names) + 3

    # -- activate / deactivate ------------------------------------------------------------

    def _activate(self) -> None:
        """Subscribe to the inputs; start the /diagnostics and input-watch timers (steady clock)."""
        # intake: the image subscriptions are taken by the node's own intake thread (intake_loop.py),
        # one image at a time; their QoS event handlers run in the intake group in the executor.
        self.intake_group = IntakeGroup()
        self.input_qos = qos = self.config.input_qos()
        self.silent_inputs = SilentInputs(self.config.image_topics, self.config.silent_input_s)
        for topic in self.config.image_topics:
            compressed = self.config.is_compressed(topic)
            self._readers[topic] = ImageReader(compressed, self.config.image_format(topic))
            self.image_subscriptions[topic] = self.create_subscription(  # type: ignore[attr-defined]
                CompressedImage if compressed else Image, topic, partial(self._on_image, topic=topic),
                qos, callback_group=self.intake_group, event_callbacks=self.qos_events.subscription(
                    topic, qos, message_lost=partial(self._message_lost, topic)), raw=True)
        self.intake = IntakeLoop(self.context, self._on_image)  # type: ignore[attr-defined]
        self.intake.watch(self.image_subscriptions)
        # diagnostics group: reads counters and the graph only; in parallel with everything. A steady
        # clock: with use_sim_time (bag playback) a ROS-time timer would stop whenever /clock does.
        self.diagnostics_group = MutuallyExclusiveCallbackGroup()
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timers = [
            self.create_timer(self.config.diagnostics_period, self._publish_diagnostics,  # type: ignore[attr-defined]
                              callback_group=self.diagnostics_group, clock=steady),
            self.create_timer(WATCH_PERIOD_S, self._watch_inputs,  # type: ignore[attr-defined]
                              callback_group=self.diagnostics_group, clock=steady),
        ]
        self._active = True

    def _deactivate(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Stop intake (subscriptions and timers destroyed), then wait for the frames taken to be published."""
        self._active = False
        self._stop_intake()
        for subscription in self.image_subscriptions.values():
            self.destroy_subscription(subscription)  # type: ignore[attr-defined]
        self.image_subscriptions = {}
        for timer in self._timers:
            self.destroy_timer(timer)  # type: ignore[attr-defined]
        self._timers = []
        deadline = time.monotonic() + timeout
        quiet = 0  # consecutive looks with nothing pending and every collected result published
        while self.pipeline is not None and time.monotonic() < deadline:
            idle = (all(p.stats().pending == 0 for p in self.pipeline.pipelines())
                    and self._results_collected == self._results_handled)
            quiet = quiet + 1 if idle else 0
            if quiet >= 3:  # also covers a result popped but not yet counted (a few microseconds)
                return True
            time.sleep(0.01)
        return False

    # -- intake (intake group) -----------------------------------------------------------

    def _message_lost(self, topic: str, info: Any) -> None:
        """DDS reported samples of ``topic`` lost (``QoSMessageLostInfo``): the silent/lossy-input bookkeeping."""
        self.silent_inputs.lost(topic, info.total_count)

    def _on_image(self, raw: Serialized, topic: str) -> None:
        """The intake thread's callback (intake_loop.py) for a serialized ``Image`` / ``CompressedImage``:
        take it, then start it.

        The first model runs the frame right here, in its own callback group, when it is free and its
        last task was quick (``task_runner.here``): then intake, the model and publishing
        (``on_ready``) are one thread, strictly one after the other, as in a hand-written node. A slow
        or busy model gets the frame on its own executor thread, and intake goes on taking frames
        (docs/ros.md, "Threads").
        """
        self._take_frame(raw, topic)
        if self._closing or not self._active or self.pipeline is None:
            return
        try:
            intake = self.intake
            with self.task_runner.here():
                self.pipeline.start_waiting(arrived_ns=intake.received_ns if intake is not None else 0)
        except PipelineClosedError:
            return

    def _take_frame(self, raw: Serialized, topic: str) -> None:
        """Read a serialized message of ``topic`` in place (image_intake.py) and hand it to ``_intake``."""
        frame = self._readers[topic].read(raw)
        self.silent_inputs.frame(topic, frame.size)
        self._intake(topic, frame.header, frame.decode)

    def _intake(self, topic: str, header: Header, decode: Any) -> None:
        if self._closing or not self._active or self.pipeline is None:
            return
        self.diagnostics.received(topic)
        try:
            decoded: DecodedImage = decode()
        except ImageDecodeError as decode_error:
            self._reject(topic, decode_error)
            return
        self._last_frame = (decoded.image, decoded.encoding)  # the warm-up frame of the next reload
        try:  # never waits: a full pipeline refuses the frame (or drops its oldest, per the config)
            intake, error = submit_live(self.pipeline, decoded.image, source=topic, encoding=decoded.encoding,
                                        timestamp=_seconds(header),
                                        stamp=FrameStamp(header, decoded.image, decoded.encoding), start=False)
        except PipelineClosedError:
            return
        if intake is Intake.INVALID and error is not None:
            self._reject(topic, error)
        elif intake is Intake.NOT_ACCEPTED:
            self.diagnostics.refused(topic)

    def _reject(self, topic: str, error: Exception) -> None:
        total = self.diagnostics.rejected(topic)
        now = time.monotonic()
        if now - self._last_warning.get(topic, -WARN_PERIOD_S) >= WARN_PERIOD_S:
            self._last_warning[topic] = now
            self.get_logger().warning(  # type: ignore[attr-defined]
                f"frame rejected on {topic!r}: {error} ({total} rejected so far)")

    # -- diagnostics (diagnostics group) -------------------------------------------------

    def _watch_inputs(self) -> None:
        """Warn once per input when it has a matched publisher but no (or mostly lost) frames (docs/ros.md);
        start the huge-page collapse once the models have settled (``_settle_memory``)."""
        if self._closing:
            return
        for topic, subscription in self.image_subscriptions.items():
            publishers = subscription.get_publisher_count()
            silent = self.silent_inputs.check(topic, publishers)
            self.diagnostics.matched(topic, publishers, self.silent_inputs.silent_for(topic, publishers),
                                     self.silent_inputs.counts(topic)[1])
            if silent is not None:
                self.get_logger().warning(self.silent_inputs.message(self, topic, self.input_qos, silent))
        self._settle_memory()

    def _settle_memory(self) -> None:
        """Once the models have settled (the first frames, and after each reload), their memory onto
        huge pages, in a thread of its own (huge_pages.py)."""
        if self.huge_pages is not None:
            self.huge_pages.poll(self._results_handled)

    def _huge_pages_done(self, collapsed: Collapsed) -> None:
        if self._closing:
            return
        self.diagnostics.huge_pages = collapsed.describe()
        self.get_logger().info(collapsed.describe())  # type: ignore[attr-defined]

    def _publish_diagnostics(self) -> None:
        if self._closing or self.pipeline is None:
            return
        # the per-model counts are a view of the engine's: every generation since start, as published
        self.diagnostics.engine(self.builder.switches.as_published(self.pipeline.lifetime_stats()))
        if self.config.replicas:
            self.diagnostics.replicas = describe_replicas(self.pipeline.current.pipeline.models)
        stamp = self.get_clock().now().to_msg()
        self.diagnostics_publisher.publish(self.diagnostics.build(stamp, self.task_runner.pending))

    # -- shutdown ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop taking frames, close the pipeline (frames in flight are abandoned).

        Idempotent. Call it before the executor stops, so that a model task already running can end.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        runner = getattr(self, "task_runner", None)
        if runner is not None:
            runner.close()  # queued model tasks are cancelled
        if self.pipeline is not None:
            self.pipeline.close()  # a frame the intake thread runs is interrupted
        self._stop_intake()

    def _stop_intake(self) -> None:
        """End the intake thread (after the frame it is running, if any)."""
        intake, self.intake = self.intake, None
        if intake is not None:
            intake.close()


__all__ = ["FrameStamp", "PipelineNodeCore", "ReloadError"]
