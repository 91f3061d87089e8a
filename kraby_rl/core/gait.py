"""An open-loop gait generator (reference gait, baseline and test fixture).

``tripod`` (the default): legs ``lf, lr, rm`` and ``lm, rr, rf`` alternate. ``ripple``:
on each side the legs step in turn from back to front, a third of a cycle apart, the two
sides half a cycle apart; with a duty over 2/3 at least four feet carry the body at any
time, so it still stands (and walks) on five legs when one is limp. In stance a foot moves
straight back under the body at the commanded body velocity; in swing it returns, lifted on
a half sine. Feet follow the default stance positions of ``core.kinematics``; joint angles
come from the leg inverse kinematics.

Limp legs (``feet(..., limp=mask)``, from the observation's ``leg_err``): a limp leg is held
at its stance position and the working legs walk a *wave*: in the order of ``WAVE_ORDER``
(each side back to front, the left side first), evenly spaced over the cycle, each in the
air for ``1 - WAVE_DUTY[n]`` of it (``n`` working legs), so that at most one working leg
swings at a time. Two more things help the body over fewer legs (both 0 by default): it
sways ``limp_shift`` of the way toward the centroid of the feet on the ground (for each
working leg, the centroid of the others' stance positions, blended over the cycle so that
the body is over the support of the leg in the air while it swings: the working feet move
by as much the other way), and crouches by ``limp_crouch_m`` (the working feet rise by as
much), so it sags less toward the missing legs and the feet it stands on slip less.
Without the wave the tripod turns on the spot and the ripple loses a third of its speed
with one limp leg, and both crawl with two (``policies/ripple_limp/README.md``).
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
WAVE_ORDER = (2, 1, 0, 3, 4, 5)
"""Swing order of the working legs when legs are limp (indices of ``LEG_PREFIXES``: lr, lm,
lf, rr, rm, rf)."""
WAVE_DUTY = {5: 0.82, 4: 0.86}
"""Duty factor of the wave on ``n`` working legs (one leg swings at a time; measured with
``policies/ripple_limp``: on five legs 0.82 walks 0.12 m/s at 0.15 with step frequencies under
3 Hz, 0.86 chatters past 3 Hz; on four, 0.86 keeps two of the three pairs walking where
0.84 and lower let the body sag and the feet slip). Fewer legs: ``WAVE_DUTY_FEW``."""
LIMP_CROUCH_MAX = 0.04
"""[m] largest ``limp_crouch_m`` (the legs' reach keeps the stride)."""
WAVE_DUTY_FEW = 0.9
"""Duty of the wave on three working legs or fewer (it cannot stand statically on them)."""


class TripodGait:
    """The gait generator: tripod (default) or ripple (``pattern``).

    Args:
        frequency_hz: step cycles per second (each leg steps once per cycle) [Hz].
        duty: fraction of the cycle a foot is on the ground (0.5 = pure tripod).
        lift_m: foot lift at mid-swing [m].
        stride_scale: stride length over the one that moves the foot at the commanded
            body velocity in stance (1 = no slip assumed; more makes up for lag and slip).
        pattern: which legs step when: a key of ``PATTERNS``.
        limp_shift: with limp legs, the fraction of the way the body sways toward the
            centroid of the feet on the ground (0..1).
        limp_crouch_m: with limp legs, how much lower the body walks [m] (0..0.04).
    """

    def __init__(self, frequency_hz: float, duty: float, lift_m: float,
                 stride_scale: float, pattern: str, limp_shift: float = 0.0,
                 limp_crouch_m: float = 0.0):
        if not 0 < frequency_hz <= 5:
            raise ValueError(f"frequency_hz must be in (0, 5], found {frequency_hz!r}")
        if not 0.3 <= duty < 1:
            raise ValueError(f"duty must be in [0.3, 1), found {duty!r}")
        if not 0.5 <= stride_scale <= 2.0:
            raise ValueError(f"stride_scale must be in [0.5, 2], found {stride_scale!r}")
        if pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {sorted(PATTERNS)}, found {pattern!r}")
        if not 0 <= limp_shift <= 1:
            raise ValueError(f"limp_shift must be in [0, 1], found {limp_shift!r}")
        if not 0 <= limp_crouch_m <= LIMP_CROUCH_MAX:
            raise ValueError(f"limp_crouch_m must be in [0, {LIMP_CROUCH_MAX}] m, found "
                             f"{limp_crouch_m!r}")
        self.limp_shift = float(limp_shift)
        self.limp_crouch = float(limp_crouch_m)
        self.offsets = PATTERNS[pattern]
        self.frequency = float(frequency_hz)
        self.stride_scale = float(stride_scale)
        self.duty = float(duty)
        self.lift = float(lift_m)

    def timing(self, limp=None) -> tuple[np.ndarray, float, np.ndarray]:
        """(phase offsets (6,), duty, working-leg mask (6,)) of the gait with the legs of
        the boolean mask ``limp`` (order ``LEG_PREFIXES``) limp: the pattern's when none is
        (or every leg is), else the wave of the working legs (module docstring)."""
        if limp is None or not np.any(limp) or np.all(limp):
            return self.offsets, self.duty, np.ones(6, dtype=bool)
        working = ~np.asarray(limp, dtype=bool)
        order = [k for k in WAVE_ORDER if working[k]]
        offsets = np.zeros(6)
        for i, k in enumerate(order):
            offsets[k] = (-i / len(order)) % 1.0
        duty = max(self.duty, WAVE_DUTY.get(len(order), WAVE_DUTY_FEW))
        return offsets, duty, working

    def support_centroid(self, t: float, offsets, duty: float, working) -> np.ndarray:
        """(2,) [m] where the body sways to at time ``t`` with limp legs: for each working
        leg, the centroid of the other working legs' stance positions, weighted by
        ``cos^2`` of the distance of the cycle phase from that leg's mid-swing (zero a slot
        of the wave away; the weights sum to 1)."""
        legs = np.flatnonzero(working)
        n = len(legs)
        p = (self.frequency * t) % 1.0
        out = np.zeros(2)
        for k in legs:
            mid = ((duty + 1.0) / 2.0 - offsets[k]) % 1.0      # phase of k's mid-swing
            d = abs((p - mid + 0.5) % 1.0 - 0.5)
            if d < 1.0 / n:
                others = legs[legs != k]
                out += math.cos(math.pi * d * n / 2.0) ** 2 * \
                    K.DEFAULT_FEET[others, :2].mean(axis=0)
        return out

    def feet(self, t: float, command, limp=None) -> np.ndarray:
        """(6, 3) foot targets [m] in base_link at time ``t`` [s].

        Args:
            command: (vx [m/s], vy [m/s], yaw rate [rad/s]) in base_link.
            limp: (6,) bool, legs (order ``LEG_PREFIXES``) that do not follow their
                targets: held at their stance position, the others walk a wave; None: none.
        """
        vx, vy, wz = (float(c) for c in command)
        nominal = K.DEFAULT_FEET
        offsets, duty, working = self.timing(limp)
        t_stance = self.stride_scale * duty / self.frequency
        # stride vector of each foot over one stance: body velocity at the foot
        dx = (vx - wz * nominal[:, 1]) * t_stance
        dy = (vy + wz * nominal[:, 0]) * t_stance
        out = nominal.copy()
        if vx == 0.0 and vy == 0.0 and wz == 0.0:
            return out
        if not working.all():            # limp legs: the body over the feet down, lower
            out[working, :2] -= self.limp_shift * self.support_centroid(t, offsets, duty,
                                                                        working)
            out[working, 2] += self.limp_crouch
        phase = (self.frequency * t + offsets) % 1.0
        for k in np.flatnonzero(working):
            ph = phase[k]
            if ph < duty:                            # stance: front -> back
                s = ph / duty
                frac, lift = 0.5 - s, 0.0
            else:                                    # swing: back -> front, lifted
                s = (ph - duty) / (1.0 - duty)
                frac, lift = s - 0.5, self.lift * math.sin(math.pi * s)
            out[k, 0] += frac * dx[k]
            out[k, 1] += frac * dy[k]
            out[k, 2] += lift
        return out

    def joint_targets(self, t: float, command) -> np.ndarray:
        """(18,) joint targets [rad], order ``JOINT_NAMES``."""
        return K.leg_inverse(self.feet(t, command))
