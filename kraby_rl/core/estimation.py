"""Body state from joint angles (and an IMU when there is one): leg odometry.

Per update, the feet are placed in ``base_link`` by forward kinematics and turned into a
gravity-aligned frame with the current roll and pitch. The feet lowest above the ground
(within ``stance_margin_m`` of the lowest) are in stance; a stance foot does not move on
the ground, so the body moves opposite to how the stance feet move in the body frame.

* Orientation: from the IMU when there is one (yaw taken relative to its first reading, so
  ``odom`` starts aligned with the robot, REP 105); without one, roll and pitch from the
  plane through the stance feet and yaw integrated from how the stance feet turn.
* Angular rate: the IMU gyro, else the rate of the estimated orientation.
* Height: of ``base_link`` above the ground under the stance feet.
* Planar velocity: leg odometry over feet in stance at both updates, low-pass filtered.

All SI; quaternions (x, y, z, w); frames REP 103 (``base_link``: x forward, y left, z up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.core import kinematics as K
from kraby_rl.core.geometry import (euler_from_quat, quat_from_euler,  # noqa: F401
                                    quat_to_gravity)


def rot_rp(roll: float, pitch: float) -> np.ndarray:
    """Ry(pitch) Rx(roll): base_link -> gravity-aligned, heading-fixed frame."""
    cr, sr, cp, sp = math.cos(roll), math.sin(roll), math.cos(pitch), math.sin(pitch)
    return np.array([[cp, sp * sr, sp * cr], [0.0, cr, -sr], [-sp, cp * sr, cp * cr]])


@dataclass
class Estimate:
    """One estimate of the body state.

    Attributes:
        t: time of the joint measurement [s].
        position: (3,) base_link origin in ``odom`` [m] (z = height above the ground).
        orientation: (4,) base_link in ``odom``, quaternion x, y, z, w.
        lin_vel_body: (3,) linear velocity in base_link [m/s] (z is 0: not estimated).
        ang_vel_body: (3,) angular velocity in base_link [rad/s].
        stance: (6,) bool, feet judged on the ground, order ``LEG_PREFIXES``.
        imu: whether an IMU contributed.
    """

    t: float
    position: np.ndarray
    orientation: np.ndarray
    lin_vel_body: np.ndarray
    ang_vel_body: np.ndarray
    stance: np.ndarray
    imu: bool


class LegOdometry:
    """Leg-odometry state estimator (see the module docstring).

    Args:
        stance_margin_m: a foot within this height of the lowest one is in stance [m].
        velocity_tau_s: time constant of the velocity low-pass filter [s].
        max_dt_s: a gap longer than this restarts the velocity estimate [s].
    """

    def __init__(self, stance_margin_m: float = 0.003, velocity_tau_s: float = 0.1,
                 max_dt_s: float = 0.5):
        for name, v in (("stance_margin_m", stance_margin_m), ("velocity_tau_s", velocity_tau_s),
                        ("max_dt_s", max_dt_s)):
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"{name} must be > 0, found {v!r}")
        self.margin = float(stance_margin_m)
        self.tau = float(velocity_tau_s)
        self.max_dt = float(max_dt_s)
        self.reset()

    def reset(self) -> None:
        self.t = None
        self.feet = None
        self.stance = np.ones(6, dtype=bool)
        self.xy = np.zeros(2)
        self.yaw = 0.0
        self.roll = self.pitch = 0.0
        self.v = np.zeros(2)
        self.w = np.zeros(3)
        self.yaw0 = None
        self.imu_t = None

    def _tilt_from_feet(self, feet_b, stance):
        """(roll, pitch) of the plane through the stance feet (least squares)."""
        p = feet_b[stance] if stance.sum() >= 3 else feet_b
        A = np.c_[p[:, 0], p[:, 1], np.ones(len(p))]
        (a, b, _), *_ = np.linalg.lstsq(A, p[:, 2], rcond=None)
        # ground plane z = a x + b y in base_link: its normal there is (-a, -b, 1)
        n = np.array([-a, -b, 1.0]) / math.sqrt(a * a + b * b + 1.0)
        # n is world-up expressed in base_link: up_b = R^T e_z
        pitch = math.asin(max(-1.0, min(1.0, -n[0])))
        roll = math.atan2(n[1], n[2])
        return roll, pitch

    def update(self, t: float, q, imu_quat=None, imu_gyro=None) -> Estimate:
        """Fold in one joint measurement (and IMU sample, if any).

        Args:
            t: measurement time [s].
            q: (18,) joint angles [rad], order ``JOINT_NAMES``.
            imu_quat: (4,) IMU orientation x, y, z, w, or None.
            imu_gyro: (3,) IMU angular velocity in base_link [rad/s], or None.
        """
        q = np.asarray(q, dtype=float)
        if q.shape != (J.NUM_JOINTS,) or not np.all(np.isfinite(q)):
            raise ValueError(f"joint angles: expected 18 finite values, found {q!r}")
        feet_b = K.foot_positions(q)
        qq = q.reshape(6, 3)
        phi, psi = qq[:, 1] + qq[:, 2], np.asarray(J.HIP_YAW) + qq[:, 0]
        dt = None if self.t is None else t - self.t
        if dt is not None and not 0 < dt <= self.max_dt:
            dt = None                                   # a gap or a repeat: restart rates
        imu = imu_quat is not None
        prev_roll, prev_pitch = self.roll, self.pitch
        if imu:
            roll, pitch, yaw_abs = euler_from_quat(imu_quat)
            if self.yaw0 is None:
                self.yaw0 = yaw_abs - self.yaw
            self.roll, self.pitch = roll, pitch
        # stance: lowest feet in the gravity-aligned frame
        z = (rot_rp(self.roll, self.pitch) @ feet_b.T)[2]
        stance = z <= z.min() + self.margin
        if not imu:
            self.roll, self.pitch = self._tilt_from_feet(feet_b, stance)
        Rrp = rot_rp(self.roll, self.pitch)
        feet_g = (Rrp @ feet_b.T).T
        height = float(-feet_g[stance, 2].mean() + J.FOOT_RADIUS)
        if dt is not None:
            both = stance & self.stance
            if not both.any():
                both = stance
            prev_g = (Rrp @ self.feet.T).T
            a, b = prev_g[both, :2], feet_g[both, :2]
            # yaw turned by the body = minus the rotation of the stance feet about their centre
            ca, cb = a.mean(axis=0), b.mean(axis=0)
            da, db = a - ca, b - cb
            dpsi = -math.atan2(float(np.sum(da[:, 0] * db[:, 1] - da[:, 1] * db[:, 0])),
                               float(np.sum(da * db))) if len(a) >= 2 else 0.0
            if imu:
                yaw = yaw_abs - self.yaw0
                dpsi = (yaw - self.yaw + math.pi) % (2 * math.pi) - math.pi
            # body displacement in the previous heading frame: a - Rz(dpsi) b
            c, s = math.cos(dpsi), math.sin(dpsi)
            b_rot = np.c_[c * b[:, 0] - s * b[:, 1], s * b[:, 0] + c * b[:, 1]]
            # a stance foot is a sphere rolling without slipping: its centre moves by
            # -r dphi (cos psi, sin psi) when its link pitches by dphi (phi = femur + tibia,
            # psi = heading of the leg plane)
            lean = np.c_[np.cos(psi), np.sin(psi)][both]
            roll = -J.FOOT_RADIUS * (phi - self.phi)[both, None] * lean
            d_xy = np.median(a - b_rot + roll, axis=0)
            v_raw = d_xy / dt
            k = dt / (self.tau + dt)
            self.v += k * (v_raw - self.v)
            cy, sy = math.cos(self.yaw), math.sin(self.yaw)
            self.xy += np.array([cy * d_xy[0] - sy * d_xy[1], sy * d_xy[0] + cy * d_xy[1]])
            self.yaw = (self.yaw + dpsi + math.pi) % (2 * math.pi) - math.pi
            w_est = np.array([(self.roll - prev_roll) / dt, (self.pitch - prev_pitch) / dt,
                              dpsi / dt])
            self.w += k * (w_est - self.w)
        elif imu:
            self.yaw = (yaw_abs - self.yaw0 + math.pi) % (2 * math.pi) - math.pi
        if imu_gyro is not None:
            self.w = np.asarray(imu_gyro, dtype=float).copy()
        self.t, self.feet, self.stance, self.phi = t, feet_b, stance, phi
        # velocity in base_link from the heading frame (undo roll and pitch)
        v_h = np.array([self.v[0], self.v[1], 0.0])
        return Estimate(t=t, position=np.array([self.xy[0], self.xy[1], height]),
                        orientation=quat_from_euler(self.roll, self.pitch, self.yaw),
                        lin_vel_body=Rrp.T @ v_h, ang_vel_body=self.w.copy(),
                        stance=stance.copy(), imu=imu)


class ImuPairing:
    """Pairs each joint measurement with the IMU sample nearest to it in *stamp* time, the
    same whichever of the two topics a process happens to read first.

    A joint measurement stamped ``t`` is released when it can be paired for good: an IMU
    sample stamped at or after ``t`` is there (so none nearer can still come, one topic's
    samples arriving in order), or the next joint measurement has come (wait bounded by one
    joint period), or the IMU has been silent for ``timeout`` (it is gone), or none has come
    within ``timeout`` of the first joint measurement (a robot without one). The pair is the
    nearest IMU sample within ``timeout`` of ``t``, else none.

    Pairing by arrival instead (the latest sample read) made the odometry depend on which
    message the executor took first: a replay of a recording into a fresh estimator drifted
    from the live estimate by centimetres over a metre.
    """

    def __init__(self, timeout: float, keep: int = 64):
        if not timeout > 0:
            raise ValueError(f"imu timeout: expected a positive time [s], found {timeout!r}")
        self.timeout = float(timeout)
        self.keep = keep
        self.imu: list[tuple[float, object]] = []   # (stamp, sample), stamp-ordered
        self.pending: list[tuple[float, object]] = []
        self.first_joint = None

    def add_imu(self, t: float, sample) -> list:
        """Adds an IMU sample stamped ``t`` [s]; returns the [(t, joint, imu or None)] it
        releases."""
        if self.imu and t < self.imu[-1][0]:
            self.imu.clear()                        # time went back (a replay restarted)
        self.imu.append((t, sample))
        del self.imu[:-self.keep]
        return self._release()

    def add_joints(self, t: float, joints) -> list:
        """Adds a joint measurement stamped ``t`` [s]; returns the [(t, joint, imu or
        None)] it releases, in arrival order."""
        if self.first_joint is None or (self.pending and t < self.pending[-1][0]):
            self.first_joint = t
        self.pending.append((t, joints))
        return self._release()

    def _ready(self, t: float) -> bool:
        if len(self.pending) > 1:
            return True
        if not self.imu:
            return t - self.first_joint >= self.timeout
        latest = self.imu[-1][0]
        return latest >= t or latest < t - self.timeout

    def _release(self) -> list:
        out = []
        while self.pending and self._ready(self.pending[0][0]):
            t, joints = self.pending.pop(0)
            near = min(self.imu, key=lambda s: (abs(s[0] - t), s[0]), default=None)
            imu = near[1] if near is not None and abs(near[0] - t) < self.timeout else None
            out.append((t, joints, imu))
        return out
