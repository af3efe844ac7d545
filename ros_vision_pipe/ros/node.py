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
from ros_vision_pipe.ros.params import NodeConfig, NodeConfigError, declare_parameters
from ros_vision_pipe.ros.task_runner import CallbackGroupTaskRunner

NODE_NAME = "vision_pipeline"
#: Seconds between two warnings about bad input on one topic.
WARN_PERIOD_S = 5.0
#: Seconds ``close`` waits for the frame in progress.
JOIN_TIMEOUT_S = 10.0
_RESULT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
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
        self.model_publishers = {
            name: self.create_publisher(ModelResult, self.config.output_topic(name, "result"), _RESULT_QOS)
            for name in self.model_names
        }
        self.fused_publisher = (
            self.create_publisher(FusedResult, self.config.output_topic("fused"), _RESULT_QOS)
            if self.config.publish_fused else None
        )
        self.diagnostics_publisher = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # intake group: decode + enqueue only (never waits for a model); one image at a time.
        self.intake_group = MutuallyExclusiveCallbackGroup()
        qos = self.config.input_qos()
        for topic in self.config.image_topics:
            if self.config.is_compressed(topic):
                self.create_subscription(CompressedImage, topic, lambda m, t=topic: self._on_compressed(m, t),
                                         qos, callback_group=self.intake_group)
            else:
                self.create_subscription(Image, topic, lambda m, t=topic: self._on_image(m, t),
                                         qos, callback_group=self.intake_group)
        # diagnostics group: reads counters only; in parallel with everything.
        self.diagnostics_group = MutuallyExclusiveCallbackGroup()
        self.create_timer(self.config.diagnostics_period, self._publish_diagnostics,
                          callback_group=self.diagnostics_group)
        self._result_thread = threading.Thread(target=self._result_loop, name=f"{node_name}-results")
        self._result_thread.start()

    @property
    def executor_threads(self) -> int:
        """Threads the executor needs: one per model, intake, diagnostics, parameters."""
        return len(self.model_names) + 3

    # -- intake (intake group) -----------------------------------------------------------

    def _on_image(self, msg: Image, topic: str) -> None:
        self._intake(topic, msg.header, lambda: decode_raw(
            msg.height, msg.width, msg.encoding, msg.is_bigendian, msg.step, msg.data))

    def _on_compressed(self, msg: CompressedImage, topic: str) -> None:
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
        for name, message in messages.models.items():
            self.diagnostics.record(name, STATUS_BY_CODE[message.status], message.latency_ms)

    # -- diagnostics (diagnostics group) -------------------------------------------------

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


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run ros_vision_pipe pipeline_node``; returns the exit status."""
    with rclpy.init(args=args):
        try:
            node = PipelineNode()
        except (EngineError, NodeConfigError) as error:
            rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {type(error).__name__}: {error}")
            return 1
        except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C while the models load
            return 0
        executor = MultiThreadedExecutor(num_threads=node.executor_threads)
        executor.add_node(node)
        try:
            executor.spin()
        except (KeyboardInterrupt, ExternalShutdownException):
            pass
        finally:
            node.close()  # before the executor stops: a running model task can still end
            executor.shutdown()
            node.destroy_node()
    return 0


if __name__ == "__main__":
    sys.exit(main())
