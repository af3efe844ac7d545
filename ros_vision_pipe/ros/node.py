"""The ROS 2 node: camera topics in, one ``ModelResult`` per model and a ``FusedResult`` out.

A thin adapter around the engine's ``Pipeline``: parameters -> ``NodeConfig`` (params.py),
``sensor_msgs/Image``/``CompressedImage`` -> ndarray (``image_encoding``), ``FrameResult`` ->
messages (``result_mapping``), and the callback groups below.

Callback groups and threads, and what may run in parallel (a ``MultiThreadedExecutor`` with
``executor_threads`` threads, plus the engine's own threads and the node's result thread; spin
the node in ``ros_vision_pipe.ros.executors.MultiThreadedExecutor``: rclpy's own busy-loops and
starves these threads, see executors.py):

=====================  ============================================  =============================
group / thread         runs                                          in parallel with
=====================  ============================================  =============================
``intake`` group       every image subscription: decode, then        all others; never itself
                       ``pipeline.submit`` (never waits)
one group per model    that model's tasks (task_runner.py), when     other models, intake, params
                       the engine routes them to the node
``diagnostics`` group  the /diagnostics timer (reads counters)       all others
default group          parameter services (rclpy creates them)       all others
result thread          ``pipeline.wait_result``, then publishes the  all callbacks; results one at
(not a callback)       frame's messages, in submission order          a time
=====================  ============================================  =============================

So a slow model blocks only its own group and the frames queued behind it: images keep arriving
(a full pipeline refuses new frames or drops the oldest, per the configuration's
``max_pending_frames`` and ``submit_overflow``; both are counted) and parameter calls are answered.
Results are collected by a plain thread, not a guard-condition callback: an executor hop costs
about 0.3 ms of the node's 1 ms budget (docs/performance.md).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from ros_vision_pipe.engine.config import load_config
from ros_vision_pipe.engine.errors import EngineError, InputError, PipelineClosedError
from ros_vision_pipe.engine.model import SessionFactory
from ros_vision_pipe.engine.pipeline import Pipeline
from ros_vision_pipe.engine.records import FrameResult, ModelSpec
from ros_vision_pipe.engine.remote.factory import default_session_factory
from ros_vision_pipe.engine.session import InferenceSession
from ros_vision_pipe.image_encoding import DecodedImage, ImageDecodeError, decode_compressed, decode_raw
from ros_vision_pipe.msg import FusedResult, ModelResult
from ros_vision_pipe.result_mapping import RCLPY_FACTORY, STATUS_CODES, frame_messages
from ros_vision_pipe.ros.diagnostics import DiagnosticsCollector
from ros_vision_pipe.ros.executors import MultiThreadedExecutor
from ros_vision_pipe.ros.params import NodeConfig, NodeConfigError, declare_parameters, resolve_config_file
from ros_vision_pipe.ros.qos_events import QosEventReporter, SilentInputs
from ros_vision_pipe.ros.task_runner import CallbackGroupTaskRunner
from ros_vision_pipe.vision_msgs_mapping import DETECTION2D_ARRAY, detection2d_array_fields, fill_vision

NODE_NAME = "vision_pipeline"
#: Seconds between two warnings about bad input on one topic.
WARN_PERIOD_S = 5.0
#: Seconds ``close`` waits for the frame in progress.
JOIN_TIMEOUT_S = 10.0
_RESULT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
_DIAGNOSTICS_QOS = QoSProfile(depth=10)
#: Seconds between two looks at the inputs' matched publishers (silent-input warning).
WATCH_PERIOD_S = 0.5
#: The shipped Fast DDS profile (16 MiB shared-memory segment; docs/ros.md "Camera-size images").
LARGE_DATA_PROFILE = "config/fastdds_large_data.xml"
STATUS_BY_CODE = {code: status for status, code in STATUS_CODES.items()}


def node_session_factory(spec: ModelSpec, intra_op_threads: int, allow_spinning: bool) -> InferenceSession:
    """The node's ``SessionFactory``: ONNX Runtime sessions whose threads never spin (or a KServe server).

    Spinning intra-op threads keep a core busy for a while after every inference; in a node they
    take it from DDS, the executor and the other nodes of the robot (on the 2-core reference
    machine: twice the CPU per frame, and about 1.5 ms more latency; docs/performance.md).
    """
    return default_session_factory(spec, intra_op_threads, False)


def _seconds(header: Header) -> float:
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


def _load_pipeline(path: Any, session_factory: SessionFactory, runner: CallbackGroupTaskRunner) -> Pipeline:
    """``Pipeline.from_config`` with each model's inferences in its own callback group."""
    return Pipeline.from_config(path, session_factory=session_factory, task_runner=runner)


