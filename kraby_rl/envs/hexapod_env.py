"""``kraby_rl/Hexapod-v0``: Kraby walks following a body-velocity command."""

from __future__ import annotations

import math
from dataclasses import fields

import gymnasium as gym
import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.core import joints as J
from kraby_rl.core import rewards as R
from kraby_rl.core import contract as K
from kraby_rl.core import spec as S
from kraby_rl.core.command import DEFAULT_COMMAND_RANGES
from kraby_rl.core.servo_model import ServoParams
from kraby_rl.envs.base import KrabyWorldEnv
from kraby_rl.sim.curriculum import Curriculum
from kraby_rl.sim.faults import FaultSpec, check_faults, draw_faults
from kraby_rl.sim.terrain import TerrainSpec, check_terrain, draw_terrain
from kraby_rl.sim.world import KrabyWorld


def physics_substeps(control_period_s: float, physics_dt_s: float) -> int:
    """Number of physics steps per control period; raises if it is not a whole number."""
    n = control_period_s / physics_dt_s
    if not (control_period_s > 0 and physics_dt_s > 0) or abs(n - round(n)) > 1e-6 or round(n) < 1:
        raise ValueError(
            f"control_period_s ({control_period_s!r}) must be a positive whole multiple of "
            f"physics_dt_s ({physics_dt_s!r})")
    return int(round(n))


RANDOMIZE_KEYS = {
    "mass_scale": "[low, high] factor on every link mass, drawn per link",
    "friction": "[low, high] foot friction coefficient",
    "servo_strength": "[low, high] factor on each servo's stall torque (battery voltage)",
    "servo_speed": "[low, high] factor on each servo's no-load speed (battery voltage)",
    "latency_steps": "[low, high] whole control steps of command latency",
    "obs_noise": "{term: std} Gaussian noise on observation terms "
                 "(ang_vel, gravity, joint_pos, joint_vel)",
    "push_interval_s": "[low, high] time between random pushes [s]",
    "push_velocity_m_s": "largest horizontal velocity change of a push [m/s]",
}
"""Domain randomisation options of HexapodEnv (``randomize`` argument), drawn per episode."""
NOISY_TERMS = {"ang_vel": "ang_vel_body", "gravity": "gravity_body", "joint_pos": "q",
               "joint_vel": "w"}
"""obs_noise term -> the robot state's sensor reading it perturbs. The noise is added to the
reading before the observation is built, so whatever the builder derives from it (joint
errors, heading error, filtered tilt) sees it as on the robot."""


def check_randomize(spec: dict | None) -> dict:
    """Validate a ``randomize`` mapping, naming the key, the value and what is allowed."""
    spec = dict(spec or {})
    for key, value in spec.items():
        if key not in RANDOMIZE_KEYS:
            raise ValueError(f"randomize: unknown key {key!r}; allowed {sorted(RANDOMIZE_KEYS)}")
        if key == "obs_noise":
            if not isinstance(value, dict) or any(
                    k not in NOISY_TERMS or not (isinstance(v, (int, float)) and v >= 0)
                    for k, v in value.items()):
                raise ValueError(f"randomize.obs_noise: expected {{term: std >= 0}} with terms "
                                 f"from {tuple(NOISY_TERMS)}, found {value!r}")
        elif key == "push_velocity_m_s":
            if not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"randomize.push_velocity_m_s: expected a speed >= 0 [m/s], "
                                 f"found {value!r}")
        elif not (isinstance(value, (list, tuple)) and len(value) == 2
                  and all(isinstance(v, (int, float)) for v in value)
                  and 0 <= value[0] <= value[1]):
            raise ValueError(f"randomize.{key}: expected [low, high] with 0 <= low <= high, "
                             f"found {value!r}")
    return spec


def servo_params(overrides: dict | None) -> ServoParams:
    """ServoParams from a dict, naming any unknown key."""
    overrides = dict(overrides or {})
    allowed = [f.name for f in fields(ServoParams)]
    for k in overrides:
        if k not in allowed:
            raise ValueError(f"unknown servo parameter {k!r}: allowed {allowed}")
    return ServoParams(**overrides)


