"""`kraby launch real port:=virtual`: the stack over the virtual bus, and a clean Ctrl-C."""

import os
import signal
import sys

from kraby_rl import ros
from kraby_rl.launching import parse_launch_arguments, stack
from kraby_rl.ros.messages import sensor_msgs, std_msgs
from ros_helpers import Process, ros_node, spin_until

LATCHED = ros.QoSProfile(depth=1, durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)


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
    assert [n.name for n in nodes] == ["servo_driver", "safety_shield"]
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
        assert len(kids) >= 3                      # virtual bus, driver, shield
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 0
        assert not [k for k in kids if alive(k)]
        assert "servos left brake" in launcher.stderr
    finally:
        launcher.stop()
