"""Launch the ros_vision_pipe pipeline node.

Arguments (``ros2 launch ros_vision_pipe pipeline.launch.py --show-args``):
  config_file    pipeline configuration (Lua); default: the package's config/person_pose.lua
  image_topics   input topics as a YAML list, e.g. "[/cam_left/image_raw, /cam_right/image_raw/compressed]"
  params_file    node parameters (QoS, output namespace, ...); default: the package's config/pipeline.yaml
  namespace      namespace of the node (and of its ~/ output topics)
  dds_profile    Fast DDS XML profile of the node's process (FASTDDS_DEFAULT_PROFILES_FILE); default:
                 the package's config/fastdds_large_data.xml (16 MiB shared memory: camera-size
                 images on one machine, docs/ros.md); "" = Fast DDS's built-in defaults.
                 The CAMERA's process must load the profile too (export the same variable there).
  lifecycle      "true": run the managed (lifecycle) node instead, unconfigured until
                 ``ros2 lifecycle set <node> configure`` then ``activate`` (docs/ros.md "Lifecycle").

Example::

    ros2 launch ros_vision_pipe pipeline.launch.py image_topics:="[/camera/image_raw]" namespace:=robot1
"""

from typing import List  # noqa: UP035 (the list type launch documents for ParameterValue value_type)

from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription


def generate_launch_description() -> LaunchDescription:
    """Declare the arguments and the node; nothing runs until the description is launched."""
    share = FindPackageShare("ros_vision_pipe")
    arguments = [
        DeclareLaunchArgument(
            "config_file",
            default_value=PathJoinSubstitution([share, "config", "person_pose.lua"]),
            description="Pipeline configuration file (Lua).",
        ),
        DeclareLaunchArgument(
            "image_topics",
            default_value="[/camera/image_raw]",
            description="Input image topics, a YAML list; names ending in /compressed carry CompressedImage.",
        ),
        DeclareLaunchArgument(
            "params_file",
            default_value=PathJoinSubstitution([share, "config", "pipeline.yaml"]),
            description="Parameters YAML of the node (QoS, output namespace, fused topic, diagnostics).",
        ),
        DeclareLaunchArgument(
            "namespace",
            default_value="",
            description="Namespace of the node and its outputs (<namespace>/vision_pipeline/...).",
        ),
        DeclareLaunchArgument(
            "dds_profile",
            default_value=PathJoinSubstitution([share, "config", "fastdds_large_data.xml"]),
            description="Fast DDS XML profile of the node (FASTDDS_DEFAULT_PROFILES_FILE); '' = Fast DDS defaults. "
                        "The camera's process needs it too for camera-size images (docs/ros.md).",
        ),
        DeclareLaunchArgument(
            "lifecycle",
            default_value="false",
            choices=["true", "false"],
            description="Run the managed (lifecycle) node: configure/activate/deactivate/cleanup through "
                        "ros2 lifecycle set (docs/ros.md).",
        ),
    ]
    common = {
        "package": "ros_vision_pipe",
        "executable": "pipeline_node",
        "name": "vision_pipeline",
        "namespace": LaunchConfiguration("namespace"),
        "parameters": [
            LaunchConfiguration("params_file"),
            {
                "config_file": ParameterValue(LaunchConfiguration("config_file"), value_type=str),
                "image_topics": ParameterValue(
                    LaunchConfiguration("image_topics"), value_type=List[str]),  # noqa: UP006
            },
        ],
        "output": "screen",
        "emulate_tty": True,
        # Fast DDS reads the profile when the node's participant is created.
        "additional_env": {"FASTDDS_DEFAULT_PROFILES_FILE": LaunchConfiguration("dds_profile")},
    }
    plain = Node(**common, condition=UnlessCondition(LaunchConfiguration("lifecycle")))
    managed = LifecycleNode(**common, arguments=["--lifecycle"],
                            condition=IfCondition(LaunchConfiguration("lifecycle")))
    return LaunchDescription([*arguments, plain, managed])
