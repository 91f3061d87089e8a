"""Training configuration: one dataclass, read from YAML, validated with errors naming the key."""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass, field, fields

import yaml

ALGORITHMS = ("ppo", "sac", "td3", "dqn", "pgpe")
DISCRETE_ALGORITHMS = ("dqn",)
"""Of ALGORITHMS, those for a discrete action space (Navigate-v0)."""
OFF_POLICY_ALGORITHMS = ("sac", "td3", "dqn")
EVOLUTION_ALGORITHMS = ("pgpe",)
"""Of ALGORITHMS, those run by EvoTorch (``training.evolution``), not stable-baselines3."""
VEC_ENVS = ("subproc", "dummy")
ENGINES = ("sb3", "rllib")
"""Who trains: stable-baselines3 (one machine) or RLlib (Ray: one machine or a cluster)."""
ACTIVATIONS = ("tanh", "relu", "elu")


class ConfigError(ValueError):
    """A training config problem; the message names the key, the value and what is allowed."""


@dataclass
class TrainConfig:
    """Everything ``kraby train`` needs; YAML keys are these field names.

    Attributes:
        algorithm: ``ppo`` (default), ``sac``, ``td3`` or ``dqn`` (stable-baselines3; dqn
            for the discrete primitives of Navigate-v0, the others for continuous actions),
            or ``pgpe`` (EvoTorch's PGPE: a linear policy or the tripod gait's parameters,
            see ``training.evolution``; ``algo_kwargs`` are then PGPE's).
        env_id: Gymnasium id, ``kraby_rl/Hexapod-v0``, ``kraby_rl/OneLeg-v0`` or
            ``kraby_rl/Navigate-v0``.
        env: keyword arguments of the env constructor (see the env's docstring).
        n_envs: parallel environments.
        vec_env: ``subproc`` (one process per env) or ``dummy`` (all in this process).
        total_timesteps: environment steps to train for, all envs together.
        seed: seed of the envs and of the algorithm.
        checkpoint_every: environment steps between checkpoints, all envs together.
        normalize_obs: running observation normalisation (VecNormalize).
        normalize_reward: running reward normalisation (VecNormalize).
        clip_obs: clip of normalised observations.
        algo_kwargs: keyword arguments of the stable-baselines3 algorithm.
        net_arch: hidden layer sizes of the actor (and critic).
        activation: hidden activation, ``tanh``, ``relu`` or ``elu``.
        log_std_init: initial log standard deviation of the Gaussian actions (PPO; 0 = std 1).
            A residual policy explores better with a small one.
        her: hindsight experience replay for a goal-conditioned env (a Dict observation with
            ``achieved_goal`` and ``desired_goal``, e.g. OneLegReach-v0) with an off-policy
            algorithm (sac, td3, dqn): keyword arguments of stable-baselines3's
            ``HerReplayBuffer`` (``n_sampled_goal``, ``goal_selection_strategy``, ...);
            ``{}`` (default) = plain replay.
        pgpe: what only ``pgpe`` has (``training.evolution.PGPE_KEYS``): ``target``
            (``linear`` or ``gait``), ``num_actors``, ``num_episodes``, ``command``.
        engine: ``sb3`` (stable-baselines3, default) or ``rllib`` (RLlib PPO on Ray, one
            machine or a cluster: ``training.rllib_engine``); ``kraby train --engine``.
        rllib: what only RLlib has: ``env_runners`` and ``training``, keyword arguments of
            RLlib's ``PPOConfig.env_runners()`` and ``PPOConfig.training()``.
        torch_threads: threads torch may use in the training process. 1 by default: the
            networks are small, and more torch threads compete with the env processes
            for the cores (on 2 cores the training process took ~60 % of the CPU with 2).
    """

    algorithm: str = "ppo"
    env_id: str = "kraby_rl/Hexapod-v0"
    env: dict = field(default_factory=dict)
    n_envs: int = 2
    vec_env: str = "subproc"
    total_timesteps: int = 1_000_000
    seed: int = 0
    checkpoint_every: int = 10_000
    normalize_obs: bool = True
    normalize_reward: bool = True
    clip_obs: float = 10.0
    algo_kwargs: dict = field(default_factory=dict)
    net_arch: list = field(default_factory=lambda: [128, 128])
    activation: str = "tanh"
    log_std_init: float = 0.0
    torch_threads: int = 1
    her: dict = field(default_factory=dict)
    pgpe: dict = field(default_factory=dict)
    engine: str = "sb3"
    rllib: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


_TYPES = {int: (int,), float: (int, float), bool: (bool,), str: (str,), dict: (dict,),
          list: (list,)}


def _algo_class(name: str):
    import stable_baselines3 as sb3
    return {"ppo": sb3.PPO, "sac": sb3.SAC, "td3": sb3.TD3, "dqn": sb3.DQN}[name]


