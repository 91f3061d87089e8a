"""The safety shield logic on hand-made timelines."""

import math

import numpy as np
import pytest

from kraby_rl.core import joints as J
from kraby_rl.core.safety import SafetyShield, ShieldLimits

NAMES = list(J.JOINT_NAMES)
POSE = J.DEFAULT_POSE.copy()


def running(limits=None, t=0.0):
    shield = SafetyShield(limits or ShieldLimits())
    assert shield.update(t).command is None and shield.state == "WAITING"
    shield.on_joint_state(NAMES, POSE, t)
    return shield


def test_waits_for_state_then_holds_the_measured_pose_until_a_target():
    shield = running()
    out = shield.update(0.01)
    assert out.state == "OK" and np.allclose(out.command, POSE)


def test_rejects_bad_targets_and_counts_them():
    shield = running()
    assert "non-finite target nan for joint lf_femur" in shield.on_target(
        NAMES, np.where(np.arange(18) == 1, np.nan, POSE), 0.0)
    assert "wrong length: 18 names but 17 positions" in shield.on_target(NAMES, POSE[:17], 0.0)
    assert f"missing ['{NAMES[-1]}']" in shield.on_target(NAMES[:17], POSE[:17], 0.0)
    assert "unknown joint 'tail'" in shield.on_target(NAMES[:17] + ["tail"], POSE, 0.0)
    assert shield.rejected == {"non_finite": 1, "wrong_length": 2, "unknown_name": 1}
    assert np.allclose(shield.update(0.02).command, POSE)   # nothing bad got through


def test_targets_in_any_order_are_clamped_and_rate_limited():
    shield = running(ShieldLimits(max_rate_rad_s=2.0))
    goal = POSE.copy()
    goal[0] = 5.0                      # far beyond the coxa limit
    order = NAMES[::-1]
    shield.on_target(order, goal[::-1], 0.0)
    shield.update(0.0)
    out = shield.update(0.02)
    assert out.clamped == ["lf_coxa"]
    assert out.command[0] == pytest.approx(POSE[0] + 2.0 * 0.02)   # rate limited
    for k in range(2, 200):
        shield.on_target(order, goal[::-1], k * 0.02)
        out = shield.update(k * 0.02)
        shield.on_joint_state(NAMES, POSE, k * 0.02)
    assert out.command[0] == pytest.approx(J.SOFT_UPPER[0])        # clamped to the limit


def test_estop_latches_until_reset_after_release_and_resumes_from_measured_pose():
    shield = running()
    shield.on_target(NAMES, POSE + 0.05, 0.0)
    shield.update(0.0)
    shield.on_estop(True, 0.01)
    out = shield.update(0.02)
    assert out.state == "ESTOP" and out.command is None
    assert [t.cause for t in out.trips] == ["estop"]
    assert shield.update(0.03).trips == []                      # logged once
    shield.on_joint_state(NAMES, POSE + 0.2, 0.03)
    assert "emergency_stop is still true" in shield.reset(0.03)
    shield.on_estop(False, 0.04)
    assert shield.state == "ESTOP"                              # false alone does not release
    assert shield.reset(0.04) is None
    out = shield.update(0.05)
    assert out.state == "OK" and np.allclose(out.command, POSE + 0.2)  # measured, not old target


def test_stale_command_holds_the_pose_measured_at_the_trip():
    shield = running(ShieldLimits(command_timeout_s=0.1))
    shield.on_target(NAMES, POSE, 0.0)
    for k in range(1, 6):
        shield.on_joint_state(NAMES, POSE + 0.01 * k, k * 0.02)
        assert shield.update(k * 0.02).state == "OK"
    shield.on_joint_state(NAMES, POSE + 0.3, 0.11)
    out = shield.update(0.12)
    assert out.state == "FAULT:stale_command"
    trip = out.trips[0]
    assert trip.value == pytest.approx(0.12) and trip.limit == 0.1
    assert "no target for 0.120 s (limit 0.100 s)" in trip.describe()
    assert np.allclose(out.command, POSE + 0.3)


