"""The gait's feedback: observation spec version 3 (heading error) and the heading hold
(``gait_heading_gain``), built alike by env and robot, refused without its observation,
keeping a gait with a limp leg on its heading where the open-loop gait turns away; and the
levelling (``gait_level_gain``) that keeps it up with a limp rear leg."""

import math

import gymnasium as gym
import numpy as np
import pytest

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.core import joints as J
from kraby_rl.core import spec as S
from kraby_rl.core.contract import Contract, ContractError
from kraby_rl.sim.faults import FaultSpec
from sim_helpers import beside_the_robot, walk

HEADING = S.OBS_SLICES["heading_err"]
TILT = S.OBS_SLICES["tilt"]


def build(b, wz_cmd, gyro_z, t):
    return b.build([0.0, 0.0, gyro_z], [0, 0, -1], [0.1, 0.0, wz_cmd], J.DEFAULT_POSE,
                   np.zeros(18), np.zeros(18), t)


def test_the_heading_error_integrates_commanded_minus_measured_yaw_rate():
    b = S.ObservationBuilder(2.0, spec_version=3)
    assert S.obs_size(3) == 122 and HEADING == slice(119, 120)
    obs = build(b, 0.0, 0.0, 0.0)
    assert obs.shape == (122,) and obs[119] == 0.0           # no time has passed yet
    for k in range(1, 51):                                   # turning left at 0.1 rad/s
        obs = build(b, 0.0, 0.1, 0.02 * k)
    assert obs[119] == pytest.approx(-0.1, abs=1e-6)         # 1 s: 0.1 rad left of course
    for k in range(51, 81):                                  # commanded turn, followed
        obs = build(b, 0.3, 0.3, 0.02 * k)
    assert obs[119] == pytest.approx(-0.1, abs=1e-6)
    obs = build(b, 0.0, 0.0, 10.0)                           # a 9 s gap counts 0.1 s at most
    assert obs[119] == pytest.approx(-0.1, abs=1e-6)
    for k in range(1, 400):                                  # clipped: no wind-up
        obs = build(b, 0.0, 0.5, 10.0 + 0.02 * k)
    assert obs[119] == pytest.approx(-S.HEADING_ERR_MAX)
    stop = b.build([0, 0, 0.5], [0, 0, -1], [0, 0, 0], J.DEFAULT_POSE, np.zeros(18),
                   np.zeros(18), 20.0)
    assert stop[119] == 0.0                                  # a stop sets a new heading
    b.reset()
    assert build(b, 0.0, 0.3, 21.0)[119] == 0.0


def test_the_tilt_is_the_gravity_direction_low_passed():
    b = S.ObservationBuilder(2.0, spec_version=3)

    def tilt(g, t):
        return b.build([0, 0, 0], g, [0, 0, 0], J.DEFAULT_POSE, np.zeros(18), np.zeros(18),
                       t)[TILT]
    np.testing.assert_allclose(tilt([0.1, -0.2, -0.97], 0.0), [0.1, -0.2], atol=1e-6)  # 1st
    lean = [-0.3, 0.0, -0.95]
    out = tilt(lean, 0.02)                                   # 0.4 of the way per period
    assert out[0] == pytest.approx(0.1 - 0.4 * 0.02 / S.TILT_TAU_S, abs=1e-6)
    rng = np.random.default_rng(0)
    dev = []
    for k in range(2, 502):                                  # 10 s of noisy readings
        out = tilt(np.add(lean, rng.normal(0, 0.02, 3)), 0.02 * k)
        dev.append(out[0] + 0.3)
    assert np.mean(dev[10:]) == pytest.approx(0.0, abs=0.003)
    assert np.std(dev[10:]) < 0.6 * 0.02                    # less noise than the sensor's
    b.reset()
    np.testing.assert_allclose(tilt([0.0, 0.1, -0.99], 11.0), [0.0, 0.1], atol=1e-6)


def test_the_heading_hold_steers_the_gait_and_needs_its_observation():
    with pytest.raises(ContractError, match="gait_heading_gain: a heading hold needs action_mode "
                                            "gait_residual and spec_version >= 3"):
        Contract(action_mode="gait_residual", spec_version=2, gait_heading_gain=3.0)
    with pytest.raises(ContractError, match=r"gait_heading_gain: expected a gain in \[0, 10\]"):
        Contract(action_mode="gait_residual", spec_version=3, gait_heading_gain=-1.0)
    c = Contract(action_mode="gait_residual", spec_version=3, gait_heading_gain=3.0)
    assert Contract.from_metadata(c.metadata()) == c
    with pytest.raises(ContractError, match="gait_heading_gain: policy has 3.0, robot expects"):
        Contract.from_metadata(c.metadata(), pinned={"gait_heading_gain": 1.5})
    dec, open_loop = c.decoder(), c.replace(gait_heading_gain=0.0).decoder()
    obs = np.zeros(122, np.float32)
    obs[S.OBS_SLICES["command"]] = [0.15, 0.0, 0.0]
    obs[S.OBS_SLICES["clock"]] = [0.0, 1.0]
    obs[119] = -0.1                                          # 0.1 rad left of course
    np.testing.assert_allclose(dec.command(obs), [0.15, 0.0, -0.3], atol=1e-6)  # turn right
    np.testing.assert_allclose(open_loop.command(obs), [0.15, 0.0, 0.0])
    obs[119] = -S.HEADING_ERR_MAX                            # the correction is bounded
    assert dec.command(obs)[2] == pytest.approx(-S.HEADING_RATE_MAX)
    assert not np.allclose(dec(np.zeros(18), obs), open_loop(np.zeros(18), obs))
    obs[S.OBS_SLICES["command"]] = 0.0                       # standing: no stepping
    np.testing.assert_allclose(dec(np.zeros(18), obs), J.DEFAULT_POSE, atol=1e-9)


