"""Plausibility figures on hand-made records with known answers."""

import numpy as np
import pytest

from kraby_rl.core.gait_metrics import gait_figures, touchdowns


def test_touchdowns_ignore_flicker():
    c = np.array([1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1], dtype=bool)[:, None]
    assert touchdowns(c, min_swing_steps=2).tolist() == [2]  # the 1-step gap is flicker


def test_figures_known_answers():
    T, dt = 100, 0.02
    t = np.arange(T) * dt
    pos = np.stack([0.1 * t, np.zeros(T), np.full(T, 0.14)], axis=1)
    yaw = np.zeros(T)
    contact = np.zeros((T, 6), dtype=bool)
    contact[(np.arange(T) // 10) % 2 == 0] = True     # 10 steps on, 10 off: 2.5 Hz
    slip = np.where(contact, 0.01, 0.5)               # 0.5 m/s in the air must not count
    w = np.zeros((T, 18))
    w[:, 0] = 3.155
    tau = np.zeros((T, 18))
    tau[:, 0] = 0.79                                   # 0.2 N*m beyond the envelope
    f = gait_figures(dt, pos, yaw, contact, slip, w, tau, pos[:, 2], np.zeros(T), 1.18, 6.31)
    assert f["vx"] == pytest.approx(0.1 * 99 / 100)
    assert f["vy"] == pytest.approx(0.0)
    assert f["slip_mean"] == pytest.approx(0.01)
    assert f["step_freq_hz"] == pytest.approx(4 / 2.0)    # 4 touchdowns after the first in 2 s
    assert f["duty_factor"] == pytest.approx(0.5)
    assert f["joint_speed_peak_ratio"] == pytest.approx(0.5)
    assert f["envelope_violations"] == pytest.approx(1 / 18)
    assert f["envelope_excess_max"] == pytest.approx(0.2)
    assert f["drag_mean"] == 0.0                            # every leg walks


def test_a_limp_legs_dragged_foot_is_neither_stance_slip_nor_a_step():
    """Legs left out of ``legs`` (a limp leg: torque-free, its foot dragged) count for
    ``drag_mean`` only: the slip, step frequency and duty of the legs walked on are theirs."""
    T, dt = 100, 0.02
    t = np.arange(T) * dt
    pos = np.stack([0.1 * t, np.zeros(T), np.full(T, 0.14)], axis=1)
    contact = np.zeros((T, 6), dtype=bool)
    contact[(np.arange(T) // 10) % 2 == 0] = True          # walking legs: 2.5 Hz, duty 0.5
    contact[:, 1] = (np.arange(T) // 2) % 2 == 0           # lm dragged: touches, bounces
    slip = np.where(contact, 0.01, 0.5)
    slip[:, 1] = 0.2                                        # dragged
    args = (dt, pos, np.zeros(T), contact, slip, np.zeros((T, 18)), np.zeros((T, 18)),
            pos[:, 2], np.zeros(T), 1.18, 6.31)
    legs = np.array([True, False, True, True, True, True])
    every, walked = gait_figures(*args), gait_figures(*args, legs=legs)
    assert every["slip_mean"] > 0.03 and every["step_freq_hz"] > 3.0 and every["drag_mean"] == 0
    assert walked["slip_mean"] == pytest.approx(0.01)
    assert walked["step_freq_hz"] == pytest.approx(2.0)
    assert walked["duty_factor"] == pytest.approx(0.5)
    assert walked["drag_mean"] == pytest.approx(0.2)


def test_each_servo_is_checked_against_its_own_envelope():
    """A randomised episode's stronger servo may exceed the nominal envelope but not its own;
    a weaker one is held to its lower envelope."""
    T, dt = 20, 0.02
    pos = np.zeros((T, 3))
    w = np.full((T, 18), 3.155)            # half the nominal no-load speed
    tau = np.zeros((T, 18))
    tau[:, 0] = 0.65                        # nominal envelope here: 0.59 N*m
    tau[:, 1] = 0.55                        # inside the nominal envelope
    strength = np.ones(18)
    strength[0] = 1.15                      # its own envelope: 0.68 N*m
    strength[1] = 0.85                      # its own envelope: 0.50 N*m
    args = (dt, pos, np.zeros(T), np.zeros((T, 6), bool), np.zeros((T, 6)), w, tau,
            pos[:, 2], np.zeros(T))
    nominal = gait_figures(*args, 1.18, 6.31)
    own = gait_figures(*args, 1.18 * strength, np.full(18, 6.31))
    assert nominal["envelope_violations"] == pytest.approx(1 / 18)   # servo 0 only
    assert own["envelope_violations"] == pytest.approx(1 / 18)       # servo 1 only
    assert own["envelope_excess_max"] == pytest.approx(0.55 - 0.59 * 0.85)
    assert own["joint_speed_peak_ratio"] == pytest.approx(0.5)


def test_envelope_is_checked_at_the_speed_the_step_began_with():
    """The torque of a physics step is checked against the envelope at the step's start
    speed, with no allowance for the speed it ended with."""
    T, dt = 10, 0.02
    pos = np.zeros((T, 3))
    w_start = np.full((T, 18), 5.5)        # envelope at 5.5 rad/s: 0.15 N*m
    w_end = np.full((T, 18), 3.6)          # envelope at 3.6 rad/s: 0.51 N*m
    tau = np.zeros((T, 18))
    tau[:, 0] = 0.10                        # inside at the start speed
    tau[:, 1] = 0.25                        # fits the end speed only: a violation
    f = gait_figures(dt, pos, np.zeros(T), np.zeros((T, 6), bool), np.zeros((T, 6)), w_end,
                     tau, pos[:, 2], np.zeros(T), 1.18, 6.31, w_tau=w_start)
    assert f["envelope_violations"] == pytest.approx(1 / 18)
    assert f["envelope_excess_max"] == pytest.approx(0.25 - 1.18 * (1 - 5.5 / 6.31))
