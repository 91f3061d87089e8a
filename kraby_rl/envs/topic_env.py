"""The robot's ROS topics as a Gymnasium env (what gym_bridge ``mode:=real`` exposes).

Same spaces and observation spec as ``kraby_rl/Hexapod-v0``, so a policy trained in
PyBullet runs unchanged. An action becomes targets on policy/joint_targets, which go
through the safety shield; observations come from joint_states, imu/data (else odom) and
the episode's command, through the same observer as ``policy_node``
(``core.observer``); each step waits until the next control period so the policy runs
at the period it was trained at. ``reset`` brings the robot slowly (``reset_s``) from where
it is to the default stance. The env never resets the shield: when safety/state leaves OK
the episode terminates (``info["safety_state"]`` says why) and ``reset`` waits for the
operator's safety/reset.
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np

from kraby_rl import ros
from kraby_rl.core import geometry as G
from kraby_rl.core import joints as J
from kraby_rl.core import rewards as R
from kraby_rl.core.contract import Contract
from kraby_rl.core.observer import Observer
from kraby_rl.ros.messages import nav_msgs, sensor_msgs, std_msgs

LATCHED = ros.LATCHED


class RobotTopicEnv(gym.Env):
    """Kraby through its topics.

    Args:
        node: the ROS node to publish and subscribe on (the env spins it).
        contract: the policy's ``core.contract.Contract`` (control period, clock, action
            decoding, sensor timeouts); the observation comes from ``core.observer``, the
            same observer ``policy_node`` runs, on the node clock.
        command: (vx [m/s], vy [m/s], yaw rate [rad/s]) of every episode (reset option
            ``command`` overrides it).
        episode_s: episode length [s]. reset_s: time to walk back to the stance [s].
        wait_s: how long to wait for joint_states or an OK safety state before failing [s].
        spin: the env spins ``node`` itself; False when another thread spins it (gym_bridge).
        reward_weights, tracking_sigma: the training run's (``env`` section), so fine-tuning
            on the robot continues on the reward the policy was trained on. The terms are
            ``core.rewards``' own, from odometry; those the robot cannot measure (foot slip,
            true heading, joint power without effort, falls) are left out, and
            ``info["reward_terms"]`` lists the ones used.
    """

    metadata = {"render_modes": []}

    def __init__(self, node, contract: Contract, command=(0.0, 0.0, 0.0),
                 episode_s: float = 20.0, reset_s: float = 2.0, wait_s: float = 30.0,
                 spin: bool = True, reward_weights: dict | None = None,
                 tracking_sigma: dict | None = None):
        for name, v in (("episode_s", episode_s), ("reset_s", reset_s), ("wait_s", wait_s)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0, found {v!r}")
        self.node = node
        self.spin = spin
        self.contract = contract
        self.observer = Observer(contract)
        self._now = ros.age_clock(node)       # policy_node's: sim time or monotonic
        self.weights = R.resolve_weights(reward_weights)
        self.sigma = R.resolve_sigma(tracking_sigma)
        self.command = np.asarray(command, float)
        self.dt = contract.control_period_s
        self.max_steps = int(round(episode_s / self.dt))
        self.reset_s, self.wait_s = float(reset_s), float(wait_s)
        self._obs = None
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (contract.obs_size,),
                                                np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (contract.action_size,), np.float32)
        self.odom = None
        self.safety = None
        self.pub = node.create_publisher(sensor_msgs.JointState, "policy/joint_targets", 10)
        node.create_subscription(sensor_msgs.JointState, "joint_states", self._on_joints, 10)
        node.create_subscription(sensor_msgs.Imu, "imu/data", self._on_imu,
                                 ros.qos_profile_sensor_data)
        node.create_subscription(nav_msgs.Odometry, "odom", self._on_odom, 10)
        node.create_subscription(std_msgs.String, "safety/state", self._on_safety, LATCHED)
        self._steps = 0
        self._next = 0.0

    # --- topics --------------------------------------------------------------------------
    def _on_joints(self, msg):
        try:
            q, w = J.from_joint_state(msg, velocity=True)
        except ValueError:
            return                      # the driver's problem; the shield counts it
        self.observer.joint_state(self._now(), q, w)

    def _on_imu(self, msg):
        o, g = msg.orientation, msg.angular_velocity
        self.observer.imu(self._now(), (o.x, o.y, o.z, o.w), (g.x, g.y, g.z))

    def _on_odom(self, msg):
        o, tw = msg.pose.pose.orientation, msg.twist.twist
        quat = (o.x, o.y, o.z, o.w)
        self.observer.odometry(self._now(), quat, (tw.angular.x, tw.angular.y, tw.angular.z))
        self.odom = (quat, (tw.angular.x, tw.angular.y, tw.angular.z),
                     np.array([tw.linear.x, tw.linear.y, tw.linear.z]),
                     np.array([msg.pose.pose.position.x, msg.pose.pose.position.y]),
                     float(msg.pose.pose.position.z))

    def _on_safety(self, msg):
        self.safety = msg.data

    def _spin_until(self, deadline, predicate=lambda: False):
        while time.monotonic() < deadline and not predicate():
            wait = min(0.002, max(0.0, deadline - time.monotonic()))
            if self.spin:
                ros.spin_once(self.node, timeout_sec=wait)
            else:
                time.sleep(wait)
        return predicate()

    def _publish(self, q_target):
        msg = sensor_msgs.JointState(name=list(J.JOINT_NAMES),
                                     position=[float(v) for v in q_target])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)

    def _state_fresh(self):
        return self.observer.state_fresh(self._now())

    # --- gymnasium -----------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        if "command" in options:
            self.command = np.asarray(options["command"], float)
        end = time.monotonic() + self.wait_s
        if not self._spin_until(end, self._state_fresh):
            raise RuntimeError(f"no fresh joint_states within {self.wait_s:g} s: is the "
                               f"robot's driver (or sim_node) running?")
        # walk slowly to the stance; the shield turns this into joint_commands once it is OK
        start = self.observer.q.copy()
        n = max(1, int(round(self.reset_s / self.dt)))
        nxt = time.monotonic()
        for k in range(1, n + 1):
            self._publish(start + (J.DEFAULT_POSE - start) * (k / n))
            nxt += self.dt
            self._spin_until(nxt)
        if not self._spin_until(end + self.reset_s, lambda: self.safety == "OK"
                                and self._state_fresh()):
            raise RuntimeError(f"safety/state is {self.safety!r}, not OK, after {self.wait_s:g} s:"
                               " the operator releases a stop with safety/reset")
        self._steps = 0
        self._next = time.monotonic()
        self.observer.restart()
        self._obs = self.observer.observe(self._now(), self.command)
        if self._obs is None:
            raise RuntimeError("joint_states went stale during reset: the shield stops the "
                               "robot; check the driver")
        return self._obs, self._info(False)

    def step(self, action):
        last_action = self.observer.last_action
        self._publish(self.observer.targets(action))
        a = self.observer.last_action
        self._next += self.dt
        if time.monotonic() > self._next + self.dt:
            self._next = time.monotonic()        # late: resynchronise rather than rush
        self._spin_until(self._next)
        self._steps += 1
        obs = self.observer.observe(self._now(), self.command)
        stale = obs is None             # joint_states stopped: the shield stops the robot
        if not stale:
            self._obs = obs
        stopped = stale or self.safety != "OK"
        terms = self.reward_terms(a, last_action)
        reward = float(sum(terms.values()))
        truncated = self._steps >= self.max_steps
        info = self._info(stopped)
        info["reward_terms"] = terms
        info["stale_joint_states"] = stale
        return self._obs, reward, stopped, truncated, info

    def reward_terms(self, action, last_action) -> dict:
        """The weighted ``core.rewards`` terms of the step just taken, from the latest
        odometry (none before the first one arrives)."""
        if self.odom is None:
            return {}
        quat, ang, lin, _xy, z = self.odom
        return R.weighted_terms(self.weights, self.sigma, self.dt, lin_vel_body=lin,
                                ang_vel_body=np.array(ang), command=self.command,
                                gravity_body=G.quat_to_gravity(quat), action=action,
                                last_action=last_action, fell=False, height=z)

    def _info(self, stopped):
        odom = self.odom
        return {"command": self.command.copy(), "safety_state": self.safety,
                "stopped": stopped, "t": self._steps * self.dt,
                "base_velocity": None if odom is None else odom[2].copy(),
                "position_xy": None if odom is None else odom[3].copy()}
