"""Servo units <-> SI: the one place where counts become radians.

Every conversion takes each joint's ``zero_counts`` and ``direction`` from the core joint
table (``kraby_rl.core.joints``), so arrays are (18,) in canonical joint order (= servo ID
order). Outside ``kraby_rl.herkulex`` nothing sees counts.
"""

from __future__ import annotations

import math

import numpy as np

from kraby_rl.core import joints as J

COUNT_RAD = math.radians(0.325)
"""One position count [rad] (0.325 deg, manual p.29)."""
TICK_S = 0.0112
"""Herkulex time unit [s]: playtime, differential position, periods."""
VELOCITY_COUNT_RAD_S = math.radians(29.09)
"""One count of differential position (RAM 62) [rad/s] (29.09 deg/s, manual p.29)."""
MAX_COUNTS = 1023
PWM_FULL = 1023
VOLTAGE_LSB = 0.074
"""Volts per count of the voltage register (RAM 54)."""
"""PWM register value at 100 % duty."""


def counts_to_rad(counts) -> np.ndarray:
    """Calibrated positions [counts] (18,) -> joint angles [rad] (18,)."""
    c = np.asarray(counts, dtype=float)
    return J.DIRECTION * (c - J.ZERO_COUNTS) * COUNT_RAD


def rad_to_counts(q) -> np.ndarray:
    """Joint angles [rad] (18,) -> calibrated goal positions [counts] (18,), int, 0..1023.

    Raises:
        ValueError: if an angle is not finite.
    """
    q = np.asarray(q, dtype=float)
    if q.shape != (J.NUM_JOINTS,):
        raise ValueError(f"joint angles must have shape (18,), found {q.shape}")
    bad = ~np.isfinite(q)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"joint angle of {J.JOINT_NAMES[i]} must be finite, found {q[i]}")
    c = np.rint(J.ZERO_COUNTS + J.DIRECTION * q / COUNT_RAD)
    return np.clip(c, 0, MAX_COUNTS).astype(np.int64)


def diff_to_rad_s(diff) -> np.ndarray:
    """Differential positions [counts per 11.2 ms] (18,) -> joint speeds [rad/s] (18,)."""
    return J.DIRECTION * np.asarray(diff, dtype=float) * VELOCITY_COUNT_RAD_S


def pwm_to_effort(pwm, w) -> np.ndarray:
    """Estimated joint torque [N*m] (18,) from PWM (18,) and joint speed [rad/s] (18,).

    The DC-motor law of the servo model: ``tau = tau_stall * (duty - w / w_noload)``
    with the duty's sign in joint direction.
    """
    duty = J.DIRECTION * np.asarray(pwm, dtype=float) / PWM_FULL
    return J.MAX_EFFORT * (duty - np.asarray(w, dtype=float) / J.MAX_VELOCITY)


def playtime_ticks(seconds: float) -> int:
    """A move duration [s] -> playtime [ticks], 0..255 (rounded, clipped)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"playtime must be a finite duration >= 0 s, found {seconds!r}")
    return int(min(255, round(seconds / TICK_S)))
