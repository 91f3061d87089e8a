"""Embedded ROS 2 names, remaps, --ros-args, params files, parameter types and DDS settings."""

import pytest

from kraby_rl.ros.embedded import network
from kraby_rl.ros.embedded.arguments import parse_arguments, remove_ros_args, RosArgumentError
from kraby_rl.ros.embedded.names import (dds_topic_name, expand_topic_name, InvalidNameError,
                                         remap_node, remap_topic, RemapRule)
from kraby_rl.ros.embedded.parameters import coerce, InvalidParameterTypeException, Parameter


@pytest.mark.parametrize("name,ns,expected", [
    ("joint_states", "/", "/joint_states"),
    ("joint_states", "/kraby", "/kraby/joint_states"),
    ("imu/data", "kraby", "/kraby/imu/data"),
    ("/abs/topic", "/kraby", "/abs/topic"),
    ("~/state", "/kraby", "/kraby/shield/state"),
    ("~", "/", "/shield"),
    ("{node}/diag", "/ns", "/ns/shield/diag"),
    ("{ns}/x", "/ns", "/ns/x"),
])
def test_topic_names_expand_like_rcl(name, ns, expected):
    assert expand_topic_name(name, "shield", ns) == expected
    assert dds_topic_name(expected) == "rt" + expected


@pytest.mark.parametrize("bad,why", [
    ("", "non-empty"), ("a//b", "'//'"), ("a/", "end with '/'"), ("1abc", "token '1abc'"),
    ("a b", "token 'a b'"), ("{foo}/x", "unknown substitution"), ("a/~", "'~' may only"),
])
def test_invalid_topic_names_are_refused_with_the_reason(bad, why):
    with pytest.raises(InvalidNameError, match=why):
        expand_topic_name(bad, "node", "/")


def test_remap_rules_match_expanded_names_and_node_prefixes():
    rules = [RemapRule("other:chatter:=ignored"), RemapRule("chatter:=talk"),
             RemapRule("/abs:=~/private"), RemapRule("__ns:=/robot"), RemapRule("__node:=renamed")]
    name, ns = remap_node(rules, "talker", "/")
    assert (name, ns) == ("renamed", "/robot")
    assert remap_topic(rules, "/robot/chatter", name, ns, "talker") == "/robot/talk"
    assert remap_topic(rules, "/abs", name, ns, "talker") == "/robot/renamed/private"
    assert remap_topic(rules, "/robot/other", name, ns, "talker") == "/robot/other"
    assert remap_topic([RemapRule("talker:chatter:=x")], "/chatter", "talker", "/") == "/x"
    with pytest.raises(InvalidNameError, match="expected 'from:=to'"):
        RemapRule("chatter=talk")
    with pytest.raises(InvalidNameError, match="unknown special name '__bogus'"):
        RemapRule("__bogus:=x")


def test_ros_args_sections_and_user_args():
    args = parse_arguments(["prog", "--flag", "--ros-args", "-r", "a:=b", "-p", "x:=1.5",
                            "--log-level", "debug", "--", "tail", "--ros-args", "-p", "y:=[1, 2]"])
    assert args.unparsed == ["prog", "--flag", "tail"]
    assert [r.text for r in args.remaps] == ["a:=b"]
    params = args.parameters_for("/any/node")
    assert params["x"].value == 1.5 and params["y"].value == [1, 2]
    assert args.log_levels == {"": "debug"}
    assert remove_ros_args(["p", "--ros-args", "-r", "a:=b"]) == ["p"]
    with pytest.raises(RosArgumentError, match="unknown option '--bogus'"):
        parse_arguments(["p", "--ros-args", "--bogus"])
    with pytest.raises(RosArgumentError, match="-p expects a value"):
        parse_arguments(["p", "--ros-args", "-p"])
    with pytest.raises(RosArgumentError, match="expected 'name:=value'"):
        parse_arguments(["p", "--ros-args", "-p", "x=1"])


