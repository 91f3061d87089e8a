"""One observer for every runner of a policy on topics: samples in, one observation out.

``policy_node`` (observer -> policy -> publish) and the robot's topic env (gym_bridge
``mode:=real``) both feed it the same time-stamped samples: joint states, IMU, odometry,
command. It owns what used to be written twice:

* freshness: no observation while joint states are older than the contract's
  ``state_timeout_s`` (and the gait clock restarts when they come back);
* the body estimate: IMU when fresher than ``sensor_timeout_s``, else odometry, else a level
  robot at rest;
* the command: the latest, zero once older than ``cmd_vel_timeout_s`` (a runner with a
  command of its own, like an env's episode command, passes it to ``observe``);
* the gait clock, from the first fresh observation;
* action decoding (``Contract.decoder()``) against the observation the action came from,
  and the previous action the next observation carries.

Time is whatever clock the caller passes (seconds): in nodes ``ros.age_clock``, the node
clock under ``use_sim_time`` (so simulated time reaches freshness and the gait clock), else
``time.monotonic``.
"""

from __future__ import annotations

import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.core.contract import Contract

LEVEL_AT_REST = (np.zeros(3), np.array([0.0, 0.0, -1.0]))
"""(gyro, gravity) when no orientation source is fresh."""


class Observer:
    """Observation assembly under a contract.

    Args:
        contract: the policy's ``core.contract.Contract`` (timeouts, clock, decoding).
    """

    def __init__(self, contract: Contract):
        self.contract = contract
        self.builder = contract.observation_builder()
        self.decoder = contract.decoder()
        self.q = self.w = None
        self.joints_t = self.imu_t = self.odom_t = self.command_t = -np.inf
        self.imu_sample = self.odom_sample = None
        self.cmd = np.zeros(3)
        self.t0 = None
        self.last_action = np.zeros(contract.action_size)
        self.obs = None

    # --- samples in ----------------------------------------------------------------------
    def joint_state(self, now: float, q, w) -> None:
        """Joint angles [rad] and speeds [rad/s], order ``JOINT_NAMES``."""
        self.q, self.w, self.joints_t = np.asarray(q, float), np.asarray(w, float), now

    def imu(self, now: float, quat, gyro) -> bool:
        """IMU orientation (x, y, z, w) and gyro [rad/s] in base_link; an unset orientation
        (all zeros: an IMU without one) is ignored. Returns whether it was used."""
        if G.is_unset(quat):
            return False
        self.imu_sample, self.imu_t = (tuple(quat), tuple(gyro)), now
        return True

    def odometry(self, now: float, quat, gyro) -> None:
        """Odometry orientation (x, y, z, w) in odom and body angular velocity [rad/s]."""
        self.odom_sample, self.odom_t = (tuple(quat), tuple(gyro)), now

    def command(self, now: float, cmd) -> None:
        """A (vx [m/s], vy [m/s], yaw rate [rad/s]) command (already limited)."""
        self.cmd, self.command_t = np.asarray(cmd, float), now

    # --- observation out -----------------------------------------------------------------
    def state_fresh(self, now: float) -> bool:
        return self.q is not None and now - self.joints_t <= self.contract.state_timeout_s

    def body_source(self, now: float) -> str:
        """Where ``body`` takes gyro and gravity from at ``now``: ``imu``, ``odometry`` or
        ``level`` (neither fresh: level at rest)."""
        timeout = self.contract.sensor_timeout_s
        for name, sample, t in (("imu", self.imu_sample, self.imu_t),
                                ("odometry", self.odom_sample, self.odom_t)):
            if sample is not None and now - t < timeout:
                return name
        return "level"

    def body(self, now: float):
        """(gyro, gravity): from the IMU when fresh, else odometry, else level at rest."""
        source = self.body_source(now)
        if source == "level":
            return LEVEL_AT_REST[0].copy(), LEVEL_AT_REST[1].copy()
        quat, gyro = self.imu_sample if source == "imu" else self.odom_sample
        return np.array(gyro, float), G.quat_to_gravity(quat)

    def feedback_without_imu(self, now: float) -> str | None:
        """Why the policy's feedback is blind or self-referential at ``now``, or None: a
        heading hold or levelling (contract gains) fed from odometry (without an IMU the
        state estimator's orientation is the plane through the stance feet, which the
        levelling itself moves) or from the level-at-rest fallback; trained with an IMU."""
        gains = [k for k in ("gait_heading_gain", "gait_level_gain")
                 if getattr(self.contract, k)]
        source = self.body_source(now)
        if not gains or source == "imu":
            return None
        return (f"the policy's {' and '.join(gains)} act on gyro and gravity from {source}, "
                f"not an IMU (it was trained with one)")

    def current_command(self, now: float) -> np.ndarray:
        if now - self.command_t < self.contract.cmd_vel_timeout_s:
            return self.cmd.copy()
        return np.zeros(3)

    def restart(self) -> None:
        """The next observation starts a new run: gait clock at 0, previous action 0."""
        self.t0 = None

    def observe(self, now: float, command=None):
        """The observation at ``now``, or None while joint states are stale (the gait clock
        then restarts with the next fresh one). ``command`` overrides the latest one."""
        if not self.state_fresh(now):
            self.t0 = None
            return None
        if self.t0 is None:
            self.t0 = now
            self.last_action[:] = 0.0
            self.builder.reset()
        cmd = self.current_command(now) if command is None else np.asarray(command, float)
        gyro, gravity = self.body(now)
        self.obs = self.builder.build(gyro, gravity, cmd, self.q, self.w, self.last_action,
                                      now - self.t0)
        return self.obs

    def targets(self, action) -> np.ndarray:
        """Joint targets [rad] for ``action`` computed from the last observation; the action
        (clipped to [-1, 1]) becomes the next observation's previous action."""
        if self.obs is None:
            raise RuntimeError("Observer.targets() before a first observation")
        a = np.clip(np.asarray(action, float), -1.0, 1.0)
        q = self.decoder(a, self.obs)
        self.last_action = a
        self.builder.note_targets(q)
        return q
