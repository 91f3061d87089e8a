"""Joint physics behind the virtual Herkulex bus: a fast first-order model or PyBullet.

Both take, per step, each servo's torque mode and trajectory setpoint in joint space
(canonical order, rad and rad/s) and return the measured angle [rad], speed [rad/s] and
motor duty (-1..1) of the 18 joints.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.core.servo_model import ServoParams
from kraby_rl.herkulex.protocol import Torque


class FirstOrderJoints:
    """Each powered joint follows its setpoint with a first-order lag, speed-limited.

    A free joint stays where it is (no gravity in this model), a braked one holds, and a
    blocked joint (an injected overload) does not move while its duty saturates.

    Args:
        q0: (18,) initial joint angles [rad] (default: the standing pose).
        tau_s: lag time constant [s].
        params: servo model parameters (position-loop gains for the duty, no-load speed).
    """

    step_s = 0.002
    """Longest integration step [s]; the bus splits longer intervals."""

    def __init__(self, q0=None, tau_s: float = 0.015, params: ServoParams | None = None):
        self.q = np.array(J.DEFAULT_POSE if q0 is None else q0, dtype=float)
        self.w = np.zeros(J.NUM_JOINTS)
        self.duty = np.zeros(J.NUM_JOINTS)
        self.tau_s = tau_s
        self.params = params or ServoParams()

    def step(self, dt: float, mode, sp, sv, blocked):
        """Advance ``dt`` seconds; returns (q, w, duty), each (18,)."""
        prm = self.params
        on = np.asarray(mode) == Torque.ON
        dq = (sp - self.q) * (1.0 - np.exp(-dt / self.tau_s))
        lim = prm.no_load_speed * dt
        dq = np.clip(dq, -lim, lim)
        dq[~on | blocked] = 0.0
        q_new = self.q + dq
        self.w = dq / dt if dt > 0 else np.zeros_like(dq)
        self.q = q_new
        duty = np.clip(prm.kp * (sp - self.q) + prm.kd * (sv - self.w), -1.0, 1.0)
        duty[~on] = 0.0
        self.duty = duty
        return self.q.copy(), self.w.copy(), self.duty.copy()


class PyBulletJoints:
    """The PyBullet robot (``KrabyWorld``) driven by the virtual servos' setpoints.

    The world's servo model applies the DC-motor envelope; a braked servo holds its
    setpoint, a free one gives no torque, a blocked one keeps 3 % of its torque (an
    external load it cannot lift).

    The robot's hidden parameters (what ``kraby sysid`` has to find in a recording of it):
    ``strength`` and ``speed`` scale every servo's stall torque and no-load speed,
    ``command_delay_s`` delays each servo's trajectory setpoint (a servo acting late on its
    commands), and ``friction`` (a ``KrabyWorld`` argument) is the feet's.
    """

    whole_steps = True
    """The bus advances this backend by whole physics steps only."""

    def __init__(self, strength: float = 1.0, speed: float = 1.0,
                 command_delay_s: float = 0.0, **world_kwargs):
        from kraby_rl.sim.world import KrabyWorld
        for name, value in (("strength", strength), ("speed", speed)):
            if not value > 0:
                raise ValueError(f"servo {name} must be a factor > 0, found {value!r}")
        if not command_delay_s >= 0:
            raise ValueError(f"command_delay_s must be >= 0 s, found {command_delay_s!r}")
        self.world = KrabyWorld(**world_kwargs)
        self.world.reset()
        self.step_s = self.world.physics_dt
        self.strength = float(strength)
        self.world.servo.speed[:] = float(speed)
        self._delay_steps = int(round(command_delay_s / self.step_s))
        self._setpoints = deque()

    def step(self, dt: float, mode, sp, sv, blocked):
        w = self.world
        mode = np.asarray(mode)
        self._setpoints.append((np.array(sp, dtype=float), np.array(sv, dtype=float)))
        while len(self._setpoints) > self._delay_steps + 1:
            self._setpoints.popleft()
        w.servo.track(*self._setpoints[0])
        w.servo.enabled = mode != Torque.FREE
        w.servo.strength = np.where(blocked, 0.03, self.strength)
        w.substep()
        q, qd, _ = w.joint_states()
        duty = np.where(mode == Torque.ON, w.servo.last_duty, 0.0)
        return q, qd, duty

    def body(self) -> dict:
        """Ground truth of the body (PyBullet): position [m], quaternion x, y, z, w,
        body-frame velocity [m/s], yaw rate [rad/s], simulated time [s], ground contact."""
        s = self.world.state()
        return {"base_pos": s.base_pos.tolist(), "base_quat": s.base_quat.tolist(),
                "base_velocity": s.lin_vel_body.tolist(), "yaw_rate": float(s.ang_vel_body[2]),
                "sim_t": float(s.t), "body_contact": bool(s.body_contact)}

    def close(self) -> None:
        self.world.close()