def test_params_file_precedence_wildcards_and_nesting(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(
        "/kraby/shield:\n  ros__parameters:\n    rate_hz: 100.0\n    limits: {tilt: 0.3}\n"
        "/**:\n  ros__parameters:\n    rate_hz: 20.0\n    use_sim_time: true\n"
        "/kraby/*:\n  ros__parameters:\n    label: any_in_kraby\n")
    args = parse_arguments(["p", "--ros-args", "--params-file", str(path), "-p", "label:=cli"])
    shield = args.parameters_for("/kraby/shield")
    assert shield["rate_hz"].value == 100.0          # the exact section beats '/**'
    assert shield["limits.tilt"].value == 0.3
    assert shield["use_sim_time"].value is True
    assert shield["label"].value == "cli"             # -p beats any file
    other = args.parameters_for("/elsewhere/node")
    assert other["rate_hz"].value == 20.0 and "limits.tilt" not in other
    path.write_text("node:\n  rate_hz: 1\n")
    with pytest.raises(RosArgumentError, match=r"section 'node' must contain 'ros__parameters:'"):
        parse_arguments(["p", "--ros-args", "--params-file", str(path)])
    with pytest.raises(RosArgumentError, match="no such file"):
        parse_arguments(["p", "--ros-args", "--params-file", str(tmp_path / "missing.yaml")])


def test_parameter_types_are_checked_with_a_clear_error():
    assert coerce("rate_hz", Parameter.Type.DOUBLE, 50, "-p") == 50.0
    assert coerce("gains", Parameter.Type.DOUBLE_ARRAY, [1, 2.5], "-p") == [1.0, 2.5]
    assert coerce("names", Parameter.Type.STRING_ARRAY, [], "-p") == []
    with pytest.raises(InvalidParameterTypeException,
                       match=r"'rate_hz' is declared as DOUBLE but -p gives 'fast' \(STRING\)"):
        coerce("rate_hz", Parameter.Type.DOUBLE, "fast", "-p")
    with pytest.raises(InvalidParameterTypeException, match=r"declared as INTEGER .* 1\.5"):
        coerce("count", Parameter.Type.INTEGER, 1.5, "file.yaml")
    with pytest.raises(InvalidParameterTypeException, match=r"declared as BOOL"):
        coerce("flag", Parameter.Type.BOOL, 1, "-p")


def test_discovery_range_configures_cyclonedds_like_rmw():
    local = network.cyclonedds_config({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    assert '<NetworkInterface address="127.0.0.1"/>' in local
    assert "<AllowMulticast>false</AllowMulticast>" in local
    assert '<Peer address="localhost"/>' in local
    assert network.cyclonedds_config({"ROS_LOCALHOST_ONLY": "1"}) == local
    off = network.cyclonedds_config({"ROS_AUTOMATIC_DISCOVERY_RANGE": "OFF"})
    assert "<ParticipantIndex>none</ParticipantIndex>" in off and "Peer " not in off
    assert network.cyclonedds_config({}) is None                      # SUBNET: DDS defaults
    assert network.discovery_range({}) == "SUBNET"
    user = "<CycloneDDS><Domain><General><Interfaces><NetworkInterface address=\"127.0.0.1\"/>" \
           "</Interfaces></General></Domain></CycloneDDS>"
    merged = network.cyclonedds_config({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                                        "CYCLONEDDS_URI": user})
    assert merged.startswith(user + ",") and merged.count("NetworkInterface") == 1
    with pytest.raises(ValueError, match="ROS_AUTOMATIC_DISCOVERY_RANGE: expected one of"):
        network.discovery_range({"ROS_AUTOMATIC_DISCOVERY_RANGE": "everywhere"})
    with pytest.raises(ValueError, match="ROS_DOMAIN_ID: expected an integer in 0..232"):
        network.domain_id({"ROS_DOMAIN_ID": "300"})
