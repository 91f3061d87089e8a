"""Leg forward and inverse kinematics of Kraby in ``base_link``.

Geometry and sign conventions are those of ``core.joints`` (read its module docstring).
All positions are foot-sphere centres [m] in ``base_link`` (x forward, y left, z up).
"""

from __future__ import annotations

import numpy as np

from kraby_rl.core import joints as J

_HIP = np.array([[x, y, 0.0] for x, y in J.HIP_XY])          # (6, 3) [m]
_YAW = np.array(J.HIP_YAW)                                    # (6,) [rad]
_COS, _SIN = np.cos(_YAW), np.sin(_YAW)


def foot_positions(q: np.ndarray) -> np.ndarray:
    """Foot-sphere centres of all legs.

    Args:
        q: (18,) joint angles [rad], order ``JOINT_NAMES``.

    Returns:
        (6, 3) foot positions [m] in ``base_link``, leg order ``LEG_PREFIXES``.
    """
    q = np.asarray(q, dtype=float).reshape(6, 3)
    c, f, t = q[:, 0], q[:, 1], q[:, 2]
    r = J.COXA_LENGTH + J.FEMUR_LENGTH * np.cos(f) + J.TIBIA_LENGTH * np.sin(f + t)
    z = J.FEMUR_LENGTH * np.sin(f) - J.TIBIA_LENGTH * np.cos(f + t)
    xl, yl = r * np.cos(c), r * np.sin(c)
    out = _HIP.copy()
    out[:, 0] += _COS * xl - _SIN * yl
    out[:, 1] += _SIN * xl + _COS * yl
    out[:, 2] += z
    return out


def leg_inverse(feet: np.ndarray) -> np.ndarray:
    """Joint angles that put each foot at the requested position (knee-up solution).

    Args:
        feet: (6, 3) foot-sphere centres [m] in ``base_link``.

    Returns:
        (18,) joint angles [rad], order ``JOINT_NAMES``. Unreachable targets are brought
        to the nearest reachable distance along the same direction.
    """
    feet = np.asarray(feet, dtype=float).reshape(6, 3)
    d = feet - _HIP
    xl = _COS * d[:, 0] + _SIN * d[:, 1]
    yl = -_SIN * d[:, 0] + _COS * d[:, 1]
    c = np.arctan2(yl, xl)
    dx = np.hypot(xl, yl) - J.COXA_LENGTH
    dz = d[:, 2]
    l2, l3 = J.FEMUR_LENGTH, J.TIBIA_LENGTH
    s = np.clip((dx * dx + dz * dz - l2 * l2 - l3 * l3) / (2 * l2 * l3), -1.0, 1.0)
    t = np.arcsin(s)
    f = np.arctan2(dz, dx) - np.arctan2(-l3 * np.cos(t), l2 + l3 * np.sin(t))
    f = (f + np.pi) % (2 * np.pi) - np.pi
    return np.stack([c, f, t], axis=1).reshape(18)


DEFAULT_FEET = foot_positions(J.DEFAULT_POSE)
"""(6, 3) foot positions [m] in base_link in the default standing pose."""
