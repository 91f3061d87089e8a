"""Limp legs: observation spec version 4 (``leg_err``, each leg's filtered joint error), the
same in env and robot, high on a limp leg only; the contract's ``gait_limp_threshold``,
refused without its observation; the gait's wave on the working legs (one in the air at a
time, the limp legs held); and what it is for: the ripple gait that loses a third of its
speed with a limp front leg walks on at full speed with it."""

import math

import gymnasium as gym
import numpy as np
import pytest

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.core import joints as J
from kraby_rl.core import kinematics as K
from kraby_rl.core import spec as S
from kraby_rl.core.contract import Contract, ContractError
from kraby_rl.core.gait import WAVE_DUTY, TripodGait
from kraby_rl.sim.faults import FaultSpec
from sim_helpers import beside_the_robot, walk

LEG_ERR = S.OBS_SLICES["leg_err"]
LEGS = list(J.LEG_PREFIXES)
HOLD = dict(action_mode="gait_residual", gait_pattern="ripple", gait_duty=0.777678595483303,
            clock_hz=1.0, gait_lift_m=0.06, gait_stride_scale=0.8, gait_heading_gain=3.0,
            gait_level_gain=1.0, spec_version=4, command=[0.15, 0, 0],
            zero_command_prob=0.0)
"""The gait of policies/ripple_hold, with the spec-4 observation."""


def _mask(*legs):
    return np.array([leg in legs for leg in LEGS])


@pytest.mark.parametrize("limp", [("lf",), ("lm", "rr"), ("lr", "rf")])
def test_the_wave_lifts_one_working_leg_at_a_time_and_holds_the_limp_ones(limp):
    gait = TripodGait(1.0, 0.78, 0.06, 0.8, "ripple")
    mask = _mask(*limp)
    offsets, duty, working = gait.timing(mask)
    assert duty == WAVE_DUTY[6 - len(limp)] and list(working) == list(~mask)
    swung = np.zeros(6, dtype=bool)
    for t in np.linspace(0.0, 1.0, 401):
        feet = gait.feet(t, [0.15, 0.0, 0.0], mask)
        up = feet[:, 2] > K.DEFAULT_FEET[:, 2] + 1e-9
        assert up.sum() <= 1, (t, up)                      # one working leg in the air
        assert not np.any(up & mask)
        np.testing.assert_allclose(feet[mask], K.DEFAULT_FEET[mask])   # limp: held
        swung |= up
    assert list(swung) == list(~mask)                      # every working leg steps
    plain = gait.feet(0.3, [0.15, 0.0, 0.0])               # no limp leg: the pattern
    for same in (None, _mask(), _mask(*LEGS)):
        np.testing.assert_allclose(gait.feet(0.3, [0.15, 0.0, 0.0], same), plain)
    assert gait.timing(_mask())[1] == 0.78


def test_the_limp_threshold_needs_its_observation_and_switches_the_gait():
    with pytest.raises(ContractError, match="gait_limp_threshold: the limp-leg wave needs "
                                            "action_mode gait_residual and spec_version >= 4"):
        Contract(action_mode="gait_residual", spec_version=3, gait_limp_threshold=0.3)
    with pytest.raises(ContractError, match=r"gait_limp_threshold: expected a leg error in "
                                            r"\[0, 2.0\] \[rad\], found -0.1"):
        Contract(action_mode="gait_residual", spec_version=4, gait_limp_threshold=-0.1)
    c = Contract(action_mode="gait_residual", spec_version=4, gait_limp_threshold=0.3,
                 gait_pattern="ripple", gait_duty=0.78)
    assert c.obs_size == 128 == S.obs_size(4) and c.obs_fields[-1] == ("leg_err", 6, "rad")
    assert Contract.from_metadata(c.metadata()) == c
    with pytest.raises(ContractError, match="gait_limp_threshold: policy has 0.3, robot "
                                            "expects 0.5"):
        Contract.from_metadata(c.metadata(), pinned={"gait_limp_threshold": 0.5})
    dec = c.decoder()
    obs = np.zeros(128, np.float32)
    obs[S.OBS_SLICES["command"]] = [0.15, 0.0, 0.0]
    obs[S.OBS_SLICES["clock"]] = [math.sin(0.6), math.cos(0.6)]
    ripple = dec(np.zeros(18), obs)
    np.testing.assert_allclose(ripple, c.replace(gait_limp_threshold=0.0).decoder()(
        np.zeros(18), obs))
    obs[LEG_ERR] = [0.29, 0.1, 0.1, 0.1, 0.1, 0.1]        # under the threshold: no change
    np.testing.assert_allclose(dec(np.zeros(18), obs), ripple)
    obs[LEG_ERR][0] = 0.8                                  # lf limp: held, the others wave
    limp = dec(np.zeros(18), obs)
    np.testing.assert_allclose(limp[0:3], J.DEFAULT_POSE[0:3], atol=1e-9)
    assert not np.allclose(limp[3:], ripple[3:])


