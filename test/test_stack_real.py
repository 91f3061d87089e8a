"""The real path without hardware: virtual Herkulex bus <- servo_driver <- safety_shield, each
in its own process over loopback DDS, driven and stopped from other processes."""

import sys
import time

import numpy as np
import pytest

from kraby_rl import ros
from kraby_rl.core import joints as J
from kraby_rl.herkulex.virtual.fake_bus import FakeBusProcess
from kraby_rl.ros.messages import diagnostic_msgs, sensor_msgs, std_msgs
from ros_helpers import Process, ros_node, spin_for, spin_until

ON, BRAKE = 0x60, 0x40
LATCHED = ros.QoSProfile(depth=1, durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)
NODE = [sys.executable, "-m"]


@pytest.fixture
def stack(request):
    """Bus, driver and shield processes, and a test node that plays the policy (extra
    shield parameters from an indirect parametrisation)."""
    shield_args = [a for kv in getattr(request, "param", []) for a in ("-p", kv)]
    with FakeBusProcess(["--pty"]) as bus:
        procs = [Process(NODE + ["kraby_rl.nodes.servo_driver_node", "--ros-args",
                                 "-p", f"port:={bus.url}"]),
                 Process(NODE + ["kraby_rl.nodes.safety_shield_node", "--ros-args",
                                 "-p", "command_timeout_s:=0.3", *shield_args])]
        try:
            with ros_node("policy_stand_in") as node:
                yield Stack(node, bus, procs)
        finally:
            for p in procs:
                p.stop()


class Stack:
    def __init__(self, node, bus, procs):
        self.node, self.bus, self.procs = node, bus, procs
        self.states, self.diag = [], {}
        node.create_subscription(std_msgs.String, "safety/state",
                                 lambda m: self.states.append(m.data), LATCHED)
        node.create_subscription(diagnostic_msgs.DiagnosticArray, "diagnostics",
                                 self._on_diag, 10)
        self.pub = node.create_publisher(sensor_msgs.JointState, "policy/joint_targets", 10)
        self.reset_pub = node.create_publisher(std_msgs.Empty, "safety/reset", 10)
        self.goal = None
        self.motion = None              # t [s] -> goal: a moving command (a walk)
        self.faults = None
        self.names = list(J.JOINT_NAMES)
        node.create_timer(0.02, self._send)
        node.create_subscription(diagnostic_msgs.DiagnosticArray, "servo/faults",
                                 self._on_faults, LATCHED)

    def _on_faults(self, msg):
        self.faults = {st.hardware_id: st.message for st in msg.status}

    def _on_diag(self, msg):
        for st in msg.status:
            self.diag[st.name] = st

    def _send(self):
        if self.motion is not None:
            self.goal = self.motion(time.monotonic())
        if self.goal is not None:
            self.pub.publish(sensor_msgs.JointState(name=self.names,
                                                    position=list(map(float, self.goal))))

    def truth(self):
        return self.bus.control(cmd="state")

    def wait_state(self, state, timeout=10.0):
        assert spin_until(self.node, lambda: self.states and self.states[-1] == state,
                          timeout=timeout), f"safety/state {self.states}, wanted {state}"

    def reach(self, goal, tol=0.01, timeout=10.0):
        self.goal = np.asarray(goal, float)

        def there():
            return np.abs(np.array(self.truth()["q"]) - self.goal).max() < tol
        ok = spin_until(self.node, there, timeout=timeout)
        assert ok, f"pose not reached: {np.array(self.truth()['q']) - self.goal}"


def test_real_stack_reaches_commanded_poses_and_estop_latches_until_reset(stack):
    stack.wait_state("OK")
    stack.reach(J.DEFAULT_POSE + 0.1)
    assert set(stack.truth()["torque"]) == {ON}
    stack.reach(J.DEFAULT_POSE - 0.1)
    estop = Process([sys.executable, "-m", "kraby_rl.cli", "topic", "pub", "--once",
                     "emergency_stop", "std_msgs/msg/Bool", "{data: true}"])
    try:
        assert spin_until(stack.node, lambda: set(stack.truth()["torque"]) == {BRAKE}, 10)
        stack.wait_state("ESTOP")
    finally:
        estop.stop()
    frozen = np.array(stack.truth()["q"])
    stack.goal = J.DEFAULT_POSE + 0.2            # the policy keeps asking; nothing moves
    spin_for(stack.node, 1.0)
    assert set(stack.truth()["torque"]) == {BRAKE}
    assert np.abs(np.array(stack.truth()["q"]) - frozen).max() < 0.01
    stack.reset_pub.publish(std_msgs.Empty())    # refused: emergency_stop is still true
    spin_for(stack.node, 0.5)
    assert stack.states[-1] == "ESTOP"
    release = stack.node.create_publisher(std_msgs.Bool, "emergency_stop", 10)
    spin_until(stack.node, lambda: release.get_subscription_count() >= 2, 5)
    release.publish(std_msgs.Bool(data=False))
    spin_for(stack.node, 0.3)
    assert stack.states[-1] == "ESTOP"           # false alone does not release
    stack.reset_pub.publish(std_msgs.Empty())
    stack.wait_state("OK")
    stack.reach(J.DEFAULT_POSE + 0.2)
    assert set(stack.truth()["torque"]) == {ON}