def _check_kwargs(where: str, given: dict, target) -> None:
    params = inspect.signature(target).parameters
    allowed = [p for p in params if p not in ("self", "policy", "env", "args", "kwargs")]
    for key in given:
        if key not in allowed:
            raise ConfigError(
                f"{where}: unknown key {key!r} (value {given[key]!r}); allowed keys: "
                f"{', '.join(sorted(allowed))}")


def validate(cfg: TrainConfig, check_algo_kwargs: bool = True) -> TrainConfig:
    """Check types and values; raise ``ConfigError`` naming the key, value and what is allowed."""
    for f in fields(TrainConfig):
        v = getattr(cfg, f.name)
        typ = {"int": int, "float": float, "bool": bool, "str": str, "dict": dict,
               "list": list}[f.type if isinstance(f.type, str) else f.type.__name__]
        ok = isinstance(v, _TYPES[typ]) and not (typ in (int, float) and isinstance(v, bool))
        if not ok:
            raise ConfigError(
                f"config key {f.name!r}: expected {typ.__name__}, found {v!r} "
                f"({type(v).__name__})")
    if cfg.algorithm not in ALGORITHMS:
        raise ConfigError(f"config key 'algorithm': unknown algorithm {cfg.algorithm!r}; "
                          f"allowed: {', '.join(ALGORITHMS)}")
    if cfg.engine not in ENGINES:
        raise ConfigError(f"config key 'engine': found {cfg.engine!r}; allowed: "
                          f"{', '.join(ENGINES)}")
    if cfg.engine == "rllib":
        from kraby_rl.training.rllib_engine import check_section
        try:
            check_section(cfg)
        except ValueError as exc:
            raise ConfigError(f"config key 'rllib': {exc}") from None
    elif cfg.rllib:
        raise ConfigError("config key 'rllib': only for engine rllib (kraby train --engine "
                          "rllib), found engine 'sb3'")
    if cfg.vec_env not in VEC_ENVS:
        raise ConfigError(f"config key 'vec_env': found {cfg.vec_env!r}; allowed: "
                          f"{', '.join(VEC_ENVS)}")
    if cfg.activation not in ACTIVATIONS:
        raise ConfigError(f"config key 'activation': found {cfg.activation!r}; allowed: "
                          f"{', '.join(ACTIVATIONS)}")
    for name in ("n_envs", "total_timesteps", "checkpoint_every", "torch_threads"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"config key {name!r}: must be >= 1, found {getattr(cfg, name)!r}")
    if not cfg.net_arch or not all(isinstance(n, int) and n > 0 for n in cfg.net_arch):
        raise ConfigError(f"config key 'net_arch': expected a list of positive layer sizes, "
                          f"found {cfg.net_arch!r}")
    import kraby_rl.envs  # noqa: F401  (registers the env ids)
    import gymnasium as gym
    if cfg.env_id not in gym.registry:
        raise ConfigError(f"config key 'env_id': unknown env {cfg.env_id!r}; allowed: "
                          f"{', '.join(kraby_rl.envs.ENV_IDS)}")
    entry = gym.registry[cfg.env_id].entry_point
    mod, _, cls = entry.partition(":")
    import importlib
    _check_kwargs("config key 'env'", cfg.env, getattr(importlib.import_module(mod), cls))
    from kraby_rl.envs.hexapod_env import check_randomize
    from kraby_rl.sim.faults import check_faults
    from kraby_rl.sim.terrain import check_terrain
    from kraby_rl.sim.curriculum import Curriculum
    for key, check in (("randomize", check_randomize), ("terrain", check_terrain),
                       ("faults", check_faults), ("curriculum", Curriculum.from_section)):
        if cfg.env.get(key) is not None:
            try:
                check(cfg.env[key])
            except ValueError as exc:
                raise ConfigError(f"config key 'env': {exc}") from None
    if cfg.algorithm in EVOLUTION_ALGORITHMS:
        from kraby_rl.training import evolution as E
        for key, check in (("algo_kwargs' (pgpe", E.check_algo_kwargs),
                           ("pgpe", lambda _: E.pgpe_section(cfg))):
            try:
                check(cfg.algo_kwargs)
            except ValueError as exc:
                raise ConfigError(f"config key '{key}': {exc}") from None
    elif cfg.pgpe:
        raise ConfigError(f"config key 'pgpe': only for algorithm pgpe, found algorithm "
                          f"{cfg.algorithm!r}")
    elif check_algo_kwargs:
        _check_kwargs(f"config key 'algo_kwargs' ({cfg.algorithm})", cfg.algo_kwargs,
                      _algo_class(cfg.algorithm))
    if cfg.her:
        if cfg.algorithm not in OFF_POLICY_ALGORITHMS:
            raise ConfigError(f"config key 'her': hindsight replay needs an off-policy "
                              f"algorithm ({', '.join(OFF_POLICY_ALGORITHMS)}), found "
                              f"{cfg.algorithm!r}")
        from stable_baselines3 import HerReplayBuffer
        _check_kwargs("config key 'her' (HerReplayBuffer)", cfg.her, HerReplayBuffer)
        for key in ("buffer_size", "observation_space", "action_space", "device", "n_envs"):
            if key in cfg.her:
                raise ConfigError(f"config key 'her': {key!r} is set by the algorithm; "
                                  f"put buffer_size in algo_kwargs")
    return cfg


