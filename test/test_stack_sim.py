"""The sim stack end to end: `kraby launch sim` (sim_node, robot_state_publisher,
state_estimator, safety_shield, policy_node, each its own process) runs an exported policy."""

import json
import os
import signal
import sys

import numpy as np
import pytest

from kraby_rl import ros
from kraby_rl.core import joints as J
from kraby_rl.core import spec as S
from kraby_rl.ros.messages import (diagnostic_msgs, nav_msgs, sensor_msgs, std_msgs, tf2_msgs,
                                   visualization_msgs)
from kraby_rl.core.contract import DEFAULT
from kraby_rl.training.export import export_stand, write_export
from ros_helpers import Process, ros_node, spin_until

LATCHED = ros.QoSProfile(depth=1, durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def constant_policy(path, action):
    """An exported policy whose action is always `action` (zero weights, bias = action)."""
    meta = {**DEFAULT.metadata(), "algorithm": "constant"}
    layers = [(np.zeros((18, S.OBS_SIZE)), np.asarray(action, float), "none")]
    return write_export(str(path), layers, np.zeros(S.OBS_SIZE), np.ones(S.OBS_SIZE), meta)


def test_sim_stack_runs_a_policy(tmp_path):
    action = np.zeros(18)
    action[J.joint_index("lf_coxa")] = 0.5
    action[J.joint_index("rr_femur")] = 0.4
    policy = constant_policy(tmp_path / "lean", action)
    want = S.action_to_targets(action)
    launcher = Process([sys.executable, "-m", "kraby_rl.cli", "launch", "sim",
                        f"policy:={policy}"])
    try:
        with ros_node("sim_watcher") as node:
            got = {"q": None, "odom": None, "sim": None, "desc": None, "tf": set(), "diag": {}}
            states = []

            def on_js(m):
                got["q"] = np.asarray(m.position)[J.index_map(m.name)]

            node.create_subscription(sensor_msgs.JointState, "joint_states", on_js, 10)
            node.create_subscription(nav_msgs.Odometry, "odom",
                                     lambda m: got.__setitem__("odom", m), 10)
            node.create_subscription(nav_msgs.Odometry, "sim/odom",
                                     lambda m: got.__setitem__("sim", m), 10)
            node.create_subscription(std_msgs.String, "safety/state",
                                     lambda m: states.append(m.data), LATCHED)
            node.create_subscription(visualization_msgs.Marker, "safety/marker",
                                     lambda m: got.__setitem__("marker", m), LATCHED)
            node.create_subscription(std_msgs.String, "robot_description",
                                     lambda m: got.__setitem__("desc", m.data), LATCHED)
            node.create_subscription(tf2_msgs.TFMessage, "tf", lambda m: got["tf"].update(
                (t.header.frame_id, t.child_frame_id) for t in m.transforms), 10)
            node.create_subscription(
                diagnostic_msgs.DiagnosticArray, "diagnostics",
                lambda m: got["diag"].update({s.name: s for s in m.status}), 10)

            def reached():
                return got["q"] is not None and np.max(np.abs(got["q"] - want)) < 0.03

            assert spin_until(node, reached, 60), (got["q"], launcher.stderr)
            assert states[-1] == "OK"
            assert spin_until(node, lambda: got.get("marker") and got["marker"].text == "OK", 5)
            assert got["marker"].header.frame_id == "base_link" and got["marker"].color.g > 0.5
            # the estimator's odom agrees with the simulator's ground truth
            assert spin_until(node, lambda: got["odom"] and got["sim"], 5)
            est, true = got["odom"].pose.pose.position, got["sim"].pose.pose.position
            assert est.z == pytest.approx(true.z, abs=0.005)
            assert abs(got["odom"].twist.twist.linear.x) < 0.02
            assert "<robot name=\"kraby\">" in got["desc"]
            assert spin_until(node, lambda: ("odom", "base_link") in got["tf"]
                              and ("lf_femur_link", "lf_tibia_link") in got["tf"], 5)
            assert spin_until(node, lambda: "kraby_rl: policy_node" in got["diag"], 5)
            values = {kv.key: kv.value for kv in got["diag"]["kraby_rl: policy_node"].values}
            assert int(values["published"]) > 10
            assert float(values["inference_p99_ms"]) < 5.0
            # emergency_stop from this (separate) process: sim_node brakes at once, latched
            estop = node.create_publisher(std_msgs.Bool, "emergency_stop", 10)
            spin_until(node, lambda: estop.get_subscription_count() >= 2, 5)
            estop.publish(std_msgs.Bool(data=True))
            assert spin_until(node, lambda: states[-1] == "ESTOP", 5)

            def sim_diag():
                st = got["diag"].get("kraby_rl: sim_node")
                return {kv.key: kv.value for kv in st.values} if st else {}
            got["diag"].pop("kraby_rl: sim_node", None)
            assert spin_until(node, lambda: sim_diag().get("torque") == "brake", 5)
            assert sim_diag()["estop"] == "True"
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 0
    finally:
        launcher.stop()


def test_policy_node_refuses_a_policy_for_another_robot(tmp_path):
    path = constant_policy(tmp_path / "other", np.zeros(18))
    meta_path = os.path.join(path, "policy.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta["joint_names"] = meta["joint_names"][::-1]
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    node = Process([sys.executable, "-m", "kraby_rl.nodes.policy_node", "--ros-args",
                    "-p", f"policy:={path}"])
    try:
        assert node.wait(timeout=30) == 2
        assert "does not match this robot: joint_names: policy has ['rf_tibia'" in node.stderr
        assert "Traceback" not in node.stderr
    finally:
        node.stop()
    missing = Process([sys.executable, "-m", "kraby_rl.nodes.policy_node", "--ros-args",
                       "-p", "policy:=no_such_policy"])
    try:
        assert missing.wait(timeout=30) == 2
        assert "parameter 'policy': expected an export directory" in missing.stderr
        assert "'stand'" in missing.stderr and "found 'no_such_policy'" in missing.stderr
    finally:
        missing.stop()


def test_the_shipped_stand_policy_is_what_export_stand_writes(tmp_path):
    from kraby_rl.core.policy_runtime import ExportedPolicy
    export_stand(str(tmp_path / "stand"))
    shipped, fresh = ExportedPolicy(os.path.join(ROOT, "policies", "stand")), \
        ExportedPolicy(str(tmp_path / "stand"))
    assert shipped.metadata == fresh.metadata
    for (W1, b1, _), (W2, b2, _) in zip(shipped.layers, fresh.layers):
        assert np.array_equal(W1, W2) and np.array_equal(b1, b2)
    obs = np.random.default_rng(0).normal(size=S.OBS_SIZE)
    assert np.array_equal(shipped.act(obs), np.zeros(18))


def test_kraby_demo_walks_the_shipped_policy_and_reports_it():
    """The main job's defaults: the shipped `walk` policy at 0.15 m/s forward in the sim
    stack, watched from another process."""
    import subprocess
    r = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "demo", "--seconds", "4"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert report["policy"] == "walk" and report["command"] == [0.15, 0.0, 0.0]
    assert report["safety_states"][-1] == "OK" and report["stack_exit_status"] == 0
    assert report["height_m"] == pytest.approx(0.14, abs=0.015)
    assert report["speed_m_s"] == pytest.approx(0.15, rel=0.3)     # it walks as commanded
    assert abs(report["turn_deg"]) < 10
    assert report["estimated_speed_m_s"] == pytest.approx(report["speed_m_s"], rel=0.2)
    assert 45 <= report["joint_states_hz"] <= 55
    assert report["targets_published"] > 100
    assert not report["shield"].get("rejected")
    assert "policy 'walk': moved" in r.stderr and "safety states WAITING -> OK" in r.stderr