def test_bad_targets_are_rejected_and_counted_and_never_reach_the_bus(stack):
    stack.wait_state("OK")
    stack.reach(J.DEFAULT_POSE)
    bad = J.DEFAULT_POSE.copy()
    bad[4] = float("nan")
    stack.goal = bad
    spin_for(stack.node, 0.4)
    stack.names = list(J.JOINT_NAMES)[:17]
    stack.goal = J.DEFAULT_POSE[:17] + 0.3
    spin_for(stack.node, 0.4)
    stack.names = list(J.JOINT_NAMES)
    far = J.DEFAULT_POSE.copy()
    far[0] = 3.0                                 # far beyond the coxa limit: clamped
    stack.reach(np.where(np.arange(18) == 0, J.SOFT_UPPER[0], J.DEFAULT_POSE), tol=0.02)
    stack.goal = far
    spin_for(stack.node, 1.5)
    q = np.array(stack.truth()["q"])
    assert q[0] == pytest.approx(J.SOFT_UPPER[0], abs=0.02)
    assert spin_until(stack.node, lambda: "kraby_rl: safety_shield" in stack.diag, 3)
    values = {kv.key: kv.value for kv in stack.diag["kraby_rl: safety_shield"].values}
    assert int(values["rejected_non_finite"]) >= 5
    assert int(values["rejected_wrong_length"]) >= 5
    assert int(values["clamped_lf_coxa"]) >= 1


def test_a_dead_policy_and_a_mute_servo_each_lead_to_a_safe_stop(stack):
    stack.wait_state("OK")
    stack.reach(J.DEFAULT_POSE + 0.05)
    stack.goal = None                            # the policy dies
    stack.wait_state("FAULT:stale_command", timeout=2.0)
    held = np.array(stack.truth()["q"])
    spin_for(stack.node, 0.5)
    assert set(stack.truth()["torque"]) == {ON}  # held standing, not dropped
    assert np.abs(np.array(stack.truth()["q"]) - held).max() < 0.01
    stack.reset_pub.publish(std_msgs.Empty())
    stack.wait_state("OK")
    stack.reach(J.DEFAULT_POSE)
    stack.bus.control(cmd="fault", fault="mute", id=7)
    stack.wait_state("FAULT:stale_state", timeout=3.0)

    def names_servo():
        st = stack.diag.get("kraby_rl: servo_driver")
        return st is not None and "ID 7" in st.message
    assert spin_until(stack.node, names_servo, 5)
    assert stack.diag["kraby_rl: servo_driver"].level == diagnostic_msgs.DiagnosticStatus.ERROR


def test_shutdown_leaves_the_servos_braked(stack):
    stack.wait_state("OK")
    stack.reach(J.DEFAULT_POSE + 0.05)
    driver = stack.procs[0]
    driver.proc.send_signal(2)                   # Ctrl-C
    assert driver.wait(timeout=10) == 0
    assert set(stack.truth()["torque"]) == {BRAKE}
    assert "servos left brake" in driver.stderr


def test_driver_refuses_bad_parameters_with_a_clear_error():
    p = Process(NODE + ["kraby_rl.nodes.servo_driver_node", "--ros-args",
                        "-p", "port:=/dev/does-not-exist", "-p", "estop_action:=brake"])
    try:
        assert p.wait(timeout=30) == 2
        assert "parameter 'port': cannot open '/dev/does-not-exist'" in p.stderr
    finally:
        p.stop()
    p = Process(NODE + ["kraby_rl.nodes.servo_driver_node", "--ros-args",
                        "-p", "estop_action:=explode"])
    try:
        assert p.wait(timeout=30) == 2
        assert "parameter 'estop_action': expected brake or free, found 'explode'" in p.stderr
    finally:
        p.stop()