class PipelineNode(Node):
    """Runs a pipeline configuration on image topics and publishes its results.

    Args:
        node_name: Node name (``vision_pipeline``).
        context: rclpy context (tests give each node its own).
        parameter_overrides: Parameters instead of / on top of the command line's.
        session_factory: Builds each model's session (``node_session_factory``: real ONNX Runtime,
            no spinning; tests inject slow ones).
        **kwargs: Passed to ``rclpy.node.Node`` (``namespace``, ``cli_args``...).

    Raises:
        NodeConfigError: A parameter is invalid.
        EngineError: The pipeline configuration failed to load (ConfigError, ModelLoadError, ScriptError).
    """

    def __init__(self, node_name: str = NODE_NAME, *, context: Context | None = None,
                 parameter_overrides: Sequence[Parameter[Any]] | None = None,
                 session_factory: SessionFactory = node_session_factory, **kwargs: Any) -> None:
        """Declare parameters, load the pipeline, create subscriptions, publishers and the timer."""
        super().__init__(node_name, context=context, parameter_overrides=list(parameter_overrides or []), **kwargs)
        self._closing = False
        self._lock = threading.Lock()
        self._last_warning: dict[str, float] = {}
        self._result_thread: threading.Thread | None = None
        try:
            self._build(node_name, session_factory)
        except BaseException:
            self.destroy_node()
            raise
        self.get_logger().info(
            f"pipeline {str(self.config.config_file)!r} ({self.spec.mode.value}: "
            f"{', '.join(self.model_names)}) on {list(self.config.image_topics)}")

    def _build(self, node_name: str, session_factory: SessionFactory) -> None:
        self.config: NodeConfig = declare_parameters(self)
        self.model_names = tuple(m.name for m in load_config(self.config.config_file).spec.models)
        self.task_runner = CallbackGroupTaskRunner(self, self.model_names)
        self.pipeline: Pipeline = _load_pipeline(self.config.config_file, session_factory, self.task_runner)
        self.spec = self.pipeline.spec
        self.diagnostics = DiagnosticsCollector(
            self.get_fully_qualified_name(), self.config.config_file.name, self.model_names, self.config.image_topics)
        self.qos_events = QosEventReporter(self)  # one warning per incompatible peer, topic and policy
        self.model_publishers = {
            name: self._publisher(ModelResult, self.config.output_topic(name, "result"), _RESULT_QOS)
            for name in self.model_names
        }
        self.fused_publisher = (
            self._publisher(FusedResult, self.config.output_topic("fused"), _RESULT_QOS)
            if self.config.publish_fused else None
        )
        self.detection_publishers = self._vision_msgs_publishers() if self.config.vision_msgs else {}
        self.diagnostics_publisher = self._publisher(DiagnosticArray, "/diagnostics", _DIAGNOSTICS_QOS)
        # intake group: decode + enqueue only (never waits for a model); one image at a time.
        self.intake_group = MutuallyExclusiveCallbackGroup()
        self.input_qos = qos = self.config.input_qos()
        self.silent_inputs = SilentInputs(self.config.image_topics, self.config.silent_input_s)
        self.image_subscriptions: dict[str, Any] = {}
        for topic in self.config.image_topics:
            compressed = self.config.is_compressed(topic)
            self.image_subscriptions[topic] = self.create_subscription(
                CompressedImage if compressed else Image, topic,
                (lambda m, t=topic: self._on_compressed(m, t)) if compressed
                else (lambda m, t=topic: self._on_image(m, t)),
                qos, callback_group=self.intake_group, event_callbacks=self.qos_events.subscription(
                    topic, qos, message_lost=lambda info, t=topic: self.silent_inputs.lost(t, info.total_count)))
        # diagnostics group: reads counters and the graph only; in parallel with everything.
        self.diagnostics_group = MutuallyExclusiveCallbackGroup()
        self.create_timer(self.config.diagnostics_period, self._publish_diagnostics,
                          callback_group=self.diagnostics_group)
        self.create_timer(WATCH_PERIOD_S, self._watch_inputs, callback_group=self.diagnostics_group)
        self._result_thread = threading.Thread(target=self._result_loop, name=f"{node_name}-results")
        self._result_thread.start()

    def _publisher(self, message_type: Any, topic: str, qos: QoSProfile) -> Any:
        return self.create_publisher(message_type, topic, qos, event_callbacks=self.qos_events.publisher(topic, qos))

    def _vision_msgs_publishers(self) -> dict[str, Any]:
        """``<ns>/<model>/detections`` (vision_msgs/Detection2DArray) per model; NodeConfigError without vision_msgs."""
        try:
            from vision_msgs.msg import Detection2DArray
        except ImportError as error:
            raise NodeConfigError(
                "parameter 'vision_msgs.detections' is true but the vision_msgs package cannot be imported "
                f"({error}); install it (apt install ros-$ROS_DISTRO-vision-msgs, or rosdep install "
                "--from-paths <this package>) or set vision_msgs.detections:=false") from error
        return {name: self._publisher(Detection2DArray, self.config.output_topic(name, "detections"), _RESULT_QOS)
                for name in self.model_names}

    @property
    def executor_threads(self) -> int:
        """Threads the executor needs: one per model, intake, diagnostics, parameters."""
        return len(self.model_names) + 3

    # -- intake (intake group) -----------------------------------------------------------

    def _on_image(self, msg: Image, topic: str) -> None:
        self.silent_inputs.frame(topic, len(msg.data))
        image_format = self.config.image_format(topic)
        self._intake(topic, msg.header, lambda: decode_raw(
            msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data, image_format))

    def _on_compressed(self, msg: CompressedImage, topic: str) -> None:
        self.silent_inputs.frame(topic, len(msg.data))
        self._intake(topic, msg.header, lambda: decode_compressed(msg.format, msg.data))

    def _intake(self, topic: str, header: Header, decode: Any) -> None:
        if self._closing:
            return
        self.diagnostics.received(topic)
        try:
            decoded: DecodedImage = decode()
        except ImageDecodeError as error:
            self._reject(topic, error)
            return
        try:  # never waits: a full pipeline refuses the frame (or drops its oldest, per the config)
            accepted = self.pipeline.submit(decoded.image, source=topic, encoding=decoded.encoding,
                                            timestamp=_seconds(header), stamp=header, timeout=0.0)
        except InputError as error:
            self._reject(topic, error)
            return
        except PipelineClosedError:
            return
        if not accepted:
            self.diagnostics.refused(topic)

    def _reject(self, topic: str, error: Exception) -> None:
        total = self.diagnostics.rejected(topic)
        now = time.monotonic()
        if now - self._last_warning.get(topic, -WARN_PERIOD_S) >= WARN_PERIOD_S:
            self._last_warning[topic] = now
            self.get_logger().warning(f"frame rejected on {topic!r}: {error} ({total} rejected so far)")

    # -- the result thread ---------------------------------------------------------------

    def _result_loop(self) -> None:
        """Collect results in submission order and publish them until ``close``."""
        while not self._closing:
            try:
                result = self.pipeline.wait_result(timeout=None)
            except PipelineClosedError:
                return
            if result is None or self._closing:
                continue
            if result.dropped:  # dropped before its main model ran: nothing to publish, counted
                continue
            if result.error:
                self.get_logger().error(f"frame {result.frame_id} of {result.source!r} failed: {result.error}",
                                        throttle_duration_sec=WARN_PERIOD_S)
            try:
                self.publish_result(result, result.stamp)
            except Exception as error:  # publishing must not end the stream; the context may be gone
                if self._closing:
                    return
                self.get_logger().error(f"cannot publish frame {result.frame_id}: {type(error).__name__}: {error}",
                                        throttle_duration_sec=WARN_PERIOD_S)

    def publish_result(self, result: FrameResult, header: Header) -> None:
        """Publish one frame's ``ModelResult``s and ``FusedResult`` (with the input's header)."""
        messages = frame_messages(result, RCLPY_FACTORY, header=header, models=self.model_names)
        for name, message in messages.models.items():
            self.model_publishers[name].publish(message)
        if self.fused_publisher is not None:
            self.fused_publisher.publish(messages.fused)
        for name, publisher in self.detection_publishers.items():
            publisher.publish(_detection2d_array(messages.models[name]))
        for name, message in messages.models.items():
            self.diagnostics.record(name, STATUS_BY_CODE[message.status], message.latency_ms)

    # -- diagnostics (diagnostics group) -------------------------------------------------

    def _watch_inputs(self) -> None:
        """Warn once per input when it has a matched publisher but no (or mostly lost) frames (docs/ros.md)."""
        if self._closing:
            return
        for topic, subscription in self.image_subscriptions.items():
            publishers = subscription.get_publisher_count()
            silent = self.silent_inputs.check(topic, publishers)
            self.diagnostics.matched(topic, publishers, self.silent_inputs.silent_for(topic, publishers),
                                     self.silent_inputs.counts(topic)[1])
            if silent is not None:
                self.get_logger().warning(self.silent_inputs.message(self, topic, self.input_qos, silent))

    def _publish_diagnostics(self) -> None:
        if self._closing:
            return
        self.diagnostics.engine(self.pipeline.stats())
        stamp = self.get_clock().now().to_msg()
        self.diagnostics_publisher.publish(self.diagnostics.build(stamp, self.task_runner.pending))

    # -- shutdown ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop taking frames, close the pipeline (frames in flight are abandoned), join the result thread.

        Idempotent. Call it before the executor stops, so that a model task already running can end.
        """
        with self._lock:
            if self._closing:
                return
            self._closing = True
        runner = getattr(self, "task_runner", None)
        if runner is not None:
            runner.close()  # queued model tasks are cancelled
        pipeline = getattr(self, "pipeline", None)
        if pipeline is not None:
            pipeline.close()  # wakes the result thread (PipelineClosedError)
        if self._result_thread is not None:
            self._result_thread.join(timeout=JOIN_TIMEOUT_S)
            if self._result_thread.is_alive():
                self.get_logger().warning(f"result thread still busy after {JOIN_TIMEOUT_S} s")

    def destroy_node(self) -> None:
        """``close`` and destroy the node's entities."""
        self.close()
        super().destroy_node()