def test_env_and_robot_observer_build_the_same_heading_error_and_tilt():
    """The env's heading error and tilt against an Observer fed the env's own joint states and gyro
    (as policy_node is by the servo driver and the IMU), the same command and actions."""
    env = gym.make("kraby_rl/Hexapod-v0", spec_version=3, action_mode="gait_residual",
                   gait_heading_gain=3.0, gait_level_gain=1.0, command=[0.15, 0, 0],
                   zero_command_prob=0.0, episode_s=4.0).unwrapped

    def same(obs, r):
        assert r.shape == obs.shape == (122,)
        assert r[119] == pytest.approx(obs[119], abs=1e-6)
        np.testing.assert_allclose(r[TILT], obs[TILT], atol=1e-6)

    try:
        obs, _ = env.reset(seed=0, options={"faults": FaultSpec.limp_leg("lf")})
        obs = beside_the_robot(env, obs, 100, same)
        assert abs(obs[119]) > 0.005            # the limp leg turned it, the hold saw it
    finally:
        env.close()


RIPPLE = dict(action_mode="gait_residual", gait_pattern="ripple", gait_duty=0.78,
              clock_hz=1.0, gait_lift_m=0.06, command=[0.15, 0, 0], zero_command_prob=0.0,
              episode_s=20.0, spec_version=3)


def _ripple_with_limp_leg(leg, gain, values, **kw):
    """(turn [deg], dx [m], fell) of the ripple gait with ``leg`` limp for each value of the
    contract key ``gain``."""
    out = []
    for v in values:
        env = gym.make("kraby_rl/Hexapod-v0", **{**RIPPLE, **kw, gain: v}).unwrapped
        try:
            out.append(walk(env, FaultSpec.limp_leg(leg)))
        finally:
            env.close()
    return out


def test_the_heading_hold_keeps_a_gait_with_a_limp_front_leg_on_course():
    """The ripple gait with a limp front leg turns away from its heading open loop (13 deg in
    20 s); the same gait with the heading hold walks on straight (under 1 deg), as fast."""
    (open_turn, open_dx, open_fell), (hold_turn, hold_dx, hold_fell) = _ripple_with_limp_leg(
        "lf", "gait_heading_gain", (0.0, 3.0))
    assert abs(open_turn) > 8 and not open_fell
    assert abs(hold_turn) < 4 and not hold_fell
    assert hold_dx > 2.0 and hold_dx > 0.9 * open_dx


def test_levelling_shortens_the_legs_on_the_rising_side_within_its_bound():
    with pytest.raises(ContractError, match="gait_level_gain: levelling needs action_mode "
                                            "gait_residual and spec_version >= 3"):
        Contract(action_mode="gait_residual", spec_version=2, gait_level_gain=1.0)
    with pytest.raises(ContractError, match=r"gait_level_gain: expected a gain in \[0, 5\]"):
        Contract(action_mode="gait_residual", spec_version=3, gait_level_gain=6.0)
    c = Contract(action_mode="gait_residual", spec_version=3, gait_level_gain=1.0)
    assert Contract.from_metadata(c.metadata()) == c
    flat, level = c.replace(gait_level_gain=0.0).decoder(), c.decoder()
    from kraby_rl.core import kinematics as KK
    obs = np.zeros(122, np.float32)                          # standing: levelled too
    obs[S.OBS_SLICES["clock"]] = [0.0, 1.0]
    obs[S.OBS_SLICES["gravity"]] = [0.3, 0.0, -0.95]         # not this: the filtered tilt
    obs[TILT] = [0.0, 0.0]                                   # level: no change
    np.testing.assert_allclose(level(np.zeros(18), obs), flat(np.zeros(18), obs), atol=1e-9)
    pitch = 0.05                                             # nose up 0.05 rad
    obs[TILT] = [-math.sin(pitch), 0.0]
    dz = (KK.foot_positions(level(np.zeros(18), obs)) - KK.foot_positions(flat(np.zeros(18), obs)))
    front = KK.DEFAULT_FEET[:, 0] > 0.05
    rear = KK.DEFAULT_FEET[:, 0] < -0.05
    np.testing.assert_allclose(dz[:, 2], pitch_dz := np.clip(
        math.sin(pitch) * KK.DEFAULT_FEET[:, 0], -S.LEVEL_DZ_MAX, S.LEVEL_DZ_MAX),
        atol=5e-4)                                           # the leg IK: within 0.5 mm
    assert np.all(pitch_dz[front] > 0.005) and np.all(pitch_dz[rear] < -0.005)
    np.testing.assert_allclose(dz[:, :2], 0.0, atol=5e-4)   # only heights change
    obs[TILT] = [-0.9, 0.0]                                  # toppling: bounded
    dz = KK.foot_positions(level(np.zeros(18), obs)) - KK.foot_positions(flat(np.zeros(18), obs))
    assert np.abs(dz[:, 2]).max() == pytest.approx(S.LEVEL_DZ_MAX, abs=5e-4)


def test_levelling_keeps_a_gait_with_a_limp_rear_leg_up():
    """With a limp rear leg the ripple gait (heading hold on) rears up and topples within
    20 s; levelled, it walks the 20 s."""
    (_, _, open_fell), (turn, dx, fell) = _ripple_with_limp_leg(
        "lr", "gait_level_gain", (0.0, 1.0), gait_stride_scale=0.96, gait_heading_gain=3.0)
    assert open_fell
    assert not fell and dx > 1.5 and abs(turn) < 20
