"""Publishing a frame's results, in the thread that ends the frame (``pipeline.on_ready``).

``ResultPublishing`` is mixed into ``PipelineNodeCore``: results go out in submission order, one
thread at a time, and a message is built only for a topic someone subscribes to, the models'
results first (docs/ros.md, "Threads"). ``FrameStamp`` is what travels with a frame from intake to
here: the input header, and the image for the debug overlay.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from std_msgs.msg import Header

from ros_vision_pipe.engine.errors import PipelineClosedError
from ros_vision_pipe.engine.generations import Generation, SwappablePipeline
from ros_vision_pipe.engine.records import FrameResult
from ros_vision_pipe.engine.reload import PipelineBuilder
from ros_vision_pipe.messages.result_mapping import RCLPY_FACTORY, frame_messages
from ros_vision_pipe.messages.vision_msgs_mapping import DETECTION2D_ARRAY, detection2d_array_fields, fill_vision
from ros_vision_pipe.msg import ModelResult
from ros_vision_pipe.ros.debug_image import DebugImage

#: Seconds between two warnings about bad input on one topic, or log lines about one failure to publish.
WARN_PERIOD_S = 5.0


class FrameStamp(NamedTuple):
    """What travels with a frame through the pipeline (``stamp``): the header, and the image for drawing."""

    header: Header
    image: Any
    encoding: str


def _detection2d_array(message: ModelResult) -> Any:
    """A ``vision_msgs/Detection2DArray`` of one ``ModelResult`` (vision_msgs_mapping.py)."""
    fields = detection2d_array_fields({"header": message.header, "detections": [
        {"x_min": d.x_min, "y_min": d.y_min, "x_max": d.x_max, "y_max": d.y_max, "score": d.score,
         "class_id": d.class_id, "label": d.label} for d in message.detections]})
    return fill_vision(RCLPY_FACTORY, DETECTION2D_ARRAY, fields)


class ResultPublishing:
    """Publishing on ``pipeline.on_ready``; the attributes below are set by ``PipelineNodeCore``."""

    pipeline: SwappablePipeline | None
    builder: PipelineBuilder
    model_publishers: dict[str, Any]
    detection_publishers: dict[str, Any]
    fused_publisher: Any
    debug_image: DebugImage | None
    _closing: bool
    _publish_lock: threading.Lock
    #: Results taken from the pipeline, and those whose publishing ended (``_deactivate`` drains).
    _results_collected = 0
    _results_handled = 0

    if TYPE_CHECKING:  # provided by the rclpy Node this is mixed into
        def get_logger(self) -> Any: ...

    def _publish_ready(self) -> None:
        """Publish every result ready, in submission order: ``pipeline.on_ready``, in the thread that
        ended a frame (intake, or a model's executor thread); one thread publishes at a time."""
        pipeline = self.pipeline
        if pipeline is None or self._closing:
            return
        with self._publish_lock:
            try:
                while (collected := pipeline.try_get_result()) is not None:
                    self._handle_result(collected)
            except PipelineClosedError:
                return

    def _handle_result(self, collected: tuple[Generation, FrameResult]) -> None:
        """Publish one collected result (a failed frame is logged, a dropped one only counted)."""
        if self._closing:
            return
        self._results_collected += 1
        generation, result = collected
        try:
            if result.dropped:  # dropped before its main model ran: nothing to publish, counted
                return
            if result.error:
                self.get_logger().error(
                    f"frame {result.frame_id} of {result.source!r} failed: {result.error}",
                    throttle_duration_sec=WARN_PERIOD_S)
            self.publish_result(result, generation)
        except Exception as error:  # publishing must not end the stream; the context may be gone
            if self._closing:
                return
            self.get_logger().error(
                f"cannot publish frame {result.frame_id}: {type(error).__name__}: {error}",
                throttle_duration_sec=WARN_PERIOD_S)
        finally:
            self._results_handled += 1

    def publish_result(self, result: FrameResult, generation: Generation) -> None:
        """Publish one frame's ``ModelResult``s, ``FusedResult`` and (when due) debug image.

        A message goes out (and is built) only on a topic someone subscribes to, the models'
        results first: they are what the subscribers wait for.
        """
        stamp = result.stamp
        header = stamp.header if isinstance(stamp, FrameStamp) else stamp
        result, reasons = self.builder.switches.apply(result)
        names = tuple(generation.pipeline.models)
        messages = frame_messages(result, RCLPY_FACTORY, header=header, models=names)
        number, digest = generation.number, generation.config_hash
        stamped: dict[str, Any] = {}

        def model_message(name: str) -> Any:
            message = stamped.get(name)
            if message is None:
                message = stamped[name] = messages.model(name)
                message.config_generation = number
                message.config_hash = digest
                if name in reasons:
                    message.skip_reason = reasons[name]
            return message

        for name in names:
            publisher = self.model_publishers[name]
            if publisher.get_subscription_count():
                publisher.publish(model_message(name))
        if self.fused_publisher is not None and self.fused_publisher.get_subscription_count():
            for name in names:  # stamped before they go into the fused message
                model_message(name)
            messages.fused.config_generation = number
            messages.fused.config_hash = digest
            self.fused_publisher.publish(messages.fused)
        for name in names:
            publisher = self.detection_publishers.get(name)
            if publisher is not None and publisher.get_subscription_count():
                publisher.publish(_detection2d_array(model_message(name)))
        debug = self.debug_image
        if debug is not None and isinstance(stamp, FrameStamp) and debug.due():
            debug.publish(stamp.image, stamp.encoding, header, [model_message(name) for name in names], result)
            if debug.overlay_error is not None:
                self.get_logger().error(f"debug_image.draw failed: {debug.overlay_error}",
                                        throttle_duration_sec=WARN_PERIOD_S)


__all__ = ["FrameStamp", "ResultPublishing"]
