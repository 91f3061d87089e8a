"""`kraby launch real port:=virtual`: the stack over the virtual bus, and a clean Ctrl-C."""

import os
import signal
import sys

import pytest

from kraby_rl import ros
from kraby_rl.stack.description import parse_launch_arguments, stack
from kraby_rl.ros.messages import sensor_msgs, std_msgs
from ros_helpers import Process, ros_node, spin_until

LATCHED = ros.LATCHED


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_stack_description_is_shared_and_arguments_are_checked():
    args = parse_launch_arguments(["port:=socket://127.0.0.1:4000", "config:=/tmp/x.yaml"])
    nodes = stack("real", args)
    assert [n.name for n in nodes] == ["servo_driver", "robot_state_publisher",
                                       "state_estimator", "safety_shield", "policy_node",
                                       "navigator"]
    assert nodes[-1].parameters["policy"] == "navigate"
    without = stack("real", parse_launch_arguments(["navigator:=none"]))
    assert [n.name for n in without][-1] == "policy_node"
    sim = stack("sim", args)
    assert [n.name for n in sim][1:] == [n.name for n in nodes][1:]
    assert sim[0].executable == "sim_node"
    train = stack("sim_train", args)
    assert [n.name for n in train] == ["robot_state_publisher", "gym_bridge"]
    assert nodes[1].ros_package == "robot_state_publisher"
    driver_args = nodes[0].ros_args("/kraby")
    assert "port:=socket://127.0.0.1:4000" in driver_args and "__ns:=/kraby" in driver_args
    assert "/tmp/x.yaml" in driver_args
    try:
        parse_launch_arguments(["prot:=x"])
    except ValueError as exc:
        assert "launch argument 'prot:=x': expected name:=value with a name from port" \
            in str(exc)
    else:
        raise AssertionError("a misspelt argument was accepted")
    with pytest.raises(ValueError, match="launch argument rviz: expected true or false"):
        parse_launch_arguments(["rviz:=yes"])
    with pytest.raises(ValueError, match="stack 'walk': expected one of real, sim, sim_train"):
        stack("walk", args)


def test_launch_real_over_the_virtual_bus_and_ctrl_c_leaves_nothing_behind():
    launcher = Process([sys.executable, "-m", "kraby_rl.cli", "launch", "real",
                        "port:=virtual"])
    try:
        with ros_node("launch_watcher") as node:
            names, states = [], []
            node.create_subscription(sensor_msgs.JointState, "joint_states",
                                     lambda m: names.append(list(m.name)), 10)
            node.create_subscription(std_msgs.String, "safety/state",
                                     lambda m: states.append(m.data), LATCHED)
            assert spin_until(node, lambda: names and states and states[-1] == "OK", 60), \
                launcher.stderr
        assert len(names[-1]) == 18
        kids = children(launcher.proc.pid)
        assert len(kids) >= 6                      # virtual bus and the five nodes
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 0
        assert not [k for k in kids if alive(k)]
        assert "servos left brake" in launcher.stderr
        # a normal Ctrl-C is not a fault: nothing at ERROR (the shield once reported
        # FAULT:stale_command when the policy stopped before it)
        assert "[ERROR]" not in launcher.stderr and "FAULT" not in launcher.stderr, \
            launcher.stderr
    finally:
        launcher.stop()


def test_ros2_launch_files_use_the_shared_description():
    import ast

    from kraby_rl.stack.description import ros_node_arguments, SHARE
    for name in ("real", "sim", "sim_train"):
        path = os.path.join(SHARE, "launch", f"{name}.launch.py")
        with open(path) as f:
            tree = ast.parse(f.read())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "id", "") == "launch_description"]
        assert [c.args[0].value for c in calls] == [name]
        assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description"
                   for n in tree.body)
    args = parse_launch_arguments(["use_sim_time:=true", "namespace:=kraby"])
    specs = stack("sim", args)
    rsp = ros_node_arguments(specs[1], args)
    assert (rsp["package"], rsp["executable"]) == ("robot_state_publisher",) * 2
    assert rsp["parameters"][-1]["use_sim_time"] is True
    assert rsp["parameters"][-1]["robot_description"].startswith("<?xml")
    sim = ros_node_arguments(specs[0], args)
    assert (sim["package"], sim["executable"]) == ("kraby_rl", "sim_node")
    assert sim["namespace"] == "kraby"
    assert sim["parameters"][0].endswith("config/sim_node.yaml")
    assert sim["parameters"][-1]["publish_clock"] is True
    assert sim["parameters"][-1]["use_sim_time"] is False     # the clock's source: wall time
    # by default the sim stack runs on simulated time, the real stack on the robot's clock
    auto = parse_launch_arguments([])
    assert auto["use_sim_time"] == "auto"
    for name, want in (("sim", "true"), ("real", "false"), ("sim_train", "false")):
        nodes = {s.name: s.parameters for s in stack(name, auto, "/dev/null")}
        clock_source = nodes.pop("sim_node", None)
        assert {p["use_sim_time"] for p in nodes.values()} == {want}, name
        if clock_source is not None:
            assert (clock_source["publish_clock"], clock_source["use_sim_time"]) == \
                ("true", "false")
    with pytest.raises(ValueError, match="use_sim_time: expected true or false or auto"):
        parse_launch_arguments(["use_sim_time:=yes"])


def test_rviz_config_shows_model_tf_odometry_and_safety_state():
    import yaml

    from kraby_rl.stack.description import rviz_config
    with open(rviz_config()) as f:
        displays = yaml.safe_load(f)["Visualization Manager"]["Displays"]
    topics = {d["Class"].split("/")[1]: d.get("Topic", d.get("Description Topic", {}))
              .get("Value") for d in displays}
    assert topics["RobotModel"] == "/robot_description"
    assert topics["Marker"] == "/safety/marker" and "TF" in topics
    assert "/odom" in [d.get("Topic", {}).get("Value") for d in displays]