def test_stale_state_and_tilt_trip_and_reset_needs_the_cause_cleared():
    shield = running(ShieldLimits(state_timeout_s=0.1, max_tilt_rad=0.5))
    shield.update(0.05)
    out = shield.update(0.2)
    assert out.state == "FAULT:stale_state"
    assert "joint states are stale" in shield.reset(0.2)
    shield.on_joint_state(NAMES, POSE, 0.25)
    shield.on_tilt(0.7, 0.25)
    assert "tilt 0.700 rad is over the limit 0.500 rad" in shield.reset(0.25)
    shield.on_tilt(0.1, 0.26)
    assert shield.reset(0.26) is None and shield.update(0.27).state == "OK"
    shield.on_tilt(0.9, 0.28)
    out = shield.update(0.29)
    assert out.state == "FAULT:tilt" and "tilt 0.900 rad over the limit 0.500" in \
        out.trips[0].describe()


def test_heartbeat_mode_stops_when_false_stops_arriving():
    shield = running(ShieldLimits(heartbeat_timeout_s=0.2))
    shield.on_estop(False, 0.0)
    assert shield.update(0.1).state == "OK"
    shield.on_joint_state(NAMES, POSE, 0.3)
    out = shield.update(0.3)
    assert out.state == "ESTOP" and out.trips[0].cause == "heartbeat"


@pytest.mark.parametrize("kwargs,match", [
    ({"max_rate_rad_s": 0.0}, "max_rate_rad_s: expected a positive number"),
    ({"command_timeout_s": -1.0}, "command_timeout_s: expected a number >= 0"),
    ({"max_tilt_rad": math.nan}, "max_tilt_rad"),
    ({"lower": J.SOFT_UPPER, "upper": J.SOFT_LOWER}, "lower must be below upper"),
])
def test_limits_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ShieldLimits(**kwargs)


def test_a_late_cycle_defers_the_age_checks_to_the_next_not_the_tilt_check():
    limits = ShieldLimits(state_timeout_s=0.15, max_tilt_rad=0.5)
    shield = running(limits)
    shield.update(0.02)
    # the shield's own process was starved for 0.5 s: states sit queued behind its timer
    out = shield.update(0.5, judge_ages=False)
    assert out.state == "OK" and not out.trips
    shield.on_joint_state(NAMES, POSE, 0.5)               # the queued state, taken next
    assert shield.update(0.52).state == "OK"
    # a sensor that really went silent still trips on the next judged cycle
    assert shield.update(0.8, judge_ages=False).state == "OK"
    out = shield.update(0.82)
    assert out.state == "FAULT:stale_state" and out.trips[0].cause == "stale_state"
    tilted = running(limits)
    tilted.update(0.02)
    tilted.on_tilt(0.7, 0.03)
    assert tilted.update(0.5, judge_ages=False).state == "FAULT:tilt"


def test_a_servo_fault_stops_and_holds_until_it_is_cleared_and_reset():
    shield = SafetyShield(ShieldLimits(command_timeout_s=0.0, state_timeout_s=0.0))
    shield.on_joint_state(NAMES, POSE, 0.0)
    shield.on_target(NAMES, POSE + 0.05, 0.0)
    shield.update(0.5)
    measured = POSE + 0.02
    shield.on_joint_state(NAMES, measured, 0.5)
    shield.on_servo_faults({"lm_femur": "overload"}, 0.51)
    out = shield.update(0.52)
    assert out.state == "FAULT:servo_fault" and np.allclose(out.command, measured)
    assert out.trips[0].describe() == "servo fault: lm_femur (overload)"
    shield.on_joint_state(NAMES, measured, 0.6)
    assert shield.reset(0.6) == ("cannot reset FAULT:servo_fault: servo fault still "
                                 "reported: lm_femur (overload)")
    shield.on_servo_faults({}, 0.7)                   # cleared (kraby servo clear)
    assert shield.reset(0.7) is None and shield.state == "OK"


def test_with_continue_a_servo_fault_is_reported_and_the_robot_walks_on():
    shield = SafetyShield(ShieldLimits(command_timeout_s=0.0), on_servo_fault="continue")
    shield.on_joint_state(NAMES, POSE, 0.0)
    shield.on_target(NAMES, POSE, 0.0)
    shield.on_servo_faults({"lm_femur": "overload", "rf_tibia": "driver fault"}, 0.1)
    out = shield.update(0.1)
    assert out.state == "OK" and out.trips == [] and out.command is not None
    assert shield.servo_faults == {"lm_femur": "overload", "rf_tibia": "driver fault"}
    with pytest.raises(ValueError, match="on_servo_fault: expected one of stop, continue, "
                                         "found 'ignore'"):
        SafetyShield(on_servo_fault="ignore")