def _detection2d_array(message: ModelResult) -> Any:
    """A ``vision_msgs/Detection2DArray`` of one ``ModelResult`` (vision_msgs_mapping.py)."""
    fields = detection2d_array_fields({"header": message.header, "detections": [
        {"x_min": d.x_min, "y_min": d.y_min, "x_max": d.x_max, "y_max": d.y_max, "score": d.score,
         "class_id": d.class_id, "label": d.label} for d in message.detections]})
    return fill_vision(RCLPY_FACTORY, DETECTION2D_ARRAY, fields)


def use_large_data_profile(environ: dict[str, str] | Any = os.environ) -> str | None:
    """Point Fast DDS at the shipped large-data profile unless the user configured Fast DDS already.

    Fast DDS reads ``FASTDDS_DEFAULT_PROFILES_FILE`` when the participant is created (``rclpy.init``),
    so this runs first. Left alone when either profiles variable or ``FASTDDS_BUILTIN_TRANSPORTS`` is
    in the environment (even empty: ``dds_profile:=''`` of the launch file), or when another RMW is
    selected. Returns the path set, or None.
    """
    if environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return None
    if any(name in environ for name in ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE",
                                        "FASTDDS_BUILTIN_TRANSPORTS")):
        return None
    path = resolve_config_file(LARGE_DATA_PROFILE)
    if not path.is_file():
        return None
    environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    return str(path)


