"""Orientation helpers every layer shares: quaternions (x, y, z, w), REP 103 frames
(``base_link``: x forward, y left, z up), angles in radians. numpy and math only."""

from __future__ import annotations

import math

import numpy as np


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Quaternion (x, y, z, w) of R = Rz(yaw) Ry(pitch) Rx(roll)."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array([sr * cp * cy - cr * sp * sy, cr * sp * cy + sr * cp * sy,
                     cr * cp * sy - sr * sp * cy, cr * cp * cy + sr * sp * sy])


def euler_from_quat(q) -> tuple[float, float, float]:
    """(roll, pitch, yaw) [rad] of a quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in q)
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return roll, pitch, yaw


def quat_to_gravity(q) -> np.ndarray:
    """Unit gravity direction in the body frame of orientation ``q`` (x, y, z, w)."""
    x, y, z, w = (float(v) for v in q)
    n = x * x + y * y + z * z + w * w
    if not n > 0:
        raise ValueError(f"orientation: expected a non-zero quaternion, found {q!r}")
    return -np.array([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]) / n


def yaw_from_quat(q) -> float:
    """Heading [rad] (rotation about the world z axis) of a quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in q)
    return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def tilt_from_quat(q) -> float:
    """Angle [rad] between the body's z axis and the world's (0 = level), of a quaternion
    of any norm; inf for the all-zero quaternion (no orientation)."""
    x, y, z, w = (float(v) for v in q)
    norm = x * x + y * y + z * z + w * w
    if not norm > 0:
        return math.inf
    return math.acos(max(-1.0, min(1.0, (w * w + z * z - x * x - y * y) / norm)))


def tilt_from_gravity(gravity_body) -> float:
    """Angle [rad] between the body's z axis and the world's, from the unit gravity
    direction in the body frame (level: (0, 0, -1))."""
    return math.acos(max(-1.0, min(1.0, -float(gravity_body[2]))))


def is_unset(q) -> bool:
    """True for the all-zero quaternion: sensor_msgs' "no orientation" (an IMU without one
    fills it so, or with covariance[0] = -1)."""
    return all(float(v) == 0.0 for v in q)


FALL_HEIGHT_M = 0.07
"""A body lower than this [m] has fallen (the standing height is 0.14 m)."""
FALL_TILT_RAD = 1.0
"""A body tilted more than this [rad] has fallen."""


def fallen(height: float, gravity_body, body_contact: bool,
           fall_height_m: float = FALL_HEIGHT_M, fall_tilt_rad: float = FALL_TILT_RAD) -> bool:
    """The one fall test (training env, through-stack evaluation): body too low, tilted too
    far (gravity direction ``gravity_body`` in base_link), or touching the ground."""
    return bool(height < fall_height_m or tilt_from_gravity(gravity_body) > fall_tilt_rad
                or body_contact)