class HexapodEnv(KrabyWorldEnv):
    """Kraby on flat ground, following a (vx, vy, yaw rate) command sampled per episode.

    The env builds its ``core.contract.Contract`` from its arguments (``env.contract``:
    what training and export write beside the weights, and what a robot must honour).

    **Observation** (65,) float32 (version 2: (119,), 3: (122,)): the shared spec of
    ``kraby_rl.core.spec`` (gyro, gravity direction, command, joint angles minus default,
    joint speeds, previous action, gait clock; version 2 adds the last 3 periods' joint
    errors, target sent minus angle measured; version 3 the heading error and the filtered
    tilt; version 4 each leg's filtered joint error). Only what the real robot measures;
    ground truth is used for reward only.

    **Action** (18,) in [-1, 1], decoded by ``action_mode``: ``joint``,
    ``q_target = DEFAULT_POSE + ACTION_SCALE * a``; ``gait_residual``, the tripod gait
    (``clock_hz``, ``gait_duty``, ``gait_lift_m``, ``gait_stride_scale``,
    ``gait_pattern``) at the observation's phase and command (steered back to the commanded
    heading by ``gait_heading_gain``, spec version 3, levelled by ``gait_level_gain``, and
    walking a wave on the working legs when a leg's error exceeds ``gait_limp_threshold``,
    spec version 4) plus ``RESIDUAL_SCALE * a``. Either way clipped to the real robot's
    software clamps and sent to the servo model as one goal per control step.

    **Reward** per step: ``sum_k weight_k * term_k * dt`` over the terms of
    ``kraby_rl.core.rewards`` (``rewards.TERMS``: ``lin_vel``, ``yaw_rate``, ``alive``,
    ``vertical_motion``, ``tilt``, ``height``, ``power``, ``action_rate``,
    ``action_magnitude``, ``heading``, ``foot_slip``, and ``fall`` once on a fall), weights
    from ``reward_weights`` over ``rewards.DEFAULT_WEIGHTS``. Weighted terms are in
    ``info["reward_terms"]``.

    **Terrain**: drawn per episode from ``terrain`` (``sim.terrain.check_terrain``), or
    given as ``reset(options={"terrain": TerrainSpec(...)})``; ``env.terrain_spec`` is the
    episode's. Heights are the reward's and the fall test's (body height above the ground
    under it), never the observation's. **Faults** (torque-free servos or legs, weak or
    jammed servos, a payload) likewise: ``faults`` section or ``options["faults"]``,
    ``env.fault_spec``; never observed.

    **Termination**: a fall (body below ``fall_height_m``, tilt above ``fall_tilt_rad``, or
    the body touching the ground). **Truncation**: ``episode_s`` of simulated time.

    ==========================  ===============================  =====================
    argument                    default                          meaning
    ==========================  ===============================  =====================
    control_period_s            ``contract.CONTROL_PERIOD_S``    policy period [s]
    physics_dt_s                0.004                            physics step [s]
    episode_s                   20.0                             time limit [s]
    command                     None                             fixed (vx, vy, wz)
    command_ranges              vx +-0.15, vy +-0.1, wz +-0.5    uniform sampling
    zero_command_prob           0.1                              chance of (0, 0, 0)
    reward_weights              ``rewards.DEFAULT_WEIGHTS``      overrides by name
    tracking_sigma              lin_vel 0.1, yaw_rate 0.3        kernel widths [m/s, rad/s]
    servo                       ``ServoParams()``                servo model overrides
    latency_steps               0                                command latency
    friction                    0.8                              foot friction
    clock_hz                    ``contract.CLOCK_HZ``            gait clock [Hz]
    action_mode                 ``contract.ACTION_MODE``         or "gait_residual" (spec)
    gait_duty                   ``contract.GAIT_DUTY``           tripod gait duty factor
    gait_lift_m                 ``contract.GAIT_LIFT_M``         tripod foot lift [m]
    gait_stride_scale           ``contract.GAIT_STRIDE_SCALE``   tripod stride scale
    gait_pattern                ``contract.GAIT_PATTERN``        "tripod" or "ripple"
    gait_heading_gain           ``contract.GAIT_HEADING_GAIN``   heading hold [1/s] (0: off)
    gait_level_gain             ``contract.GAIT_LEVEL_GAIN``     levelling [m] (0: off)
    gait_limp_threshold         ``contract.GAIT_LIMP_THRESHOLD`` limp leg error [rad] (0: off)
    gait_limp_shift             ``contract.GAIT_LIMP_SHIFT``     limp: body over the feet
    gait_limp_crouch_m          ``contract.GAIT_LIMP_CROUCH_M``  limp: body lower [m]
    spec_version                ``spec.SPEC_VERSION`` (1)        observation version (2:
                                                                 + joint error history; 3:
                                                                 + heading error, tilt; 4:
                                                                 + leg error)
    randomize                   None                             ``RANDOMIZE_KEYS`` ranges
    terrain                     None (flat)                      ``sim.terrain`` section
    faults                      None (healthy)                   ``sim.faults`` section
    curriculum                  None (off)                       ``sim.curriculum`` section
    init_noise_rad              0.02                             initial joint noise
    fall_height_m               ``geometry.FALL_HEIGHT_M`` 0.07  fall if body lower [m]
    fall_tilt_rad               ``geometry.FALL_TILT_RAD`` 1.0   fall if tilted more
    render_mode                 None                             "rgb_array" (headless)
    gui                         False                            PyBullet GUI window
    ==========================  ===============================  =====================
    """

    def __init__(self, control_period_s: float = K.CONTROL_PERIOD_S,
                 physics_dt_s: float = 0.004,
                 episode_s: float = 20.0, command=None, command_ranges: dict | None = None,
                 zero_command_prob: float = 0.1, reward_weights: dict | None = None,
                 tracking_sigma: dict | None = None,
                 servo: dict | None = None, latency_steps: int = 0, friction: float = 0.8,
                 clock_hz: float = K.CLOCK_HZ, action_mode: str = K.ACTION_MODE,
                 gait_duty: float = K.GAIT_DUTY, gait_lift_m: float = K.GAIT_LIFT_M,
                 gait_stride_scale: float = K.GAIT_STRIDE_SCALE,
                 gait_pattern: str = K.GAIT_PATTERN,
                 gait_heading_gain: float = K.GAIT_HEADING_GAIN,
                 gait_level_gain: float = K.GAIT_LEVEL_GAIN,
                 gait_limp_threshold: float = K.GAIT_LIMP_THRESHOLD,
                 gait_limp_shift: float = K.GAIT_LIMP_SHIFT,
                 gait_limp_crouch_m: float = K.GAIT_LIMP_CROUCH_M,
                 spec_version: int = S.SPEC_VERSION,
                 randomize: dict | None = None, terrain: dict | None = None,
                 faults: dict | None = None, curriculum: dict | None = None,
                 init_noise_rad: float = 0.02,
                 fall_height_m: float = G.FALL_HEIGHT_M,
                 fall_tilt_rad: float = G.FALL_TILT_RAD,
                 render_mode: str | None = None, gui: bool = False):
        super().__init__()
        substeps = physics_substeps(control_period_s, physics_dt_s)
        self.check_render_mode(render_mode)
        if not episode_s > 0:
            raise ValueError(f"episode_s must be > 0, found {episode_s!r}")
        self.render_mode = render_mode
        self.dt = float(control_period_s)
        self.max_steps = int(round(episode_s / self.dt))
        ranges = dict(DEFAULT_COMMAND_RANGES)
        for k, v in (command_ranges or {}).items():
            if k not in ranges:
                raise ValueError(f"unknown command range {k!r}: allowed {list(ranges)}")
            lo, hi = float(v[0]), float(v[1])
            if lo > hi:
                raise ValueError(f"command range {k} must be [low, high], found {v!r}")
            ranges[k] = (lo, hi)
        self.command_ranges = ranges
        self.fixed_command = None if command is None else np.asarray(command, dtype=float)
        if self.fixed_command is not None and self.fixed_command.shape != (3,):
            raise ValueError(f"command must be (vx, vy, yaw_rate), found {command!r}")
        self.zero_command_prob = float(zero_command_prob)
        self.weights = R.resolve_weights(reward_weights)
        self.sigma = R.resolve_sigma(tracking_sigma)
        self.init_noise = float(init_noise_rad)
        self.fall_height = float(fall_height_m)
        self.fall_tilt = float(fall_tilt_rad)
        self.world = KrabyWorld(physics_dt_s, substeps, servo_params(servo), latency_steps,
                                friction=friction, gui=gui)
        try:
            self.contract = K.Contract(control_period_s=control_period_s, clock_hz=clock_hz,
                                       action_mode=action_mode, gait_duty=gait_duty,
                                       gait_lift_m=gait_lift_m,
                                       gait_stride_scale=gait_stride_scale,
                                       gait_pattern=gait_pattern,
                                       gait_heading_gain=gait_heading_gain,
                                       gait_level_gain=gait_level_gain,
                                       gait_limp_threshold=gait_limp_threshold,
                                       gait_limp_shift=gait_limp_shift,
                                       gait_limp_crouch_m=gait_limp_crouch_m,
                                       spec_version=spec_version)
        except K.ContractError as exc:
            raise ValueError(f"HexapodEnv: {exc}") from None
        self.obs_builder = self.contract.observation_builder()
        self.decoder = self.contract.decoder()
        self.randomize = check_randomize(randomize)
        self.terrain = check_terrain(terrain)
        self.terrain_spec = TerrainSpec()
        self.faults = check_faults(faults)
        self.fault_spec = FaultSpec()
        self._world_labels = {"terrain": "flat", "faults": "none"}
        self.curriculum = Curriculum.from_section(curriculum)
        self.nominal_friction = float(friction)
        self.nominal_latency = int(latency_steps)
        n_obs = self.contract.obs_size
        self._noise = {t: float(v) for t, v in self.randomize.get("obs_noise", {}).items()
                       if v > 0}
        self._next_push = math.inf
        self._obs = None
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (S.ACTION_SIZE,), np.float32)
        self.command = np.zeros(3)
        self._last_action = np.zeros(S.ACTION_SIZE)
        self._steps = 0
        self._state = None

    # ------------------------------------------------------------------------------------
    def _sample_command(self) -> np.ndarray:
        if self.fixed_command is not None:
            return self.fixed_command.copy()
        if self.np_random.random() < self.zero_command_prob:
            return np.zeros(3)
        return np.array([self.np_random.uniform(*self.command_ranges[k])
                         for k in ("vx", "vy", "yaw_rate")])

    def _observe(self) -> np.ndarray:
        s = self._state
        read = {term: getattr(s, attr) for term, attr in NOISY_TERMS.items()}
        for term, std in self._noise.items():
            read[term] = read[term] + std * self.np_random.standard_normal(read[term].shape)
        return self.obs_builder.build(read["ang_vel"], read["gravity"], self.command,
                                      read["joint_pos"], read["joint_vel"],
                                      self._last_action, s.t)

    def _randomize_episode(self) -> None:
        """Draw this episode's physics from the ``randomize`` ranges (nominal when absent)."""
        r, rng, w = self.randomize, self.np_random, self.world
        lo, hi = r.get("mass_scale", (1.0, 1.0))
        w.set_mass_scale({i: rng.uniform(lo, hi) for i in w.nominal_masses})
        w.set_friction(rng.uniform(*r["friction"]) if "friction" in r
                       else self.nominal_friction)
        w.servo.strength = rng.uniform(*r.get("servo_strength", (1.0, 1.0)), J.NUM_JOINTS)
        w.servo.speed = rng.uniform(*r.get("servo_speed", (1.0, 1.0)), J.NUM_JOINTS)
        lat = r.get("latency_steps")
        w.latency_steps = (int(rng.integers(lat[0], lat[1] + 1)) if lat
                           else self.nominal_latency)
        self._next_push = (rng.uniform(*r["push_interval_s"]) if "push_interval_s" in r
                           and r.get("push_velocity_m_s", 0) > 0 else math.inf)

    def _episode_world(self, options: dict) -> tuple[TerrainSpec, FaultSpec]:
        """This episode's terrain and faults: given in ``options``, else drawn from the
        sections (scaled by the curriculum). Sections that can only give flat ground or a
        healthy robot draw nothing, so the random stream stays the plain env's."""
        rng, cur = self.np_random, self.curriculum
        terrain = options.get("terrain")
        if isinstance(terrain, dict):
            terrain = TerrainSpec(**terrain)
        elif terrain is None and cur is not None:
            terrain = draw_terrain(cur.terrain_section(self.terrain), rng)
        elif terrain is None and self.terrain["kinds"] != {"flat": 1.0}:
            terrain = draw_terrain(self.terrain, rng)
        faults = options.get("faults")
        if isinstance(faults, dict):
            faults = FaultSpec(**faults)
        elif faults is None and cur is not None:
            faults = cur.draw_faults(self.faults, rng)
        elif faults is None and (self.faults["kinds"] != {"none": 1.0}
                                 or self.faults["payload_kg"][1] > 0):
            faults = draw_faults(self.faults, rng)
        return terrain or TerrainSpec(), faults or FaultSpec()

    def _maybe_push(self, t: float) -> None:
        if t < self._next_push:
            return
        angle = self.np_random.uniform(0, 2 * math.pi)
        speed = self.np_random.uniform(0, self.randomize["push_velocity_m_s"])
        self.world.push((speed * math.cos(angle), speed * math.sin(angle), 0.0))
        self._next_push = t + self.np_random.uniform(*self.randomize["push_interval_s"])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        self.command = (np.asarray(options["command"], dtype=float) if "command" in options
                        else self._sample_command())
        q0 = J.DEFAULT_POSE + self.np_random.uniform(-self.init_noise, self.init_noise,
                                                     J.NUM_JOINTS)
        if self.randomize:
            self._randomize_episode()
        self.terrain_spec, self.fault_spec = self._episode_world(options)
        self._world_labels = {"terrain": self.terrain_spec.label(),
                              "faults": self.fault_spec.label()}
        self._state = self.world.reset(q0, terrain=self.terrain_spec, faults=self.fault_spec)
        self._yaw0 = self._yaw()
        self._pos0 = self._state.base_pos.copy()
        self._heading_cmd = 0.0
        self._last_action = np.zeros(S.ACTION_SIZE)
        self._steps = 0
        self.obs_builder.reset()
        self._obs = self._observe()
        return self._obs, self._info({})

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        q_target = self.decoder(a, self._obs)
        self.world.command(q_target)
        self.obs_builder.note_targets(q_target)
        self.world.step()
        if self.randomize:
            self._maybe_push(self.world.t)
        s = self._state = self.world.state()
        self._steps += 1
        fell = G.fallen(s.height, s.gravity_body, s.body_contact, self.fall_height,
                        self.fall_tilt)
        self._heading_cmd += self.command[2] * self.dt
        terms = R.weighted_terms(
            self.weights, self.sigma, self.dt, lin_vel_body=s.lin_vel_body,
            ang_vel_body=s.ang_vel_body, command=self.command, gravity_body=s.gravity_body,
            action=a, last_action=self._last_action, fell=fell, height=s.height,
            tau=s.tau, joint_speed=s.w, foot_slip_speed=s.foot_slip,
            heading_err=self._yaw() - self._yaw0 - self._heading_cmd)
        reward = sum(terms.values())
        self._last_action = a
        obs = self._obs = self._observe()
        truncated = self._steps >= self.max_steps
        info = self._info(terms, fell)
        if self.curriculum is not None:
            if fell or truncated:
                c, sn = math.cos(self._yaw0), math.sin(self._yaw0)
                vx, vy = self.command[0], self.command[1]
                d = s.base_pos[:2] - self._pos0[:2]
                speed = math.hypot(vx, vy)
                walked = float(d @ np.array([c * vx - sn * vy, sn * vx + c * vy])) / speed \
                    if speed > 0 else 0.0
                info["curriculum_end"] = {"from": self.curriculum.level, "walked_m": walked}
                self.curriculum.episode_end(fell, walked, speed * s.t)
            info["curriculum_level"] = self.curriculum.level
        return obs, float(reward), fell, truncated, info

    def set_command(self, command) -> np.ndarray:
        """Change the (vx, vy, yaw rate) command mid-episode (a navigator's primitive);
        returns the current observation with the new command in it (the next step's
        action is taken on it). Nothing else of the observation changes."""
        cmd = np.asarray(command, dtype=float)
        if cmd.shape != (3,) or not np.all(np.isfinite(cmd)):
            raise ValueError(f"command must be finite (vx, vy, yaw_rate), found {command!r}")
        self.command = cmd.copy()
        self._obs = self._obs.copy()
        self._obs[S.OBS_SLICES["command"]] = cmd
        return self._obs

    def curriculum_level(self) -> int | None:
        """This env's curriculum level (None without a curriculum): saved with every
        training checkpoint so that ``--resume`` goes on at the level it had reached."""
        return None if self.curriculum is None else self.curriculum.level

    def set_curriculum_level(self, level: int) -> None:
        """Restore a level saved by :meth:`curriculum_level` (used by ``--resume``)."""
        if self.curriculum is None:
            raise ValueError("set_curriculum_level: this env has no curriculum section")
        levels = self.curriculum.levels
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < levels:
            raise ValueError(f"set_curriculum_level: expected a level 0..{levels - 1}, "
                             f"found {level!r}")
        self.curriculum.level = level

    def _yaw(self) -> float:
        return G.yaw_from_quat(self._state.base_quat)

    def _info(self, terms: dict, fell: bool = False) -> dict:
        s = self._state
        return {"reward_terms": terms, "command": self.command.copy(),
                "base_velocity": s.lin_vel_body.copy(), "yaw_rate": float(s.ang_vel_body[2]),
                "base_pos": s.base_pos.copy(), "base_quat": s.base_quat.copy(),
                "q": s.q.copy(), "fell": fell, "t": s.t, "ground_z": s.ground_z,
                **self._world_labels}

    @property
    def robot_state(self):
        """Ground-truth ``RobotState`` after the last step (for evaluation, not the policy)."""
        return self._state
