"""The node's parameters: declared in one place, read once into a frozen, validated ``NodeConfig``.

Every parameter here is read-only except ``config_file`` (setting it reloads the pipeline,
ros/reload.py); the per-model switches ``models.<name>.*`` are declared once the configuration is
loaded (ros/runtime_params.py). Set them with ``--ros-args -p name:=value`` or a params YAML
(``config/pipeline.yaml``).
How many frames may wait for the models, and what happens beyond that, is the pipeline
configuration's ``max_pending_frames`` and ``submit_overflow`` (docs/ros.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from ros_vision_pipe.messages.image_encoding import ImageFormat

PACKAGE = "ros_vision_pipe"
DEFAULT_CONFIG = "config/person_pose.lua"
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


class NodeConfigError(ValueError):
    """A parameter value is invalid (the message names the parameter and the value)."""


@dataclass(frozen=True)
class NodeConfig:
    """The node's validated parameters.

    Attributes:
        config_file: Absolute path of the pipeline configuration (Lua).
        image_topics: Input topics; names ending in ``/compressed`` carry ``CompressedImage``.
        qos_reliable: Subscribe RELIABLE instead of the sensor-data BEST_EFFORT.
        qos_depth: History depth of the image subscriptions.
        output_namespace: Prefix of the output topics (``~`` = the node's private namespace).
        publish_fused: Whether ``<ns>/fused`` is published.
        diagnostics_period: Seconds between two ``/diagnostics`` messages.
        image_formats: What each input's images become (``ImageFormat``), one per ``image_topics`` entry.
        vision_msgs: Also publish each model's detections as ``vision_msgs/Detection2DArray``.
        silent_input_s: Seconds a matched input may stay without a frame before the node warns.
        watch_config: Reload when a file of the configuration's folder changes on disk.
        debug_image_rate: Most ``<ns>/debug_image`` messages per second (0 = no debug image).
        huge_pages: Collapse the process's densely used memory onto 2 MiB pages once the models have
            settled (huge_pages.py).
        replicas: A one-model pipeline runs frames that back up side by side on one-thread replicas
            of its session (engine/replicas.py).
    """

    config_file: Path
    image_topics: tuple[str, ...]
    qos_reliable: bool = False
    qos_depth: int = 5
    output_namespace: str = "~"
    publish_fused: bool = True
    diagnostics_period: float = 1.0
    image_formats: tuple[ImageFormat, ...] = ()
    vision_msgs: bool = False
    silent_input_s: float = 3.0
    watch_config: bool = False
    debug_image_rate: float = 5.0
    huge_pages: bool = True
    replicas: bool = True

    def image_format(self, topic: str) -> ImageFormat:
        """What ``topic``'s images become (``ImageFormat.EIGHT_BIT`` unless configured)."""
        formats = dict(zip(self.image_topics, self.image_formats, strict=False))
        return formats.get(topic, ImageFormat.EIGHT_BIT)

    def input_qos(self) -> QoSProfile:
        """QoS of the image subscriptions: sensor data (best effort) unless reliable is asked for."""
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.qos_depth,
            reliability=ReliabilityPolicy.RELIABLE if self.qos_reliable else qos_profile_sensor_data.reliability,
            durability=qos_profile_sensor_data.durability,
        )

    def output_topic(self, *parts: str) -> str:
        """``<output_namespace>/<parts...>``, e.g. ``~/person/result``."""
        return "/".join([self.output_namespace.rstrip("/") or "/", *parts]).replace("//", "/")

    @staticmethod
    def is_compressed(topic: str) -> bool:
        """True for ``.../compressed`` topics (image_transport's naming)."""
        return topic.rstrip("/").endswith("/compressed")


def _descriptor(description: str, *, integers: tuple[int, int] | None = None,
                floats: tuple[float, float] | None = None, constraints: str = "",
                read_only: bool = True) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(description=description, read_only=read_only,
                                     additional_constraints=constraints)
    if integers is not None:
        descriptor.integer_range = [IntegerRange(from_value=integers[0], to_value=integers[1], step=1)]
    if floats is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=floats[0], to_value=floats[1], step=0.0)]
    return descriptor


