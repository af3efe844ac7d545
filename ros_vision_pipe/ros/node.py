"""The ROS 2 node: camera topics in, one ``ModelResult`` per model and a ``FusedResult`` out.

A thin adapter around the engine's ``Pipeline``: parameters -> ``NodeConfig`` (params.py),
``sensor_msgs/Image``/``CompressedImage`` -> ndarray (``image_encoding``), ``FrameResult`` ->
messages (``result_mapping``), and the callback groups below.

Callback groups and threads, and what may run in parallel (a ``MultiThreadedExecutor`` with
``executor_threads`` threads, the node's intake thread, plus the engine's own threads; spin the node
in ``ros_vision_pipe.ros.executors.MultiThreadedExecutor``: rclpy's own busy-loops and starves
these threads, see executors.py):

=====================  ============================================  =============================
group / thread         runs                                          in parallel with
=====================  ============================================  =============================
the intake thread      waits on the image subscriptions alone        all others; never itself
(intake_loop.py; the   (and their QoS event handlers), takes each
subscriptions are in   message serialized, reads it in place,
an ``IntakeGroup``     decodes, ``pipeline.submit``; then the first
that no executor       model runs the frame right here when it is
runs)                  free and its last task took at most 50 ms
                       (``task_runner.here``); otherwise the frame
                       goes to the model's group and intake goes on
one group per model    that model's tasks (task_runner.py): on a     other models, intake, params
                       pool thread, or in the intake thread above
                       (the group is taken all the same)
``diagnostics`` group  the /diagnostics timer (reads counters)       all others
default group          parameter services (rclpy creates them),          all others
                       ``models.*`` switches, ``config_file`` reload
``reload`` group       the ``~/reload`` service: load beside, warm    all others (the warm-up frame
                       up, swap (node_core.py, reload.py)             runs in the model groups)
publishing             the thread that ends a frame publishes every  results one at a time, in
(no thread of its own) result ready, in submission order             submission order
                       (``pipeline.on_ready``), to the topics that
                       have subscribers, the models' results first
=====================  ============================================  =============================

So a slow model blocks only its own group and the frames queued behind it: images keep arriving
(a full pipeline refuses new frames or drops the oldest, per the configuration's
``max_pending_frames`` and ``submit_overflow``; both are counted) and parameter calls are answered.
A quick one-model pipeline runs like a hand-written node, strictly one thing after another in one
thread, without giving up the model's callback group: on 2 cores, anything running beside an
inference slows it down (docs/performance.md, "Our node vs a hand-written rclpy node").
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.utilities import remove_ros_args

from ros_vision_pipe.engine.errors import EngineError
from ros_vision_pipe.engine.model import SessionFactory
from ros_vision_pipe.engine.remote.factory import default_session_factory
from ros_vision_pipe.ros.executors import MultiThreadedExecutor
from ros_vision_pipe.ros.node_core import WARN_PERIOD_S, PipelineNodeCore  # noqa: F401 (re-exported)
from ros_vision_pipe.ros.params import NodeConfigError, resolve_config_file

NODE_NAME = "vision_pipeline"
#: The shipped Fast DDS profile (16 MiB shared-memory segment; docs/ros.md "Camera-size images").
LARGE_DATA_PROFILE = "config/fastdds_large_data.xml"
#: Command-line flag (not a ROS argument) of ``main``: run the managed (lifecycle) node.
LIFECYCLE_FLAG = "--lifecycle"


#: The node's ``SessionFactory``: ONNX Runtime sessions (or a KServe server). The node's
#: ``PipelineBuilder`` says ``shares_cores`` and ``direct`` (``engine.runners.session_options``):
#: a one-model pipeline's session uses every core, with threads that spin (the next inference starts hot) as long
#: as other processes leave the cores free, and threads that never spin otherwise; multi-model
#: pipelines split the cores and never spin, since spinning threads would take a core from DDS,
#: the executor and the other nodes of the robot (docs/performance.md).
node_session_factory: SessionFactory = default_session_factory


class PipelineNode(PipelineNodeCore, Node):
    """Runs a pipeline configuration on image topics and publishes its results.

    Configured and active from construction (``node_core.py`` describes the steps; the managed
    variant is ``lifecycle_node.LifecyclePipelineNode``).

    Args:
        node_name: Node name (``vision_pipeline``).
        context: rclpy context (tests give each node its own).
        parameter_overrides: Parameters instead of / on top of the command line's.
        session_factory: Builds each model's session (``node_session_factory``: real ONNX Runtime;
            tests inject slow ones).
        **kwargs: Passed to ``rclpy.node.Node`` (``namespace``, ``cli_args``...).

    Raises:
        NodeConfigError: A parameter is invalid.
        EngineError: The pipeline configuration failed to load (ConfigError, ModelLoadError, ScriptError).
    """

    def __init__(self, node_name: str = NODE_NAME, *, context: Context | None = None,
                 parameter_overrides: Sequence[Parameter[Any]] | None = None,
                 session_factory: SessionFactory = node_session_factory, **kwargs: Any) -> None:
        """Declare parameters, load the pipeline, create subscriptions, publishers and the timers."""
        super().__init__(node_name, context=context, parameter_overrides=list(parameter_overrides or []), **kwargs)
        self._init_core(node_name, session_factory)
        try:
            self._configure()
            self._activate()
        except BaseException:
            self.destroy_node()
            raise
        self.get_logger().info(
            f"pipeline {str(self.config.config_file)!r} ({self.spec.mode.value}: "
            f"{', '.join(self.model_names)}) on {list(self.config.image_topics)}")

    def destroy_node(self) -> None:
        """``close`` and destroy the node's entities."""
        self.close()
        super().destroy_node()


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


def make_node(argv: Sequence[str]) -> PipelineNodeCore:
    """The node ``main`` runs: ``LifecyclePipelineNode`` when ``argv`` holds ``--lifecycle``."""
    if LIFECYCLE_FLAG in argv:
        from ros_vision_pipe.ros.lifecycle_node import LifecyclePipelineNode

        return LifecyclePipelineNode()
    return PipelineNode()


def main(args: list[str] | None = None) -> int:
    """Entry point of ``ros2 run ros_vision_pipe pipeline_node [--lifecycle]``; returns the exit status.

    With ``--lifecycle`` the node is the managed ``LifecyclePipelineNode`` (unconfigured until a
    ``configure`` transition); plain ``PipelineNode`` otherwise.

    Any number of SIGINT/SIGTERM during start-up, spinning or shutdown ends it with status 0 and
    everything closed (the pipeline, its threads, the node, the executor, the context).
    """
    use_large_data_profile()
    signals = _ShutdownSignals()
    try:
        with rclpy.init(args=args):
            try:
                node = make_node(remove_ros_args(sys.argv if args is None else args))
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