def test_killing_policy_node_stops_safely_within_the_stale_timeout():
    """The real stack with a real policy_node (shipped `stand`); kill -9 it mid-run."""
    import time
    with FakeBusProcess(["--pty"]) as bus:
        procs = [Process(NODE + ["kraby_rl.nodes.servo_driver_node", "--ros-args",
                                 "-p", f"port:={bus.url}"]),
                 Process(NODE + ["kraby_rl.nodes.safety_shield_node", "--ros-args",
                                 "-p", "command_timeout_s:=0.25"]),
                 Process(NODE + ["kraby_rl.nodes.policy_node", "--ros-args",
                                 "-p", "policy:=stand"])]
        try:
            with ros_node("operator") as node:
                states = []
                node.create_subscription(std_msgs.String, "safety/state",
                                         lambda m: states.append((time.monotonic(), m.data)),
                                         LATCHED)
                targets = []
                node.create_subscription(sensor_msgs.JointState, "policy/joint_targets",
                                         lambda m: targets.append(m), 10)
                assert spin_until(node, lambda: states and states[-1][1] == "OK"
                                  and len(targets) > 25, 30), procs[2].stderr
                q = np.array(bus.control(cmd="state")["q"])
                assert np.abs(q - J.DEFAULT_POSE).max() < 0.02     # the policy's stance
                killed = time.monotonic()
                procs[2].proc.kill()
                assert spin_until(node, lambda: states[-1][1] == "FAULT:stale_command", 3), \
                    (states, procs[1].stderr)
                assert states[-1][0] - killed < 0.25 + 0.15       # timeout + one tick + DDS
                held = np.array(bus.control(cmd="state")["q"])
                spin_for(node, 0.5)
                truth = bus.control(cmd="state")
                assert set(truth["torque"]) == {ON}                # holds its pose, torque on
                assert np.abs(np.array(truth["q"]) - held).max() < 0.01
        finally:
            for p in procs:
                p.stop()


@pytest.mark.parametrize("stack", [["on_servo_fault:=stop"], ["on_servo_fault:=continue"]],
                         indirect=True, ids=["stop", "continue"])
def test_an_overload_mid_walk_stops_or_walks_on_as_the_shield_is_told(stack, request):
    mode = request.node.callspec.params["stack"][0].split(":=")[1]
    stack.wait_state("OK")
    stack.reach(J.DEFAULT_POSE)
    t0 = time.monotonic()
    k = J.JOINT_NAMES.index("lm_femur")
    lift = np.zeros(J.NUM_JOINTS)
    phase = np.arange(J.NUM_JOINTS)

    def walk(t):        # every joint swings 0.2 rad at 1 Hz, in its own phase
        return J.DEFAULT_POSE + 0.2 * np.sin(2 * np.pi * (t - t0) + phase) + lift
    stack.motion = walk
    spin_for(stack.node, 1.0)
    # the leg is caught (IDs are in joint order) while the walk asks it to lift
    stack.bus.control(cmd="fault", fault="overload", id=k)
    lift[k] = 0.3
    assert spin_until(stack.node, lambda: stack.faults and "lm_femur" in stack.faults, 5.0), \
        f"servo/faults: {stack.faults}"
    assert stack.faults["lm_femur"] == "overload"
    if mode == "stop":
        stack.wait_state("FAULT:servo_fault", timeout=2.0)
        spin_for(stack.node, 0.3)
        held = np.array(stack.truth()["q"])
        spin_for(stack.node, 1.0)
        assert np.abs(np.array(stack.truth()["q"]) - held).max() < 0.01   # held, not walking
        stack.reset_pub.publish(std_msgs.Empty())       # refused: the fault is still there
        spin_for(stack.node, 0.5)
        assert stack.states[-1] == "FAULT:servo_fault"
    else:
        qs = []
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            spin_for(stack.node, 0.05)
            qs.append(stack.truth()["q"])
        qs = np.array(qs)
        assert stack.states[-1] == "OK"
        others = [i for i in range(J.NUM_JOINTS) if i != k]
        assert np.ptp(qs[:, others], axis=0).min() > 0.1, np.ptp(qs, axis=0).round(2)
        assert set(np.array(stack.truth()["torque"])[others]) == {ON}
