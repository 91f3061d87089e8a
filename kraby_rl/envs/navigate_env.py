"""``kraby_rl/Navigate-v0``: reach a goal on the floor by choosing motion primitives."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.core import navigation as N
from kraby_rl.envs.base import KrabyWorldEnv


class NavigateEnv(KrabyWorldEnv):
    """Kraby walks to a goal 0.5-2 m away; the policy picks a motion primitive.

    Each step runs one of ``core.navigation.PRIMITIVES`` (stand, forward, backward, left,
    right, turn left, turn right: fixed ``cmd_vel`` values) for ``primitive_s`` seconds,
    executed by the walking policy ``walker`` in a ``Hexapod-v0`` world built from that
    policy's own env config, exactly as policy_node executes a ``cmd_vel`` on the robot.

    **Observation** (13,) float32 (``core.navigation.OBS_FIELDS``): goal distance and
    bearing in the body frame, body velocity (x, y, yaw rate), last primitive one-hot; the
    navigator node builds the same from ``odom`` and ``goal_pose``.

    **Action**: ``Discrete(7)``, the primitive index.

    **Reward** per step: ``progress_weight`` per metre of distance gained, ``time_cost`` per
    second, ``arrival_bonus`` once on arrival (within ``arrive_m``; terminates), ``fall_cost``
    on a fall (terminates). **Truncation**: ``episode_s`` of simulated time.
    ``info``: ``distance`` [m], ``arrived``, ``fell``, ``t`` [s], ``base_pos``, ``goal``.

    ====================  ==========  ============================================
    argument              default     meaning
    ====================  ==========  ============================================
    walker                "walk"      exported walking policy (name or directory)
    primitive_s           0.5         primitive duration [s]
    arrive_m              0.1         arrival tolerance [m]
    distance_clip_m       3.0         observed distance saturates here [m]
    goal_range_m          [0.5, 2.0]  goal distance, uniform; bearing uniform [m]
    episode_s             40.0        time limit [s] of simulated time
    progress_weight       10.0        per metre towards the goal
    time_cost             0.2         per second
    arrival_bonus         10.0        once, on arrival
    fall_cost             10.0        once, on a fall
    randomize             False       the walker's domain randomisation ranges
    ====================  ==========  ============================================
    """

    def __init__(self, walker: str = "walk", primitive_s: float = 0.5, arrive_m: float = 0.1,
                 distance_clip_m: float = 3.0, goal_range_m=(0.5, 2.0),
                 episode_s: float = 40.0, progress_weight: float = 10.0,
                 time_cost: float = 0.2, arrival_bonus: float = 10.0,
                 fall_cost: float = 10.0, randomize: bool = False,
                 render_mode: str | None = None):
        super().__init__()
        from kraby_rl.core.policy_runtime import ExportedPolicy
        from kraby_rl.envs.hexapod_env import HexapodEnv
        from kraby_rl.resources import resolve_policy
        self.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.spec_nav = N.NavigationSpec(primitive_s, arrive_m, distance_clip_m)
        lo, hi = (float(v) for v in goal_range_m)
        if not 0 < lo <= hi:
            raise ValueError(f"goal_range_m: expected [low, high] with 0 < low <= high [m], "
                             f"found {goal_range_m!r}")
        if not episode_s > 0:
            raise ValueError(f"episode_s must be > 0, found {episode_s!r}")
        self.goal_range = (lo, hi)
        self.walker = ExportedPolicy(resolve_policy(walker))
        self.walker.contract()                  # refuse a walker of another contract
        wenv = dict(self.walker.metadata.get("env", {}))
        if not randomize:
            wenv.pop("randomize", None)
        wenv["episode_s"] = episode_s + 2 * primitive_s    # the outer limit comes first
        self.hexapod = HexapodEnv(**wenv, render_mode=render_mode)
        self.world = self.hexapod.world
        self.dt = self.hexapod.dt
        self.substeps = int(round(primitive_s / self.dt))
        if self.substeps < 1 or abs(self.substeps * self.dt - primitive_s) > 1e-6:
            raise ValueError(f"primitive_s ({primitive_s!r}) must be a whole multiple of the "
                             f"walker's control period ({self.dt!r} s)")
        self.max_steps = int(math.ceil(episode_s / primitive_s - 1e-9))
        self.weights = {"progress": float(progress_weight), "time": float(time_cost),
                        "arrival": float(arrival_bonus), "fall": float(fall_cost)}
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (N.OBS_SIZE,), np.float32)
        self.action_space = gym.spaces.Discrete(N.N_PRIMITIVES)
        self.goal = np.zeros(2)
        self._last = 0
        self._steps = 0
        self._obs_walk = None

    def _pose(self):
        s = self.hexapod.robot_state
        return s.base_pos[:2], G.yaw_from_quat(s.base_quat), s

    def _observe(self) -> np.ndarray:
        xy, yaw, s = self._pose()
        return N.observe(self.spec_nav, xy, yaw, self.goal, s.lin_vel_body,
                         s.ang_vel_body[2], self._last)

    def _distance(self) -> float:
        xy, _, _ = self._pose()
        return float(np.hypot(*(self.goal - xy)))

    def _info(self, arrived=False, fell=False) -> dict:
        s = self.hexapod.robot_state
        return {"distance": self._distance(), "arrived": arrived, "fell": fell, "t": s.t,
                "base_pos": s.base_pos.copy(), "goal": self.goal.copy()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """``options``: ``goal`` (x, y) [m] in the world frame (the robot starts at the
        origin facing +x), else drawn from ``goal_range_m`` at a uniform bearing."""
        super().reset(seed=seed)
        options = options or {}
        self._obs_walk, _ = self.hexapod.reset(
            seed=int(self.np_random.integers(2 ** 31)), options={"command": np.zeros(3)})
        start = self.hexapod.robot_state.base_pos[:2]
        if "goal" in options:
            goal = np.asarray(options["goal"], dtype=float)
            if goal.shape != (2,) or not np.all(np.isfinite(goal)):
                raise ValueError(f"reset option 'goal': expected finite (x, y) [m], found "
                                 f"{options['goal']!r}")
            self.goal = goal.copy()
        else:
            r = self.np_random.uniform(*self.goal_range)
            a = self.np_random.uniform(-math.pi, math.pi)
            self.goal = start + r * np.array([math.cos(a), math.sin(a)])
        self._last = 0
        self._steps = 0
        return self._observe(), self._info()

    def set_goal(self, goal) -> np.ndarray:
        """A new goal mid-episode (a user clicking again in RViz); returns the observation."""
        self.goal = np.asarray(goal, dtype=float).copy()
        return self._observe()

    def step(self, action):
        k = int(action)
        cmd = N.command(k)
        before = self._distance()
        obs = self.hexapod.set_command(cmd)
        fell = False
        for _ in range(self.substeps):
            obs, _, fell, _, _ = self.hexapod.step(self.walker(obs))
            if fell:
                break
        self._obs_walk = obs
        self._last = k
        self._steps += 1
        after = self._distance()
        arrived = not fell and after < self.spec_nav.arrive_m
        w = self.weights
        reward = (w["progress"] * (before - after) - w["time"] * self.spec_nav.primitive_s
                  + (w["arrival"] if arrived else 0.0) - (w["fall"] if fell else 0.0))
        truncated = self._steps >= self.max_steps and not (arrived or fell)
        return self._observe(), float(reward), bool(arrived or fell), truncated, \
            self._info(arrived, fell)

    def render(self):
        return self.hexapod.render()

    def close(self):
        self.hexapod.close()
