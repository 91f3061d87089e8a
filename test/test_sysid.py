"""kraby sysid: a sim-stack recording made with known non-default parameters (servo strength
0.8, latency 1 control step, foot friction 0.6) is fitted back from nominal values."""

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rosbags.highlevel import AnyReader

from kraby_rl.evaluation import sysid as S
from kraby_rl.ros.messages import geometry_msgs
from ros_helpers import Process, ros_node, spin_for

KRABY = [sys.executable, "-m", "kraby_rl.cli"]
TRUE = {"servo_strength": 0.8, "servo_speed": 1.0, "friction": 0.6, "latency_steps": 1}


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    d = tmp_path_factory.mktemp("sysid")
    params = d / "params.yaml"
    params.write_text(yaml.safe_dump({"sim_node": {"ros__parameters": {
        k: v for k, v in TRUE.items() if k != "servo_speed"}}}))
    bag = str(d / "bag")
    with ros_node("sysid_cmd") as node:
        pub = node.create_publisher(geometry_msgs.Twist, "cmd_vel", 10)
        twist = geometry_msgs.Twist()
        twist.linear.x = 0.15
        stack = Process(KRABY + ["launch", "sim", f"config:={params}", f"record:={bag}",
                                 "--duration", "16"])
        try:
            end = time.monotonic() + 16
            while time.monotonic() < end and stack.proc.poll() is None:
                pub.publish(twist)
                spin_for(node, 0.1)
            stack.proc.wait(timeout=60)
        finally:
            stack.stop()
    assert os.path.exists(os.path.join(bag, "metadata.yaml")), stack.stderr[-3000:]
    return bag


def _true_speed(bag):
    """Ground-truth speed while cmd_vel was coming (the stack starts first, and the robot
    stops when the commands stop): from 2 s after the first to the last."""
    with AnyReader([Path(bag)]) as r:
        od = [(t, r.deserialize(raw, c.msgtype)) for c, t, raw in
              r.messages([c for c in r.connections if c.topic == "/sim/odom"])]
        cmd = [t for c, t, _raw in r.messages([c for c in r.connections
                                               if c.topic == "/cmd_vel"])]
    t = np.array([x for x, _m in od]) * 1e-9
    p = np.array([[m.pose.pose.position.x, m.pose.pose.position.y] for _t, m in od])
    i, k = np.searchsorted(t, [cmd[0] * 1e-9 + 2.0, cmd[-1] * 1e-9])
    assert t[k - 1] - t[i] > 4.0, "too little walking recorded"
    return float(np.linalg.norm(p[k - 1] - p[i]) / (t[k - 1] - t[i]))


def test_the_replay_with_the_true_parameters_reproduces_the_recording(recording):
    rec = S.load(recording)
    assert len(rec["cmd"]) > 500 and abs(rec["dt"] - 0.02) < 1e-6
    right = S.cost(rec, TRUE)
    assert right < 0.003, right                          # < 3 mrad RMS
    assert S.cost(rec, S.NOMINAL) > 5 * right
    assert S.cost(rec, {**TRUE, "latency_steps": 0}) > 5 * right


def test_sysid_fits_the_parameters_back(recording, tmp_path):
    out = tmp_path / "overlay.yaml"
    p = subprocess.run(KRABY + ["sysid", recording, "--out", str(out)], capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    import json
    result = json.loads(p.stdout.strip().splitlines()[-1])
    fitted = result["params"]
    assert fitted["latency_steps"] == 1
    for key in ("servo_strength", "servo_speed", "friction"):
        assert abs(fitted[key] - TRUE[key]) < 0.1 * TRUE[key], (key, fitted)
    assert result["rms_after"] < 0.2 * result["rms_before"]
    assert "lf_coxa" in p.stderr and "rms before" in p.stderr
    # a policy evaluated with the fitted overlay walks as fast as the recorded robot
    from kraby_rl.evaluation.evaluate import evaluate
    over = yaml.safe_load(out.read_text())
    assert over["env"]["randomize"]["latency_steps"] == [1, 1]
    s = evaluate("walk", episodes=1, seconds=12.0, command=[0.15, 0.0, 0.0],
                 env_overrides=over["env"], randomized=True, log=lambda m: None)
    truth = _true_speed(recording)
    assert abs(s["mean"]["vx"] - truth) < 0.05 * truth, (s["mean"]["vx"], truth)


def test_bad_bags_are_refused(tmp_path):
    p = subprocess.run(KRABY + ["sysid", str(tmp_path / "none")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "kraby sysid:" in p.stderr
    p = subprocess.run(KRABY + ["sysid", str(tmp_path), "--fit", "mass"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "expected names from" in p.stderr
