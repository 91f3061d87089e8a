"""The DRS-0101 model: trajectory over the playtime and the torque-speed envelope."""

import numpy as np
import pytest

from kraby_rl.core.servo_model import ServoBank, ServoParams, envelope_excess
from kraby_rl.sim.world import KrabyWorld


def test_trajectory_reaches_goal_at_playtime_with_trapezoid():
    bank = ServoBank(2, ServoParams(playtime_s=0.112, accel_ratio=0.25))
    bank.reset(np.zeros(2))
    bank.set_goal(np.array([0.3, -0.3]), t=1.0)
    p, v = bank.setpoint(1.0)
    assert p == pytest.approx([0, 0]) and v == pytest.approx([0, 0])
    p, v = bank.setpoint(1.056)              # middle: half way, cruise speed
    assert p == pytest.approx([0.15, -0.15])
    assert v == pytest.approx([0.3 / (0.112 * 0.75), -0.3 / (0.112 * 0.75)])
    p, v = bank.setpoint(1.112 + 1e-9)
    assert p == pytest.approx([0.3, -0.3]) and v == pytest.approx([0, 0])
    # a new goal mid-move starts from the current setpoint, not from the old goal
    bank.set_goal(np.array([0.0, 0.0]), t=1.056)
    p, _ = bank.setpoint(1.056)
    assert p == pytest.approx([0.15, -0.15])


def test_motor_torque_is_the_dc_law_inside_the_envelope():
    bank = ServoBank(1000, ServoParams())
    rng = np.random.default_rng(0)
    bank.reset(rng.uniform(-1, 1, 1000))
    q = rng.uniform(-1, 1, 1000)
    w = rng.uniform(-8.0, 8.0, 1000)           # beyond the no-load speed too (an impact)
    tau = bank.torque(q, w, 0.0)
    u = bank.last_duty
    assert tau == pytest.approx(1.18 * np.clip(u - w / 6.31, -1, 1))
    assert (envelope_excess(tau, w, 1.18, 6.31) <= 1e-12).all()
    assert np.abs(tau).max() <= 1.18 + 1e-12
    # beyond the no-load speed the motor only brakes
    fast = np.abs(w) > 6.31
    assert (tau[fast] * w[fast] <= 0).all()
    # a torque-free servo gives nothing; a weak one a share of the stall torque
    bank.enabled[:10] = False
    bank.weak[10:20] = 0.5
    tau2 = bank.torque(q, w, 0.0)
    assert (tau2[:10] == 0).all()
    assert tau2[10:20] == pytest.approx(0.5 * tau[10:20])


def test_walking_policy_torques_fit_the_envelope_at_each_steps_start_speed():
    """With randomised servos, pushes and contacts: every torque sample inside the envelope
    at the speed its physics step began with (the implicit velocity motor used before let
    the solver drive a joint against a braking law past the envelope: 2 samples in the worst
    episode here), and no joint faster than the no-load speed (it reached 2.5 x)."""
    from kraby_rl.evaluation.evaluate import evaluate
    from kraby_rl.resources import resolve_policy
    res = evaluate(resolve_policy("walk"), episodes=2, seconds=10.0, command=[0.15, 0, 0],
                   randomized=True, log=lambda *a: None)
    assert res["worst"]["envelope_violations"] == 0.0
    assert res["worst"]["joint_speed_peak"] <= 6.31 * 1.05
    assert res["falls"] == 0


def test_envelope_excess_known_values():
    # at half the no-load speed only half the stall torque can drive
    assert envelope_excess(0.59, 3.155, 1.18, 6.31) == pytest.approx(0.0, abs=1e-12)
    assert envelope_excess(0.79, 3.155, 1.18, 6.31) == pytest.approx(0.2)
    # braking (torque against motion) is only limited by the stall torque
    assert envelope_excess(-1.0, 3.155, 1.18, 6.31) == 0.0
    assert envelope_excess(-1.3, 3.155, 1.18, 6.31) == pytest.approx(0.12)


def test_simulated_joint_cannot_beat_no_load_speed_or_stall_torque():
    w = KrabyWorld(fixed_base=True, servo=ServoParams(playtime_s=0.0112))
    try:
        w.reset()
        goal = np.zeros(18)
        goal[0] = -0.43
        w.command(goal)
        peak = 0.0
        for _ in range(30):
            w.step()
            q, qd, tau = w.joint_states()
            peak = max(peak, abs(qd[0]))
            assert abs(tau[0]) <= 1.18 + 1e-6
        assert 2.0 < peak <= 6.31, peak    # fast, but never beyond the no-load speed
        assert abs(q[0] + 0.43) < 0.02     # and it got there
        # a weaker servo (battery sag) covers less of the same move in the same time

        def moved_after_3_steps(strength):
            w.reset()
            w.servo.strength[:] = strength
            w.command(goal)
            for _ in range(3):
                w.step()
            return w.joint_states()[0]

        q_weak = moved_after_3_steps(0.3)
        q_full = moved_after_3_steps(1.0)
        assert abs(q_full[0]) > abs(q_weak[0])
    finally:
        w.close()


def test_bad_servo_params_are_named():
    with pytest.raises(ValueError, match="accel_ratio must be in"):
        ServoParams(accel_ratio=0.7)
    with pytest.raises(ValueError, match="playtime_s must be > 0, found 0"):
        ServoParams(playtime_s=0)


def test_mass_randomisation_keeps_the_reflected_rotor_inertia():
    """PyBullet recomputes a link's inertia from its collision shape when only its mass
    is changed: that would drop the gearbox's inertia (and make the explicit torque
    unstable: a joint at 100 rad/s in the first control step)."""
    import pybullet as pb
    w = KrabyWorld()
    try:
        link = w.jidx[4]
        before = pb.getDynamicsInfo(w.robot, link, physicsClientId=w.cid)[2]
        w.set_mass_scale({link: 1.2})
        mass, _, after = pb.getDynamicsInfo(w.robot, link, physicsClientId=w.cid)[:3]
        assert mass == pytest.approx(1.2 * w.nominal_masses[link])
        assert after == pytest.approx(before)
        assert max(before) > 1e-3               # the armature dominates the link's own
    finally:
        w.close()
