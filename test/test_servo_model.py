"""The DRS-0101 model: trajectory over the playtime and the torque-speed envelope."""

import numpy as np
import pytest

from kraby_rl.core.servo_model import ServoBank, ServoParams, envelope_excess, torque_envelope
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


def test_motor_force_bound_fits_the_envelope_whichever_way_the_solver_pushes():
    bank = ServoBank(1000, ServoParams())
    rng = np.random.default_rng(0)
    bank.reset(rng.uniform(-1, 1, 1000))
    q = rng.uniform(-1, 1, 1000)
    w = rng.uniform(-6.31, 6.31, 1000)
    vt, force = bank.motor(q, w, 0.0)
    env = torque_envelope(w, 1.18, 6.31)
    law = 1.18 * (vt / 6.31 - w / 6.31)          # the DC-motor torque at this speed
    # along the law: its own torque (stall-capped), which is inside the envelope
    assert force == pytest.approx(np.minimum(np.abs(law), np.where(law * w < 0, env, 1.18)))
    # against the law the push drives the joint where the law brakes: fits the envelope too
    for push in (1.0, -1.0):
        assert (envelope_excess(push * force, w, 1.18, 6.31) <= 1e-12).all()
    assert (np.abs(vt) <= 6.31 + 1e-12).all()
    # a joint at the no-load speed with the law braking can be pushed neither way
    bank = ServoBank(1, ServoParams())
    bank.reset(np.zeros(1))
    _, f = bank.motor(np.array([0.5]), np.array([6.31]), 0.0)
    assert f[0] == 0.0


def test_walking_policy_torques_fit_the_envelope_at_each_steps_start_speed():
    """With randomised servos, pushes and contacts: every torque sample inside the envelope
    at the speed its physics step began with (the old force bound let the solver drive a
    joint against a braking law past the envelope: 2 samples in the worst episode here)."""
    from kraby_rl.evaluation.evaluate import evaluate
    from kraby_rl.resources import resolve_policy
    res = evaluate(resolve_policy("walk"), episodes=2, seconds=10.0, command=[0.15, 0, 0],
                   randomized=True, log=lambda *a: None)
    assert res["worst"]["envelope_violations"] == 0.0
    assert res["falls"] == 0


def test_a_torque_free_servo_reports_no_torque():
    """PyBullet keeps reporting a motor's last torque once its force bound is 0."""
    w = KrabyWorld(fixed_base=True)
    try:
        w.reset()
        goal = np.zeros(18)
        goal[0] = -0.43
        w.command(goal)
        for _ in range(3):
            w.step()
        assert abs(w.joint_states()[2][0]) > 0.01      # moving: torque on joint 0
        w.servo.enabled[0] = False
        w.step()
        assert w.joint_states()[2][0] == 0.0
    finally:
        w.close()


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
