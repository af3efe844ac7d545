"""The node's parameters: declared with descriptors, read once into a validated NodeConfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import rclpy
from rclpy.parameter import Parameter
from rclpy.qos import ReliabilityPolicy
from ros_support import REPO

from ros_vision_pipe.ros.params import PARAMETERS, NodeConfig, NodeConfigError, declare_parameters


def declare(context, **overrides) -> tuple[NodeConfig, rclpy.node.Node]:
    params = [Parameter(name.replace("__", "."), value=value) for name, value in overrides.items()]
    node = rclpy.create_node("params_test", context=context, parameter_overrides=params)
    try:
        return declare_parameters(node), node
    except BaseException:
        node.destroy_node()
        raise


def test_defaults_give_the_person_pose_config_and_sensor_data_qos(context) -> None:
    config, node = declare(context)
    try:
        assert config.config_file == REPO / "config" / "person_pose.lua"
        assert config.image_topics == ("/camera/image_raw",)
        qos = config.input_qos()
        assert qos.reliability == ReliabilityPolicy.BEST_EFFORT and qos.depth == 5
        assert (config.output_topic("person", "result"), config.output_topic("fused")) == (
            "~/person/result", "~/fused")
        assert config.publish_fused and config.diagnostics_period == 1.0
    finally:
        node.destroy_node()


def test_every_parameter_is_described_and_read_only_but_config_file(context) -> None:
    _, node = declare(context)
    try:
        for name in PARAMETERS:
            descriptor = node.describe_parameter(name)
            assert descriptor.read_only is (name != "config_file") and descriptor.description, name
        assert node.describe_parameter("qos.depth").integer_range[0].to_value == 1000
        result = node.set_parameters([Parameter("publish_fused", value=False)])[0]
        assert not result.successful and "read-only" in result.reason
    finally:
        node.destroy_node()


def test_overrides_are_validated_into_the_config(context, tmp_path: Path) -> None:
    config, node = declare(context, config_file=str(tmp_path / "p.lua"), image_topics=["/a/image", "/b/compressed"],
                           qos__reliable=True, qos__depth=3, output_namespace="/robot1/vision",
                           publish_fused=False)
    node.destroy_node()
    assert config.config_file == tmp_path / "p.lua"
    assert config.input_qos().reliability == ReliabilityPolicy.RELIABLE and config.qos_depth == 3
    assert [config.is_compressed(t) for t in config.image_topics] == [False, True]
    assert config.output_topic("det", "result") == "/robot1/vision/det/result"
    assert not config.publish_fused


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"qos__depth": 0}, r"parameter 'qos.depth'"),
        ({"diagnostics_period": 100.0}, r"parameter 'diagnostics_period'"),
        ({"publish_fused": "yes"}, r"parameter 'publish_fused'"),
        ({"image_topics": ["/a", "/a"]}, r"image_topics lists \['/a'\] more than once"),
        ({"image_topics": [""]}, r"image_topics must be a non-empty list of topic names, got \[''\]"),
        ({"output_namespace": "~robot"}, r"output_namespace must be '~', '~/name' or a topic namespace, "
                                         r"got '~robot'"),
        ({"config_file": " "}, r"config_file must not be empty"),
    ],
)
def test_invalid_values_are_rejected_naming_the_parameter(context, overrides, match) -> None:
    with pytest.raises(NodeConfigError, match=match):
        declare(context, **overrides)


def test_the_shipped_params_yaml_matches_the_declared_parameters(context, tmp_path: Path) -> None:
    shipped = REPO / "config" / "pipeline.yaml"
    changed = tmp_path / "pipeline.yaml"
    changed.write_text(shipped.read_text().replace("depth: 5", "depth: 7"), encoding="utf-8")
    for path, depth in ((shipped, 5), (changed, 7)):
        node = rclpy.create_node("vision_pipeline", namespace="robot1", context=context,
                                 cli_args=["--ros-args", "--params-file", str(path)])
        try:
            config = declare_parameters(node)
            overridden = set(node.get_parameters_by_prefix("qos"))
        finally:
            node.destroy_node()
        assert config.qos_depth == depth and overridden == {"reliable", "depth", "silent_input_warning"}
        assert (config.output_namespace, config.publish_fused, config.diagnostics_period) == ("~", True, 1.0)


def test_image_format_is_one_for_every_input_or_one_per_input(context) -> None:
    from ros_vision_pipe.image_encoding import ImageFormat

    topics = ["/color/image_raw", "/depth/image_raw"]
    config, node = declare(context, image_topics=topics, image_format=["8bit", "native"])
    node.destroy_node()
    assert config.image_format("/depth/image_raw") is ImageFormat.NATIVE
    assert config.image_format("/color/image_raw") is ImageFormat.EIGHT_BIT
    config, node = declare(context, image_topics=topics, image_format=["native"])
    node.destroy_node()
    assert config.image_formats == (ImageFormat.NATIVE,) * 2
    with pytest.raises(NodeConfigError, match=r"image_format must be one of \['8bit', 'native'\] for every input, "
                                              r"or one per image_topics entry \(2\), got \['raw'\]"):
        declare(context, image_topics=topics, image_format=["raw"])
