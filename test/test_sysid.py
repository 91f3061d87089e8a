"""kraby sysid: recordings made with known non-default parameters (servo strength 0.8,
latency 1 control step, foot friction 0.6) are replayed and fitted back from nominal values.

The fit runs on a recording made through the virtual Herkulex bus (PyBullet physics with
those parameters hidden in it, the real stack on the serial protocol, stamped in wall
time), as a recording of the robot would be; a sim-stack recording (simulated time) checks
that the replay with the true parameters reproduces it."""

import json
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
    _walk_recorded(["launch", "sim", f"config:={params}", f"record:={bag}", "--duration", "16"],
                   bag)
    return bag


def _walk_recorded(launch, bag, sample=None):
    """Run ``kraby launch ...`` (recording to ``bag``) with cmd_vel 0.15 m/s published every
    0.1 s while it runs, calling ``sample()`` at each; stops it whatever happens."""
    with ros_node("sysid_cmd") as node:
        pub = node.create_publisher(geometry_msgs.Twist, "cmd_vel", 10)
        twist = geometry_msgs.Twist()
        twist.linear.x = 0.15
        stack = Process(KRABY + launch)
        try:
            end = time.monotonic() + 90
            while time.monotonic() < end and stack.proc.poll() is None:
                pub.publish(twist)
                if sample is not None:
                    sample()
                spin_for(node, 0.1)
            stack.proc.wait(timeout=60)
        finally:
            stack.stop()
    assert os.path.exists(os.path.join(bag, "metadata.yaml")), stack.stderr[-3000:]


@pytest.fixture(scope="module")
def bus_recording(tmp_path_factory):
    """20 s of the real stack walking on a virtual bus whose robot has the TRUE parameters,
    recorded with record:=, and the body's ground truth (the bus's PyBullet world) beside."""
    from kraby_rl.herkulex.virtual.fake_bus import FakeBusProcess
    bag = str(tmp_path_factory.mktemp("sysid_bus") / "bag")
    hidden = ["--servo-strength", "0.8", "--friction", "0.6", "--command-delay-s", "0.02"]
    truth = []
    with FakeBusProcess(["--pty", "--physics", "pybullet", *hidden]) as bus:
        assert bus.info["servo_strength"] == 0.8 and bus.info["command_delay_s"] == 0.02
        _walk_recorded(["launch", "real", f"port:={bus.url}", f"record:={bag}",
                        "--duration", "20"], bag,
                       lambda: truth.append((time.time(),                 # the stamps' clock
                                             bus.control(cmd="state")["base_pos"])))
    return bag, truth


def _bus_speed(bag, truth):
    """Ground-truth walking speed while joint commands were recorded, from 3 s after the
    first (the stack stands the robot up from its belly first) to the last."""
    with AnyReader([Path(bag)]) as r:
        stamps = [r.deserialize(raw, c.msgtype).header.stamp for c, _t, raw in
                  r.messages([c for c in r.connections if c.topic == "/joint_commands"])]
    first, last = (s.sec + s.nanosec * 1e-9 for s in (stamps[0], stamps[-1]))
    t = np.array([x for x, _p in truth])
    p = np.array([q for _t, q in truth])
    i, k = np.searchsorted(t, [first + 3.0, last])
    assert t[k - 1] - t[i] > 10.0, "too little walking recorded"
    return float(np.linalg.norm(p[k - 1, :2] - p[i, :2]) / (t[k - 1] - t[i]))


def test_the_replay_with_the_true_parameters_reproduces_the_recording(recording):
    rec = S.load(recording)
    assert len(rec["cmd"]) > 500 and abs(rec["dt"] - 0.02) < 1e-6
    right = S.cost(rec, TRUE)
    assert right < 0.003, right                          # < 3 mrad RMS
    assert S.cost(rec, S.NOMINAL) > 5 * right
    assert S.cost(rec, {**TRUE, "latency_steps": 0}) > 5 * right


def test_sysid_fits_a_recording_through_the_virtual_bus(bus_recording, tmp_path):
    bag, truth = bus_recording
    rec = S.load(bag)
    assert rec["clock"] == "wall" and abs(rec["dt"] - 0.02) < 0.002
    assert rec["commands"] == "/servo/jog"          # what the driver sent, when it sent it
    out = tmp_path / "overlay.yaml"
    p = subprocess.run(KRABY + ["sysid", bag, "--out", str(out)], capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    print(result)                                   # the fit and its wall time, in the log
    fitted = result["params"]
    # the readings are timed by what the driver measured, not by a model of this host
    assert result["read_timing"].endswith("(servo_driver diagnostics)"), result
    assert fitted["latency_steps"] == 1, fitted
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
    speed = _bus_speed(bag, truth)
    assert abs(s["mean"]["vx"] - speed) < 0.05 * speed, (s["mean"]["vx"], speed)


def test_reading_times_come_from_the_driver_diagnostics():
    """Servo k's reading is the driver's measured age of the middle of its transaction (the
    median over its reports), corrected for the bytes on either side; without those
    reports, the wire-time model; ages that cannot be are refused with their values."""
    t0 = 1.7e9
    states = [(t0 + 0.02 * i, np.zeros(18)) for i in range(60)]
    jogs = [(t0 + 0.02 * i + 0.001, np.zeros(18)) for i in range(60)]
    args = ("b", states, [], np.zeros((60, 18)), 0.2, jogs)
    ages = np.linspace(0.0135, 0.0001, 18)
    rec = S._wall_clock(*args, [ages, ages + 0.001, ages - 0.0005])
    np.testing.assert_allclose(rec["read_lag_s"], ages + (-S.SAMPLED_AFTER_MIDDLE_S))
    assert "servo_driver diagnostics" in rec["read_timing"]
    rec = S._wall_clock(*args)
    assert rec["read_lag_s"] is S.READ_LAG_S and "modelled" in rec["read_timing"]
    with pytest.raises(ValueError, match=r"reading_age_ms: expected ages from 0 to the 20.0 ms "
                                         r"period, found medians \[30.0, "):
        S._wall_clock(*args, [np.full(18, 0.03)])


def test_bad_bags_are_refused(tmp_path):
    p = subprocess.run(KRABY + ["sysid", str(tmp_path / "none")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "kraby sysid:" in p.stderr
    p = subprocess.run(KRABY + ["sysid", str(tmp_path), "--fit", "mass"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "expected names from" in p.stderr
