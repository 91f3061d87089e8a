"""An open-loop gait generator (reference gait, baseline and test fixture).

``tripod`` (the default): legs ``lf, lr, rm`` and ``lm, rr, rf`` alternate. ``ripple``:
on each side the legs step in turn from back to front, a third of a cycle apart, the two
sides half a cycle apart; with a duty over 2/3 at least four feet carry the body at any
time, so it still stands (and walks) on five legs when one is limp. In stance a foot moves
straight back under the body at the commanded body velocity; in swing it returns, lifted on
a half sine. Feet follow the default stance positions of ``core.kinematics``; joint angles
come from the leg inverse kinematics.
"""

from __future__ import annotations

import math

import numpy as np

from kraby_rl.core import kinematics as K

TRIPOD_OFFSETS = np.array([0.0, 0.5, 0.0, 0.5, 0.0, 0.5])
"""Phase offset of each leg, order ``LEG_PREFIXES`` (lf, lm, lr, rr, rm, rf)."""
RIPPLE_OFFSETS = np.array([0.0, 1 / 3, 2 / 3, 1 / 6, 5 / 6, 0.5])
"""Ripple gait: rear, middle, front leg of a side a third of a cycle apart (a leg with a
larger offset swings earlier), the right side half a cycle after the left."""
PATTERNS = {"tripod": TRIPOD_OFFSETS, "ripple": RIPPLE_OFFSETS}


class TripodGait:
    """The gait generator: tripod (default) or ripple (``pattern``).

    Args:
        frequency_hz: step cycles per second (each leg steps once per cycle) [Hz].
        duty: fraction of the cycle a foot is on the ground (0.5 = pure tripod).
        lift_m: foot lift at mid-swing [m].
        stride_scale: stride length over the one that moves the foot at the commanded
            body velocity in stance (1 = no slip assumed; more makes up for lag and slip).
        pattern: which legs step when: a key of ``PATTERNS``.
    """

    def __init__(self, frequency_hz: float, duty: float, lift_m: float,
                 stride_scale: float, pattern: str):
        if not 0 < frequency_hz <= 5:
            raise ValueError(f"frequency_hz must be in (0, 5], found {frequency_hz!r}")
        if not 0.3 <= duty < 1:
            raise ValueError(f"duty must be in [0.3, 1), found {duty!r}")
        if not 0.5 <= stride_scale <= 2.0:
            raise ValueError(f"stride_scale must be in [0.5, 2], found {stride_scale!r}")
        if pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {sorted(PATTERNS)}, found {pattern!r}")
        self.offsets = PATTERNS[pattern]
        self.frequency = float(frequency_hz)
        self.stride_scale = float(stride_scale)
        self.duty = float(duty)
        self.lift = float(lift_m)

    def feet(self, t: float, command) -> np.ndarray:
        """(6, 3) foot targets [m] in base_link at time ``t`` [s].

        Args:
            command: (vx [m/s], vy [m/s], yaw rate [rad/s]) in base_link.
        """
        vx, vy, wz = (float(c) for c in command)
        nominal = K.DEFAULT_FEET
        t_stance = self.stride_scale * self.duty / self.frequency
        # stride vector of each foot over one stance: body velocity at the foot
        dx = (vx - wz * nominal[:, 1]) * t_stance
        dy = (vy + wz * nominal[:, 0]) * t_stance
        out = nominal.copy()
        if vx == 0.0 and vy == 0.0 and wz == 0.0:
            return out
        phase = (self.frequency * t + self.offsets) % 1.0
        for k in range(6):
            ph = phase[k]
            if ph < self.duty:                       # stance: front -> back
                s = ph / self.duty
                frac, lift = 0.5 - s, 0.0
            else:                                    # swing: back -> front, lifted
                s = (ph - self.duty) / (1.0 - self.duty)
                frac, lift = s - 0.5, self.lift * math.sin(math.pi * s)
            out[k, 0] += frac * dx[k]
            out[k, 1] += frac * dy[k]
            out[k, 2] += lift
        return out

    def joint_targets(self, t: float, command) -> np.ndarray:
        """(18,) joint targets [rad], order ``JOINT_NAMES``."""
        return K.leg_inverse(self.feet(t, command))
