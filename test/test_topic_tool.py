"""`kraby topic list|echo|pub|hz` against nodes in another process."""

import re
import sys

import pytest
import yaml

from kraby_rl.ros.messages import sensor_msgs, std_msgs
from ros_helpers import Process, processes, ros_node, spin_until

KRABY = [sys.executable, "-m", "kraby_rl.cli"]


@pytest.fixture(scope="module")
def node():
    with ros_node("topic_tool_tester") as n:
        yield n


@pytest.fixture
def kraby():
    with processes(lambda *args: Process([*KRABY, "topic", *args])) as start:
        yield start


def finish(node, proc, timeout=20):
    assert spin_until(node, lambda: proc.proc.poll() is not None, timeout=timeout), \
        f"{proc.argv} did not finish; stderr:\n{proc.stderr}"
    return proc.proc.returncode


def test_pub_once_reaches_a_subscriber(node, kraby):
    got = []
    sub = node.create_subscription(std_msgs.Bool, "emergency_stop",
                                   lambda m: got.append(m.data), 10)
    p = kraby("pub", "--once", "emergency_stop", "std_msgs/msg/Bool", "{data: true}")
    assert finish(node, p) == 0
    assert spin_until(node, lambda: got, timeout=3) and got == [True]
    node.destroy_subscription(sub)


def test_echo_list_and_hz_see_a_publisher(node, kraby):
    pub = node.create_publisher(sensor_msgs.JointState, "tool/joint_states", 10)
    msg = sensor_msgs.JointState(name=["lf_coxa", "lf_femur"], position=[0.25, -0.5])
    timer = node.create_timer(0.02, lambda: pub.publish(msg))   # 50 Hz
    echo = kraby("echo", "tool/joint_states", "--once")
    assert finish(node, echo) == 0
    shown = yaml.safe_load("".join(echo.lines).split("---")[0])
    assert shown["name"] == ["lf_coxa", "lf_femur"] and shown["position"] == [0.25, -0.5]

    listing = kraby("list", "-t")
    assert finish(node, listing) == 0
    assert "/tool/joint_states [sensor_msgs/msg/JointState]" in "".join(listing.lines)

    hz = kraby("hz", "tool/joint_states", "--duration", "3")
    assert finish(node, hz) == 0
    rates = [float(r) for r in re.findall(r"average rate: ([0-9.]+)", "".join(hz.lines))]
    assert rates and 45.0 < rates[-1] < 55.0, hz.lines
    node.destroy_timer(timer)
    node.destroy_publisher(pub)


def test_pub_refuses_bad_values_with_the_field_named(node, kraby):
    p = kraby("pub", "--once", "emergency_stop", "std_msgs/msg/Bool", "{data: maybe}")
    assert finish(node, p) == 2
    assert "std_msgs/msg/Bool.data: expected true or false, found 'maybe'" in p.stderr
    p = kraby("pub", "--once", "x", "std_msgs/msg/Nope", "{}")
    assert finish(node, p) == 2
    assert "not a ROS 2 Jazzy message" in p.stderr
