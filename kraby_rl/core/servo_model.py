"""A Herkulex DRS-0101 servo model: trajectory generator, position loop, DC-motor envelope.

Pure numpy, vectorised over joints; the simulator feeds it measured joint states each
physics step and applies what it returns. See docs/sim-fidelity.md.

The model, per joint:

1. **Trajectory generator.** A new goal starts a trapezoidal-velocity move from the
   current setpoint to the goal, lasting ``playtime_s``; ``accel_ratio`` of the playtime
   is spent accelerating and the same decelerating (DRS-0101 register 8, 25 % by default).
2. **Position loop.** Duty ``u = clip(kp * (p_set - q) + kd * (v_set - w), -1, 1)``.
3. **DC motor.** The motor gives ``tau = tau_stall * (u - w / w_noload)``: full torque
   only at rest, none at the no-load speed in the driving direction. Braking torque is
   capped at the stall torque.

The torque is applied explicitly (PyBullet ``TORQUE_CONTROL``) for the whole physics step.
This is stable at 4 ms because each joint carries the gearbox's reflected rotor inertia
(``joints.SERVO_REFLECTED_INERTIA``, in the URDF): the position loop's stiffness
``tau_stall * kp`` and the back-EMF damping ``tau_stall / w_noload`` against 2e-3 kg*m^2
give ``omega * dt`` of about 0.34 and ``damping * dt`` of about 0.37, well inside explicit
integration's limit of 2. Being the law at the step's start speed, clipped at the stall
torque, the torque is inside the envelope at that speed by construction, whatever the
contacts do during the step. (An implicit velocity motor, used before, let the solver push
against the law within a step and drive a joint past the envelope, and let impacts spin
joints to 2.5 x the no-load speed.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kraby_rl.core import joints as J

TICK_S = 0.0112
"""Herkulex time unit [s] (playtime, tick counter)."""


@dataclass
class ServoParams:
    """Servo model parameters (DRS-0101 at 7.4 V unless changed).

    Attributes:
        stall_torque: torque at zero speed, full duty [N*m].
        no_load_speed: speed at zero torque, full duty [rad/s].
        kp: duty per radian of position error [1/rad].
        kd: duty per rad/s of velocity error [s/rad].
        playtime_s: duration of the move towards each new goal [s] (whole ticks).
        accel_ratio: fraction of the playtime spent accelerating (0..0.5).
    """

    stall_torque: float = J.SERVO_STALL_TORQUE
    no_load_speed: float = J.SERVO_NO_LOAD_SPEED
    kp: float = 12.0
    kd: float = 0.05
    playtime_s: float = 2 * TICK_S
    accel_ratio: float = 0.25

    def __post_init__(self):
        for name in ("stall_torque", "no_load_speed", "kp", "playtime_s"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(
                    f"servo parameter {name} must be > 0, found {getattr(self, name)!r}")
        if not 0.0 <= self.accel_ratio <= 0.5:
            raise ValueError(
                f"servo parameter accel_ratio must be in [0, 0.5], found {self.accel_ratio!r}")
        if self.kd < 0:
            raise ValueError(f"servo parameter kd must be >= 0, found {self.kd!r}")


def torque_envelope(w: np.ndarray, stall_torque: float, no_load_speed: float) -> np.ndarray:
    """Largest driving torque the motor can give at speed ``w`` [N*m] (>= 0).

    Args:
        w: joint speeds [rad/s], any shape.
    """
    return stall_torque * np.clip(1.0 - np.abs(w) / no_load_speed, 0.0, 1.0)


def envelope_excess(tau: np.ndarray, w: np.ndarray, stall_torque: float,
                    no_load_speed: float) -> np.ndarray:
    """How far a (torque, speed) pair lies outside the driving envelope [N*m].

    Driving means torque and speed have the same sign (the motor does positive work);
    braking torques are only checked against the stall torque.

    Returns:
        Array of the same shape, 0 inside the envelope, else the excess torque.
    """
    tau, w = np.asarray(tau, float), np.asarray(w, float)
    driving = tau * w > 0
    limit = np.where(driving, torque_envelope(w, stall_torque, no_load_speed), stall_torque)
    return np.maximum(np.abs(tau) - limit, 0.0)


class ServoBank:
    """N servos sharing one set of parameters (scales per joint allow randomisation).

    Args:
        n: number of servos.
        params: ``ServoParams``.
    """

    def __init__(self, n: int, params: ServoParams | None = None):
        self.n = n
        self.params = params or ServoParams()
        self.strength = np.ones(n)
        """Per-servo multiplier on the stall torque (battery voltage randomisation)."""
        self.speed = np.ones(n)
        """Per-servo multiplier on the no-load speed."""
        self._p0 = np.zeros(n)
        self._goal = np.zeros(n)
        self._t0 = 0.0
        self._vmax = np.zeros(n)
        self._external = None
        self.enabled = np.ones(n, dtype=bool)
        """Per-servo torque enable; a disabled servo gives no torque (torque free)."""
        self.weak = np.ones(n)
        """Per-servo fault factor on the stall torque (a weak servo), on top of strength."""
        self.stuck = np.zeros(n, dtype=bool)
        """Per-servo: holds the position it had at reset, whatever the goal (jammed)."""
        self._stuck_at = np.zeros(n)
        self.last_duty = np.zeros(n)
        """Duty (-1..1) of the last ``torque`` call."""
        self._set_timing()

    def envelope(self) -> tuple[np.ndarray, np.ndarray]:
        """(stall torque [N*m], no-load speed [rad/s]) of each servo, scales applied: the
        torque-speed envelope ``torque`` realises and evaluation checks against."""
        return (self.params.stall_torque * self.strength * self.weak,
                self.params.no_load_speed * self.speed)

    def _set_timing(self):
        T = self.params.playtime_s
        self._T = T
        self._ta = max(self.params.accel_ratio * T, 1e-9)

    def reset(self, q: np.ndarray, t: float = 0.0) -> None:
        """Hold the current position: setpoint = goal = ``q`` [rad]."""
        self._p0 = np.array(q, dtype=float)
        self._stuck_at = self._p0.copy()
        self._goal = self._p0.copy()
        self._vmax = np.zeros(self.n)
        self._t0 = t
        self._external = None

    def set_goal(self, goal: np.ndarray, t: float) -> None:
        """Start a move from the current setpoint to ``goal`` [rad] at time ``t`` [s]."""
        p, _ = self.setpoint(t)
        self._p0 = p
        self._goal = np.array(goal, dtype=float)
        self._t0 = t
        self._vmax = (self._goal - p) / (self._T - self._ta)
        self._external = None

    def track(self, p: np.ndarray, v: np.ndarray) -> None:
        """Use an outside trajectory: setpoint (position [rad], velocity [rad/s]) until the
        next ``set_goal`` or ``reset`` (the virtual Herkulex bus runs each servo's own
        trajectory generator)."""
        self._external = (np.array(p, dtype=float), np.array(v, dtype=float))

    def setpoint(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Trajectory setpoint at time ``t``: (position [rad], velocity [rad/s])."""
        if self._external is not None:
            return self._external[0].copy(), self._external[1].copy()
        tau = t - self._t0
        T, ta = self._T, self._ta
        v = self._vmax
        if tau >= T:
            return self._goal.copy(), np.zeros(self.n)
        if tau < ta:
            a = v / ta
            return self._p0 + 0.5 * a * tau * tau, a * tau
        if tau < T - ta:
            return self._p0 + v * (tau - 0.5 * ta), v.copy()
        rem = T - tau
        a = v / ta
        return self._goal - 0.5 * a * rem * rem, a * rem

    def torque(self, q: np.ndarray, w: np.ndarray, t: float) -> np.ndarray:
        """Motor torque [N*m] (n,) at time ``t``: the DC-motor law at the measured speed,
        ``tau_stall * clip(u - w / w_noload, -1, 1)``, 0 for a torque-free servo.

        Args:
            q: (n,) measured joint angles [rad].
            w: (n,) measured joint speeds [rad/s].
            t: time [s].
        """
        prm = self.params
        sp, sv = self.setpoint(t)
        if self.stuck.any():
            sp[self.stuck] = self._stuck_at[self.stuck]
            sv[self.stuck] = 0.0
        u = prm.kp * (sp - q)
        if prm.kd:
            u += prm.kd * (sv - w)
        np.clip(u, -1.0, 1.0, out=u)
        self.last_duty = u
        stall, wnl = self.envelope()
        law = u - w / wnl
        np.clip(law, -1.0, 1.0, out=law)
        law *= stall
        if not self.enabled.all():
            law[~self.enabled] = 0.0
        return law
