"""kraby eval --report: the PNG figures and index a legged-robot person reads."""

import os
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np

from kraby_rl.evaluation import report as R
from kraby_rl.evaluation.evaluate import evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_stance_intervals_and_body_velocity():
    contact = np.zeros((10, 2), bool)
    contact[2:5, 0] = True
    contact[7:, 0] = True
    contact[:, 1] = True
    legs = R.stance_intervals(contact, 0.1)
    assert np.allclose(legs[0], [[0.2, 0.3], [0.7, 0.3]]) and np.allclose(legs[1], [[0.0, 1.0]])
    t = np.arange(200) * 0.02
    yaw = np.full_like(t, np.pi / 2)            # facing +y, walking along +y at 0.1 m/s
    pos = np.stack([np.zeros_like(t), 0.1 * t, np.zeros_like(t)], axis=1)
    vx, vy, wz = R.body_velocity(0.02, pos, yaw)
    assert np.allclose(vx[20:-20], 0.1) and np.allclose(vy[20:-20], 0.0, atol=1e-12)
    assert np.allclose(wz, 0.0)


def test_eval_report_writes_the_figures(tmp_path):
    out = str(tmp_path / "report")
    lines = []
    summary = evaluate("walk", episodes=1, seconds=3.0, command=[0.15, 0.0, 0.0],
                       env_overrides={"randomize": None}, report=out, log=lines.append)
    assert sorted(os.listdir(out)) == sorted([*R.FIGURES, "index.md"])
    for name in R.FIGURES:
        path = os.path.join(out, name)
        assert os.path.getsize(path) > 10_000, name
        img = mpimg.imread(path)
        assert img.shape[0] > 300 and img.shape[1] > 600, (name, img.shape)
        assert img[..., :3].std() > 0.05, f"{name} is blank"
    index = open(os.path.join(out, "index.md")).read()
    for name in R.FIGURES:
        assert f"]({name})" in index
    assert f"| falls | {summary['falls']} |" in index
    assert any(line.startswith("report: ") for line in lines)


def test_the_gait_diagram_shows_six_legs_walking(tmp_path):
    from kraby_rl.evaluation.evaluate import load_actor, run_episode
    import gymnasium as gym
    import kraby_rl.envs  # noqa: F401
    env = gym.make("kraby_rl/Hexapod-v0", episode_s=3.0)
    trace = {}
    try:
        res = run_episode(env, load_actor("tripod"), 0, [0.15, 0.0, 0.0], trace=trace)
        stall, w0 = env.unwrapped.world.servo.envelope()
        drawn = R.write_report(str(tmp_path), {"policy": "tripod", "env_id": "x",
                                               "episodes": 1, "seconds": 3.0, "falls": 0,
                                               "mean": res, "worst": res},
                               [trace], env.unwrapped.dt, stall, w0)
    finally:
        env.close()
    assert drawn["legs"] == ["LF", "LM", "LR", "RR", "RM", "RF"]
    # a 2 Hz tripod over 3 s: about six stance phases per leg
    assert all(4 <= n <= 8 for n in drawn["stance_phases"]), drawn["stance_phases"]
    assert drawn["envelope_outside"] == 0.0


def test_kraby_eval_report_option(tmp_path):
    p = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "eval", "walk", "--episodes", "1",
                        "--seconds", "1", "--report", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stderr
    assert os.path.exists(tmp_path / "r" / "gait.png")


def test_eval_records_each_episode_as_a_bag_that_from_bag_judges_alike(tmp_path):
    """kraby eval --record: one bag per episode; rosbags reads it; kraby eval --from-bag's
    figures of it (leg odometry, as for the robot) agree with the env's ground truth."""
    from pathlib import Path
    from rosbags.highlevel import AnyReader
    from kraby_rl.evaluation.from_bag import figures_from_bag
    out = str(tmp_path / "bags")
    summary = evaluate("walk", episodes=2, seconds=6.0, command=[0.15, 0.0, 0.0],
                       env_overrides={"randomize": None}, record=out, log=lambda m: None)
    assert sorted(os.listdir(out)) == ["episode_0", "episode_1"]
    bag = os.path.join(out, "episode_0")
    with AnyReader([Path(bag)]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        js = [reader.deserialize(raw, c.msgtype) for c, _t, raw in reader.messages(
            [c for c in reader.connections if c.topic == "/joint_states"])]
    assert counts == {"/joint_states": 300, "/imu/data": 300, "/sim/odom": 300,
                      "/cmd_vel": 300, "/clock": 300}
    assert len(js[0].name) == 18 and js[0].name[0] == "lf_coxa" and len(js[-1].effort) == 18
    truth = summary["episodes_detail"][0]
    fig = figures_from_bag(bag)
    assert abs(fig["vx"] - truth["vx"]) < 0.05 * truth["vx"], (fig["vx"], truth["vx"])
    assert abs(fig["heading_change_deg"] - truth["heading_change_deg"]) < 2.0
    assert abs(fig["step_freq_hz"] - truth["step_freq_hz"]) < 0.2
    assert fig["envelope_violations"] is not None and fig["command"] == [0.15, 0.0, 0.0]
    try:
        evaluate("walk", episodes=1, seconds=1.0, record=out, log=lambda m: None)
    except ValueError as exc:
        assert "exists and is not empty" in str(exc)
    else:
        raise AssertionError("recording into a used directory was accepted")