def from_dict(data: dict, source: str = "config") -> TrainConfig:
    """Build and validate a ``TrainConfig`` from a mapping (e.g. parsed YAML)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of config keys, found {data!r}")
    known = [f.name for f in fields(TrainConfig)]
    for key in data:
        if key not in known:
            raise ConfigError(f"{source}: unknown key {key!r} (value {data[key]!r}); "
                              f"allowed keys: {', '.join(known)}")
    return validate(TrainConfig(**data))


def merge(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, section by section: a mapping merges into a
    mapping (``{"env": {"episode_s": 5}}`` changes one env key and keeps the others); any
    other value replaces. Neither argument is changed."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def check_env(cfg: TrainConfig) -> None:
    """Build the env of ``cfg`` once here, so that a bad env value is one clear error before
    any run directory exists, not a traceback in each worker process."""
    import gymnasium as gym
    import kraby_rl.envs  # noqa: F401
    try:
        env = gym.make(cfg.env_id, **cfg.env)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(f"config key 'env' ({cfg.env_id}): {exc}") from None
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    space = env.observation_space
    goal_env = isinstance(space, gym.spaces.Dict) and {"achieved_goal", "desired_goal"} \
        <= set(space.spaces) and hasattr(env.unwrapped, "compute_reward")
    env.close()
    if cfg.engine == "rllib" and not isinstance(space, gym.spaces.Box):
        raise ConfigError(f"config key 'engine': rllib trains a policy of a flat (Box) "
                          f"observation here; {cfg.env_id} has a {type(space).__name__} one")
    if cfg.algorithm in EVOLUTION_ALGORITHMS and not isinstance(space, gym.spaces.Box):
        raise ConfigError(f"config key 'algorithm': pgpe searches a policy of a flat (Box) "
                          f"observation; {cfg.env_id} has a {type(space).__name__} one")
    if cfg.her and not goal_env:
        raise ConfigError(f"config key 'her': {cfg.env_id} is not a goal-conditioned env "
                          f"(expected a Dict observation with achieved_goal and desired_goal "
                          f"and compute_reward)")
    if discrete != (cfg.algorithm in DISCRETE_ALGORITHMS):
        kinds = DISCRETE_ALGORITHMS if discrete else [a for a in ALGORITHMS
                                                      if a not in DISCRETE_ALGORITHMS]
        raise ConfigError(
            f"config key 'algorithm': {cfg.algorithm!r} does not fit {cfg.env_id}, whose "
            f"actions are {'discrete' if discrete else 'continuous'}; allowed: "
            f"{', '.join(kinds)}")


def load(path: str, overrides: dict | None = None, build_env: bool = True) -> TrainConfig:
    """Read a YAML training config, merge ``overrides`` into it (``merge``), validate it
    whole, env included (``build_env``)."""
    try:
        with open(path) as fh:
            data = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"training config {path!r} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"training config {path!r} is not valid YAML: {exc}") from None
    if isinstance(data, dict):
        data = merge(data, overrides or {})
    cfg = from_dict(data, source=path)
    if build_env:
        check_env(cfg)
    return cfg


def contract_metadata(env_id: str, env: dict | None) -> dict:
    """The contract a run on ``env_id`` configured with ``env`` trains against, as metadata
    (``Contract.metadata()`` for Hexapod-v0; sizes and period for the one-leg task)."""
    from kraby_rl.core import contract as K
    from kraby_rl.core import spec as S
    env = env or {}
    if env_id == "kraby_rl/Hexapod-v0":
        return K.Contract.from_env_config(env).metadata()
    if env_id == "kraby_rl/Navigate-v0":
        from kraby_rl.core import navigation as N
        spec = N.NavigationSpec(**{k: env[k] for k in ("primitive_s", "arrive_m",
                                                       "distance_clip_m") if k in env})
        return {"obs_size": N.OBS_SIZE, "action_size": N.N_PRIMITIVES,
                "action_type": "discrete", "walker": env.get("walker", "walk"),
                **spec.metadata()}
    return {"obs_size": S.ONE_LEG_OBS_SIZE, "action_size": S.ONE_LEG_ACTION_SIZE,
            "control_period_s": float(env.get("control_period_s", K.CONTROL_PERIOD_S))}