class _ShutdownSignals:
    """The Python-level SIGINT/SIGTERM handler of ``main()``, installed before ``rclpy.init``.

    rclpy's own handler shuts the context down (``spin`` returns) and then calls this one. While
    the node is being built, the first signal raises ``KeyboardInterrupt`` (nothing spins yet);
    every other signal is ignored, so a second Ctrl-C (``ros2 launch`` forwards one) or a SIGTERM
    during the cleanup cannot interrupt ``close``/``destroy_node``.
    """

    def __init__(self) -> None:
        """Install for SIGINT and SIGTERM."""
        self.loading = True
        self.received = 0
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, self)

    def ignore(self) -> None:
        """Ignore SIGINT/SIGTERM from now on (the cleanup is done; the interpreter exits)."""
        self.loading = False
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)

    def __call__(self, number: int, frame: Any) -> None:
        """Count the signal; raise only for the first one while loading."""
        self.received += 1
        if self.loading and self.received == 1:
            raise KeyboardInterrupt


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run ros_vision_pipe pipeline_node``; returns the exit status.

    Any number of SIGINT/SIGTERM during start-up, spinning or shutdown ends it with status 0 and
    everything closed (the pipeline, its threads, the node, the executor, the context).
    """
    use_large_data_profile()
    signals = _ShutdownSignals()
    try:
        with rclpy.init(args=args):
            try:
                node = PipelineNode()
            except (EngineError, NodeConfigError) as error:
                rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {type(error).__name__}: {error}")
                return 1
            except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C while the models load
                return 0
            finally:
                signals.loading = False
            executor = MultiThreadedExecutor(num_threads=node.executor_threads)
            executor.add_node(node)
            try:
                executor.spin()
            except (KeyboardInterrupt, ExternalShutdownException):
                pass
            except _rclpy.RCLError:  # a signal shut the context down while the executor built its wait set
                if rclpy.ok():
                    raise
            finally:
                node.close()  # before the executor stops: a running model task can still end
                executor.shutdown()
                node.destroy_node()
            if signals.received:
                rclpy.logging.get_logger(NODE_NAME).info(f"stopped cleanly ({signals.received} signal(s))")
    finally:
        # Python restores SIG_DFL for its own handlers when the interpreter exits: a signal arriving
        # then (threads joining, modules freed) would kill the process. Ignored ones stay ignored.
        signals.ignore()
    return 0


if __name__ == "__main__":
    sys.exit(main())
