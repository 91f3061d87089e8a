"""``kraby_rl/OneLeg-v0``: the left-front leg reaches a target point, body held in the air."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.core import kinematics as K
from kraby_rl.core import spec as S
from kraby_rl.core.contract import CONTROL_PERIOD_S
from kraby_rl.envs.hexapod_env import physics_substeps, servo_params
from kraby_rl.envs.base import KrabyWorldEnv
from kraby_rl.sim.world import KrabyWorld


TARGET_MARGIN_RAD = 0.05
"""Targets' joint angles stay this far inside what an action can command [rad]."""
TARGET_LOWER = np.maximum(J.SOFT_LOWER, J.DEFAULT_POSE - S.ACTION_SCALE) + TARGET_MARGIN_RAD
TARGET_UPPER = np.minimum(J.SOFT_UPPER, J.DEFAULT_POSE + S.ACTION_SCALE) - TARGET_MARGIN_RAD
"""(18,) joint angles [rad] targets are drawn from: the actions' range (``ACTION_SCALE``
around the default pose) within the software clamps. Drawing from the clamps alone put
about half the targets where no action reaches (femur above +0.21 rad, tibia below -0.21)."""


class OneLegEnv(KrabyWorldEnv):
    """One leg reaching a target, as the original gym_kraby offered.

    The body is fixed 0.3 m above the ground; legs other than ``lf`` hold the default pose.

    **Observation** (15,) float32 (``core.spec.ONE_LEG_OBS_FIELDS``): the leg's joint angles
    minus default [rad], joint speeds [rad/s], foot position from forward kinematics [m,
    base_link], target [m, base_link], previous action.

    **Action** (3,) in [-1, 1]: lf coxa, femur, tibia targets, scaled as in Hexapod-v0.

    **Reward** per step: ``-distance_weight * |foot - target| - action_rate_weight *
    |a - a_prev|^2``; ``info["distance"]`` is the distance [m]. No termination;
    truncation after ``episode_s``. Targets are drawn by forward kinematics of random joint
    angles that an action can command (``TARGET_LOWER``..``TARGET_UPPER``: within both the
    action's range and the software clamps, ``TARGET_MARGIN_RAD`` inside), so every target
    is reachable.

    ====================  ========  ==============================
    argument              default   meaning
    ====================  ========  ==============================
    control_period_s      contract  policy period [s] (``core.contract``)
    physics_dt_s          0.004     physics step [s]
    episode_s             2.0       time limit [s]
    distance_weight       10.0      per metre of distance
    action_rate_weight    0.05      per squared action change
    servo                 {}        servo model overrides
    render_mode           None      "rgb_array" (headless)
    gui                   False     PyBullet GUI window
    ====================  ========  ==============================
    """

    LEG = 0

    def __init__(self, control_period_s: float = CONTROL_PERIOD_S, physics_dt_s: float = 0.004,
                 episode_s: float = 2.0, distance_weight: float = 10.0,
                 action_rate_weight: float = 0.05, servo: dict | None = None,
                 render_mode: str | None = None, gui: bool = False):
        super().__init__()
        substeps = physics_substeps(control_period_s, physics_dt_s)
        self.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.dt = float(control_period_s)
        self.max_steps = int(round(episode_s / self.dt))
        self.distance_weight = float(distance_weight)
        self.action_rate_weight = float(action_rate_weight)
        self.world = KrabyWorld(physics_dt_s, substeps, servo_params(servo), fixed_base=True,
                                gui=gui)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (S.ONE_LEG_OBS_SIZE,),
                                                np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (S.ONE_LEG_ACTION_SIZE,), np.float32)
        self._sl = slice(3 * self.LEG, 3 * self.LEG + 3)
        self.target = np.zeros(3)
        self._last_action = np.zeros(3)
        self._q = J.DEFAULT_POSE.copy()
        self._w = np.zeros(J.NUM_JOINTS)
        self._steps = 0

    def _foot(self) -> np.ndarray:
        return K.foot_positions(self._q)[self.LEG]

    def _observe(self) -> np.ndarray:
        sl = self._sl
        return np.concatenate([self._q[sl] - J.DEFAULT_POSE[sl], self._w[sl], self._foot(),
                               self.target, self._last_action]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        sl = self._sl
        q = J.DEFAULT_POSE.copy()
        q[sl] = self.np_random.uniform(TARGET_LOWER[sl], TARGET_UPPER[sl])
        self.target = K.foot_positions(q)[self.LEG]
        if options and "target" in options:
            self.target = np.asarray(options["target"], dtype=float)
        self.world.reset()
        self._q, self._w, _ = self.world.joint_states()
        self._last_action = np.zeros(3)
        self._steps = 0
        return self._observe(), {"distance": float(np.linalg.norm(self._foot() - self.target))}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        full = np.zeros(S.ACTION_SIZE)
        full[self._sl] = a
        self.world.command(S.action_to_targets(full))
        self.world.step()
        self._q, self._w, _ = self.world.joint_states()
        self._steps += 1
        dist = float(np.linalg.norm(self._foot() - self.target))
        d = a - self._last_action
        reward = -self.distance_weight * dist - self.action_rate_weight * float(d @ d)
        self._last_action = a
        truncated = self._steps >= self.max_steps
        return self._observe(), reward, False, truncated, {"distance": dist}


class OneLegReachEnv(OneLegEnv):
    """``kraby_rl/OneLegReach-v0``: the one-leg reach as a goal-conditioned task (for HER).

    Same robot, action and targets as ``OneLeg-v0``, with a Gymnasium goal-env observation
    (a Dict):

    * ``observation`` (9,): the leg's joint angles minus default [rad], joint speeds
      [rad/s], previous action;
    * ``achieved_goal`` (3,): the foot position from forward kinematics [m, base_link];
    * ``desired_goal`` (3,): the target [m, base_link].

    **Reward** (sparse): 0 within ``tolerance_m`` of the target, else -1, from
    :meth:`compute_reward`, which is vectorised over goal batches so that a hindsight
    replay buffer can relabel stored transitions. ``info["is_success"]`` says the same;
    ``info["distance"]`` is the distance [m]. No termination; truncation after
    ``episode_s``.

    ====================  ========  ==============================
    argument              default   meaning
    ====================  ========  ==============================
    tolerance_m           0.005     success radius [m]
    episode_s             1.0       time limit [s]
    (others)                        as ``OneLeg-v0``
    ====================  ========  ==============================
    """

    def __init__(self, tolerance_m: float = 0.005, episode_s: float = 1.0, **kwargs):
        if not tolerance_m > 0:
            raise ValueError(f"tolerance_m must be > 0 [m], found {tolerance_m!r}")
        super().__init__(episode_s=episode_s, **kwargs)
        self.tolerance_m = float(tolerance_m)
        box = gym.spaces.Box
        self.observation_space = gym.spaces.Dict({
            "observation": box(-np.inf, np.inf, (9,), np.float32),
            "achieved_goal": box(-np.inf, np.inf, (3,), np.float32),
            "desired_goal": box(-np.inf, np.inf, (3,), np.float32)})

    def _observe(self):
        sl = self._sl
        return {"observation": np.concatenate([self._q[sl] - J.DEFAULT_POSE[sl], self._w[sl],
                                               self._last_action]).astype(np.float32),
                "achieved_goal": self._foot().astype(np.float32),
                "desired_goal": self.target.astype(np.float32)}

    def compute_reward(self, achieved_goal, desired_goal, info):
        """0 where the achieved goal is within ``tolerance_m`` of the desired one, else -1
        (batched over leading axes)."""
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(d > self.tolerance_m).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        info["is_success"] = info["distance"] <= self.tolerance_m
        return obs, info

    def step(self, action):
        obs, _, term, trunc, info = super().step(action)
        info["is_success"] = info["distance"] <= self.tolerance_m
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        return obs, reward, term, trunc, info
