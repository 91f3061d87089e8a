"""Transfer features of Hexapod-v0: the gait_residual action mode and domain randomisation."""

import numpy as np
import pybullet as pb
import pytest

from kraby_rl.core import spec as S
from kraby_rl.envs.hexapod_env import HexapodEnv

RANGES = {"mass_scale": [0.8, 1.2], "friction": [0.5, 1.25], "servo_strength": [0.85, 1.15],
          "servo_speed": [0.85, 1.15], "latency_steps": [0, 2],
          "obs_noise": {"ang_vel": 0.05, "joint_pos": 0.01},
          "push_interval_s": [0.5, 0.6], "push_velocity_m_s": 0.15}


def mean_velocity(env, seconds=3.0, seed=0):
    obs, _ = env.reset(seed=seed)
    v = []
    for k in range(int(seconds / env.dt)):
        obs, _r, term, _t, info = env.step(np.zeros(18))
        assert not term
        if k * env.dt > 1.0:
            v.append([*info["base_velocity"][:2], info["yaw_rate"]])
    return np.mean(v, axis=0)


@pytest.mark.parametrize("command", [(0.15, 0.0, 0.0), (0.0, 0.1, 0.0), (0.0, 0.0, 0.5)])
def test_gait_residual_with_zero_action_is_the_tripod_gait(command):
    env = HexapodEnv(action_mode="gait_residual", command=command)
    assert mean_velocity(env) == pytest.approx(command, abs=0.02)
    env.close()


def test_joint_mode_zero_action_stands_still():
    env = HexapodEnv(command=(0.15, 0.0, 0.0))
    assert np.abs(mean_velocity(env)).max() < 0.01
    env.close()


def test_randomisation_draws_within_the_ranges_and_repeats_with_the_seed():
    env = HexapodEnv(action_mode="gait_residual", command=(0.1, 0, 0), randomize=RANGES)
    draws = []
    for seed in (1, 2, 1):
        env.reset(seed=seed)
        w = env.world
        masses = np.array([pb.getDynamicsInfo(w.robot, i, physicsClientId=w.cid)[0]
                           / w.nominal_masses[i] for i in w.nominal_masses])
        draws.append((w.friction, w.servo.strength.copy(), w.servo.speed.copy(),
                      w.latency_steps, masses))
    for friction, strength, speed, latency, masses in draws:
        assert 0.5 <= friction <= 1.25 and latency in (0, 1, 2)
        assert np.all((strength >= 0.85) & (strength <= 1.15))
        assert np.all((speed >= 0.85) & (speed <= 1.15))
        assert np.all((masses >= 0.8 - 1e-6) & (masses <= 1.2 + 1e-6)) and masses.std() > 0
    assert draws[0][0] == draws[2][0] and np.array_equal(draws[0][1], draws[2][1])
    assert draws[0][0] != draws[1][0]
    env.close()


def test_pushes_and_observation_noise_happen():
    quiet = HexapodEnv(command=(0.0, 0.0, 0.0))
    noisy = HexapodEnv(command=(0.0, 0.0, 0.0), randomize={
        "obs_noise": {"ang_vel": 0.05}, "push_interval_s": [0.5, 0.6],
        "push_velocity_m_s": 0.15})
    for env in (quiet, noisy):
        env.reset(seed=3)
    peak = {}
    for name, env in (("quiet", quiet), ("noisy", noisy)):
        speeds, gyro = [], []
        for _ in range(60):                                   # 1.2 s: at least one push
            obs, _r, _term, _trunc, info = env.step(np.zeros(18))
            speeds.append(np.linalg.norm(info["base_velocity"][:2]))
            gyro.append(obs[S.OBS_SLICES["base_ang_vel"]])
        # after 0.1 s: the first steps settle the reset pose (1 cm/s and a rock of the body)
        peak[name] = (max(speeds[5:]), np.std(gyro[5:]))
        env.close()
    assert peak["quiet"][0] < 0.01 < peak["noisy"][0]
    assert peak["noisy"][1] > 5 * peak["quiet"][1]


@pytest.mark.parametrize("bad,match", [
    ({"gravity_scale": [1, 2]}, "unknown key 'gravity_scale'"),
    ({"friction": [1.2, 0.5]}, r"randomize.friction: expected \[low, high\]"),
    ({"obs_noise": {"odom": 0.1}}, "randomize.obs_noise: expected"),
    ({"push_velocity_m_s": -1}, "randomize.push_velocity_m_s"),
])
def test_bad_randomisation_is_named(bad, match):
    with pytest.raises(ValueError, match=match):
        HexapodEnv(randomize=bad)


def test_residual_penalty_and_tracking_widths_are_configurable():
    env = HexapodEnv(action_mode="gait_residual", command=(0.1, 0, 0),
                     reward_weights={"action_magnitude": -2.0},
                     tracking_sigma={"yaw_rate": 0.1})
    env.reset(seed=0)
    _o, _r, _t, _tr, info = env.step(np.full(18, 0.5))
    assert info["reward_terms"]["action_magnitude"] == pytest.approx(-2.0 * 0.25 * env.dt)
    assert env.sigma == {"lin_vel": 0.1, "yaw_rate": 0.1}
    env.close()
    with pytest.raises(ValueError, match="tracking_sigma: expected"):
        HexapodEnv(tracking_sigma={"yaw_rate": 0})


def test_heading_term_penalises_drift_against_the_integrated_command():
    env = HexapodEnv(action_mode="gait_residual", command=(0.0, 0.0, 0.5),
                     reward_weights={"heading": -10.0})
    env.reset(seed=0)
    for _ in range(50):                                # 1 s of turning as commanded
        _o, _r, _t, _tr, info = env.step(np.zeros(18))
    assert info["reward_terms"]["heading"] > -10.0 * 0.1 ** 2 * env.dt   # start-up lag only
    w = env.world                                      # now knock the heading off by 0.3 rad
    pos, quat = pb.getBasePositionAndOrientation(w.robot, physicsClientId=w.cid)
    yaw = pb.getEulerFromQuaternion(quat)[2]
    pb.resetBasePositionAndOrientation(w.robot, pos, pb.getQuaternionFromEuler([0, 0, yaw - 0.3]),
                                       physicsClientId=w.cid)
    _o, _r, _t, _tr, info = env.step(np.zeros(18))
    # error = the 0.3 rad knock plus the start-up lag (< 0.1 rad)
    assert -10.0 * 0.4 ** 2 * env.dt < info["reward_terms"]["heading"] < -10.0 * 0.3 ** 2 * env.dt
    env.close()