def test_the_leg_error_rises_on_a_limp_leg_alone_and_env_and_robot_agree():
    """In the simulator with lf limp the leg error of lf passes 0.3 rad within 2 s while the
    working legs stay under 0.15; an Observer fed the env's joint states and IMU builds the
    same observation and the same targets (as policy_node does on the robot)."""
    env = gym.make("kraby_rl/Hexapod-v0", **HOLD, gait_limp_threshold=0.3,
                   episode_s=4.0).unwrapped

    def same(obs, r):
        assert r.shape == obs.shape == (128,)
        np.testing.assert_allclose(r[LEG_ERR], obs[LEG_ERR], atol=1e-6)

    try:
        obs, _ = env.reset(seed=0, options={"faults": FaultSpec.limp_leg("lf")})
        obs = beside_the_robot(env, obs, 100, same)
        assert obs[LEG_ERR][0] > 0.3, obs[LEG_ERR]
        assert np.all(obs[LEG_ERR][1:] < 0.15), obs[LEG_ERR]
        env.reset(seed=1)                                    # healthy: every leg under 0.15
        for _ in range(100):
            obs, *_ = env.step(np.zeros(18))
        assert np.all(obs[LEG_ERR] < 0.15) and np.any(obs[LEG_ERR] > 0.01), obs[LEG_ERR]
    finally:
        env.close()


def _walk(threshold, *legs, seconds=20.0):
    """(forward speed [m/s], turn [deg], fell) of ripple_hold's gait with ``legs`` limp."""
    env = gym.make("kraby_rl/Hexapod-v0", **HOLD, gait_limp_threshold=threshold,
                   episode_s=seconds).unwrapped
    try:
        turn, dx, fell = walk(env, FaultSpec.limp_leg(*legs))
        return dx / seconds, turn, fell
    finally:
        env.close()


def test_the_wave_walks_on_a_limp_front_leg_where_the_ripple_slows():
    """ripple_hold's gait with lf limp makes 0.088 m/s of a 0.15 m/s command (the
    robustness gate asks 0.10; how much it keeps is chaotic: at duty 0.78 instead of 0.7777,
    0.107); re-timed to the wave on the five working legs, 0.12."""
    (ripple, _, ripple_fell), (wave, turn, wave_fell) = _walk(0.0, "lf"), _walk(0.3, "lf")
    assert not ripple_fell and not wave_fell
    assert ripple < 0.095 and wave > 0.11, (ripple, wave)
    assert abs(turn) < 15


def test_over_fewer_legs_the_body_sways_over_the_feet_down_and_crouches():
    with pytest.raises(ContractError, match="gait_limp_shift: the limp-leg wave needs "
                                            "action_mode gait_residual and spec_version >= 4"):
        Contract(action_mode="gait_residual", spec_version=3, gait_limp_shift=0.3)
    with pytest.raises(ContractError, match=r"gait_limp_crouch_m: expected a height in "
                                            r"\[0, 0.04\] m, found 0.05"):
        Contract(action_mode="gait_residual", spec_version=4, gait_limp_crouch_m=0.05)
    plain = TripodGait(1.0, 0.78, 0.06, 0.8, "ripple")
    moved = TripodGait(1.0, 0.78, 0.06, 0.8, "ripple", limp_shift=0.5, limp_crouch_m=0.02)
    mask = _mask("lm", "rr")
    work = ~mask
    offsets, duty, _ = plain.timing(mask)
    shifts = []
    for t in np.linspace(0.0, 1.0, 200, endpoint=False):
        a = plain.feet(t, [0.15, 0.0, 0.0], mask)
        b = moved.feet(t, [0.15, 0.0, 0.0], mask)
        d = b[work, :2] - a[work, :2]
        np.testing.assert_allclose(d, np.tile(d[0], (4, 1)), atol=1e-12)  # feet alike
        shifts.append(-d[0] / 0.5)                                # where the body went
        np.testing.assert_allclose(b[work, 2] - a[work, 2], 0.02, atol=1e-12)
        np.testing.assert_allclose(b[mask], a[mask])              # the limp legs: held
        up = np.flatnonzero(a[:, 2] > K.DEFAULT_FEET[:, 2] + 0.03)    # a leg high in the air
        if len(up):                                  # the body over the feet on the ground
            others = [k for k in np.flatnonzero(work) if k != up[0]]
            assert np.linalg.norm(shifts[-1] - K.DEFAULT_FEET[others, :2].mean(axis=0)) < \
                0.4 * np.linalg.norm(K.DEFAULT_FEET[others, :2].mean(axis=0))
    # over a cycle the body sways about the centroid of the four working feet: ahead of
    # the centre, since lm and rr are gone
    np.testing.assert_allclose(np.mean(shifts, axis=0), K.DEFAULT_FEET[work, :2].mean(axis=0),
                               atol=1e-3)
    assert np.mean(shifts, axis=0)[0] > 0.02
    np.testing.assert_allclose(moved.feet(0.3, [0.15, 0, 0]), plain.feet(0.3, [0.15, 0, 0]))
    np.testing.assert_allclose(moved.feet(0.3, [0.0, 0, 0], mask), K.DEFAULT_FEET)  # standing