#: name -> (default value, descriptor). The only place parameters are declared.
PARAMETERS: dict[str, tuple[Any, ParameterDescriptor]] = {
    "config_file": (DEFAULT_CONFIG, _descriptor(
        "Pipeline configuration (Lua). A relative path is relative to the package "
        "(its share directory once installed, the source tree in development). Setting it at run time "
        "reloads the pipeline beside the running one and swaps it in (refused with the engine's error "
        "if it does not load; docs/ros.md \"Reload\").", read_only=False)),
    "image_topics": (["/camera/image_raw"], _descriptor(
        "Input image topics; all share one set of model sessions, each has its own frame counter.",
        constraints="non-empty, distinct; a name ending in /compressed subscribes sensor_msgs/CompressedImage")),
    "qos.reliable": (False, _descriptor(
        "Subscribe to images RELIABLE instead of the sensor-data BEST_EFFORT default.")),
    "qos.depth": (5, _descriptor("History depth of the image subscriptions.", integers=(1, 1000))),
    "output_namespace": ("~", _descriptor(
        "Namespace of the output topics <ns>/<model>/result and <ns>/fused; '~' is the node's own.",
        constraints="'~', '~/name', an absolute or a relative topic namespace")),
    "publish_fused": (True, _descriptor("Publish the FusedResult topic <ns>/fused.")),
    "diagnostics_period": (1.0, _descriptor(
        "Seconds between two diagnostic_msgs/DiagnosticArray on /diagnostics.", floats=(0.1, 60.0))),
    "image_format": (["8bit"], _descriptor(
        "What the images of each input become: '8bit' (uint8 rgb8/bgr8/mono8..., 16-bit scaled, yuv422 and "
        "bayer converted to bgr8) or 'native' (depth and other data keep their type: 32FC1 float32 metres, "
        "16UC1 uint16 millimetres unscaled, 8UC2, 16SC1, 64FC1...).",
        constraints="one entry for every input, or one per image_topics entry (same order)")),
    "vision_msgs.detections": (False, _descriptor(
        "Also publish each model's detections as vision_msgs/Detection2DArray on <ns>/<model>/detections "
        "(needs the vision_msgs package).")),
    "qos.silent_input_warning": (3.0, _descriptor(
        "Seconds an input may have a matched publisher but no frame before the node warns (once per input).",
        floats=(0.5, 600.0))),
    "watch_config": (False, _descriptor(
        "Reload the pipeline when a file of the configuration's folder (config, scripts, models) changes "
        "on disk (watchdog file-system events).")),
    "debug_image_rate": (5.0, _descriptor(
        "Most annotated <ns>/debug_image messages per second, drawn only while someone subscribes; "
        "0 = no debug image topic.", floats=(0.0, 120.0))),
    "huge_pages": (True, _descriptor(
        "Once the models have run 20 frames (and again after each reload), move the densely used memory "
        "of the node's process (model weights, ONNX Runtime's arena, Python's heap) onto 2 MiB pages "
        "(Linux 6.1+, madvise MADV_COLLAPSE): a 20 Hz frame's latency is then 4-7 % lower (docs/performance.md). "
        "Nothing is done where the kernel cannot (docs/ros.md \"Huge pages\").")),
    "replicas": (True, _descriptor(
        "A pipeline of one model (single mode) on 2+ cores: while frames back up (one arrives before the "
        "last result is out), run their inferences side by side on one-thread replicas of the model, built "
        "the first time (one per core, ~50 MB each for the person detector); the script's functions stay one at a "
        "time and in frame order. One frame at a time runs on the multi-threaded session as before. "
        "Read at start-up (docs/ros.md \"Frames that back up\").")),
}


def resolve_config_file(value: str) -> Path:
    """Absolute path of ``config_file``: relative paths are relative to the package root."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if (_SOURCE_ROOT / "package.xml").is_file():  # running from the source tree
        return (_SOURCE_ROOT / path).resolve()
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return (Path(get_package_share_directory(PACKAGE)) / path).resolve()
    except PackageNotFoundError:
        return path.resolve()


def _validate(values: dict[str, Any]) -> NodeConfig:
    topics = values["image_topics"]
    if not topics or any(not isinstance(t, str) or not t.strip() for t in topics):
        raise NodeConfigError(f"image_topics must be a non-empty list of topic names, got {topics!r}")
    duplicates = sorted({t for t in topics if list(topics).count(t) > 1})
    if duplicates:
        raise NodeConfigError(f"image_topics lists {duplicates!r} more than once")
    namespace = values["output_namespace"].strip()
    if not namespace or " " in namespace or (namespace.startswith("~") and namespace not in ("~",)
                                             and not namespace.startswith("~/")):
        raise NodeConfigError(f"output_namespace must be '~', '~/name' or a topic namespace, got {namespace!r}")
    if not str(values["config_file"]).strip():
        raise NodeConfigError("config_file must not be empty")
    names = list(values["image_format"])
    choices = [f.value for f in ImageFormat]
    if len(names) not in (1, len(topics)) or any(name not in choices for name in names):
        raise NodeConfigError(f"image_format must be one of {choices} for every input, or one per image_topics "
                              f"entry ({len(topics)}), got {names!r}")
    formats = tuple(ImageFormat(name) for name in (names * len(topics) if len(names) == 1 else names))
    return NodeConfig(
        config_file=resolve_config_file(values["config_file"]),
        image_topics=tuple(t.strip() for t in topics),
        qos_reliable=bool(values["qos.reliable"]),
        qos_depth=int(values["qos.depth"]),
        output_namespace=namespace,
        publish_fused=bool(values["publish_fused"]),
        diagnostics_period=float(values["diagnostics_period"]),
        image_formats=formats,
        vision_msgs=bool(values["vision_msgs.detections"]),
        silent_input_s=float(values["qos.silent_input_warning"]),
        watch_config=bool(values["watch_config"]),
        debug_image_rate=float(values["debug_image_rate"]),
        huge_pages=bool(values["huge_pages"]),
        replicas=bool(values["replicas"]),
    )


def declare_parameters(node: Node) -> NodeConfig:
    """Declare every parameter of ``PARAMETERS`` on ``node`` and read them into a ``NodeConfig``.

    Raises:
        NodeConfigError: A value is of the wrong type, out of its range, or invalid.
    """
    values: dict[str, Any] = {}
    for name, (default, descriptor) in PARAMETERS.items():
        try:
            values[name] = node.declare_parameter(name, default, descriptor).value
        except (ParameterException, TypeError, ValueError) as error:
            raise NodeConfigError(f"parameter {name!r}: {error}") from error
    return _validate(values)


__all__ = ["DEFAULT_CONFIG", "PARAMETERS", "NodeConfig", "NodeConfigError", "declare_parameters",
           "resolve_config_file"]
