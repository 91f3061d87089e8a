"""``kraby train --engine rllib``: RLlib PPO (Ray's new API stack) on any continuous kraby env.

The same YAML config as the stable-baselines3 path. What both engines mean the same way is
taken from it: ``env_id``/``env`` (each env runner builds the env with ``gym.make``),
``n_envs`` (env runners: Ray actors), ``total_timesteps``, ``seed``, ``checkpoint_every``,
``normalize_obs`` (RLlib's ``MeanStdFilter`` connector, merged over the runners),
``net_arch``/``activation``, and of ``algo_kwargs`` the PPO settings both have
(``SB3_TO_RLLIB``: learning_rate -> lr, n_steps x n_envs -> train_batch_size_per_learner,
batch_size -> minibatch_size, ...). What only RLlib has goes in the ``rllib:`` section:
``env_runners`` and ``training``, keyword arguments of ``PPOConfig.env_runners()`` and
``PPOConfig.training()`` (they win over the translated values). SB3-only settings are
named in the log and not used.

A run directory holds what a stable-baselines3 run does (``config.yaml``, ``spec.json``,
``tb/``, ``training.json``, ``checkpoints/latest.json``), with RLlib checkpoints as
directories (``checkpoints/rllib_<N>/``, ``final_rllib/``): ``--resume`` restores the newest
(weights, optimizer, connector statistics and step counters) and trains on. Without
``--ray-address`` a local Ray is started for the run (loopback only,
``training.ray_local``) and stopped after it; with it, the run joins that cluster (its env
runners go wherever the cluster has CPUs).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import time

import numpy as np

from kraby_rl.training.config import TrainConfig
from kraby_rl.training.ray_local import loopback_ray_env, start_ray

SB3_TO_RLLIB = {"learning_rate": "lr", "gamma": "gamma", "gae_lambda": "lambda_",
                "clip_range": "clip_param", "n_epochs": "num_epochs",
                "batch_size": "minibatch_size", "ent_coef": "entropy_coeff",
                "vf_coef": "vf_loss_coeff", "max_grad_norm": "grad_clip"}
"""stable-baselines3 PPO argument -> RLlib ``PPOConfig.training`` argument (same meaning)."""
RLLIB_SECTIONS = ("env_runners", "training")
ENV_NAME = "kraby_rl_env"
"""The name the env creator is registered under in Ray Tune's registry."""


def env_creator(env_config: dict):
    """An env runner's env: ``env_config`` is ``{"env_id": ..., **env kwargs}``."""
    import gymnasium as gym
    import kraby_rl.envs  # noqa: F401
    kwargs = dict(env_config)
    env_id = kwargs.pop("env_id")
    return gym.make(env_id, **kwargs)


def _ppo_config_class():
    from ray.rllib.algorithms.ppo import PPOConfig
    return PPOConfig


def check_section(cfg: TrainConfig) -> None:
    """ValueError naming an unknown section or keyword of the ``rllib`` section, or an
    algorithm RLlib is not wired for here."""
    if cfg.algorithm != "ppo":
        raise ValueError(f"engine rllib trains ppo, found algorithm {cfg.algorithm!r}")
    if cfg.her:
        raise ValueError("engine rllib: no hindsight replay (her) here")
    unknown = sorted(set(cfg.rllib) - set(RLLIB_SECTIONS))
    if unknown:
        raise ValueError(f"unknown section {unknown[0]!r}; allowed: {', '.join(RLLIB_SECTIONS)}")
    PPOConfig = _ppo_config_class()
    for name in RLLIB_SECTIONS:
        given = cfg.rllib.get(name) or {}
        if not isinstance(given, dict):
            raise ValueError(f"{name}: expected a mapping of PPOConfig.{name}() arguments, "
                             f"found {given!r}")
        allowed = sorted({p for cls in PPOConfig.__mro__ if name in vars(cls)
                          for p in inspect.signature(vars(cls)[name]).parameters
                          if p not in ("self", "kwargs")})   # PPO's, then the base class's
        for key in given:
            if key not in allowed:
                raise ValueError(f"{name}: unknown key {key!r}; allowed: "
                                 f"{', '.join(sorted(allowed))}")


def build_config(cfg: TrainConfig, log=print):
    """The ``PPOConfig`` of a training config (see the module docstring)."""
    from ray.rllib.connectors.env_to_module import MeanStdFilter
    from ray.tune.registry import register_env
    register_env(ENV_NAME, env_creator)
    training = {"train_batch_size_per_learner":
                int(cfg.algo_kwargs.get("n_steps", 2048)) * cfg.n_envs}
    unused = []
    for key, value in cfg.algo_kwargs.items():
        if key in SB3_TO_RLLIB:
            training[SB3_TO_RLLIB[key]] = value
        elif key != "n_steps":
            unused.append(key)
    if cfg.normalize_reward:
        unused.append("normalize_reward")
    if cfg.log_std_init:
        unused.append("log_std_init")
    if unused:
        log(f"rllib: not used (stable-baselines3 only): {', '.join(unused)}")
    training.update(cfg.rllib.get("training") or {})
    runners = {"num_env_runners": cfg.n_envs, "num_cpus_per_env_runner": 1,
               "rollout_fragment_length": "auto",
               **(cfg.rllib.get("env_runners") or {})}
    if cfg.normalize_obs:
        runners["env_to_module_connector"] = \
            lambda env, spaces=None, device=None: MeanStdFilter(clip_by_value=cfg.clip_obs)
    PPOConfig = _ppo_config_class()
    return (PPOConfig()
            .environment(ENV_NAME, env_config={"env_id": cfg.env_id, **cfg.env})
            .env_runners(**runners)
            .training(**training)
            .rl_module(model_config={"fcnet_hiddens": list(cfg.net_arch),
                                     "fcnet_activation": cfg.activation})
            .learners(num_learners=0)
            .debugging(seed=cfg.seed))


def checkpoint_dir(run_dir: str, n: int) -> str:
    from kraby_rl.training.train import CKPT_DIR
    return os.path.join(run_dir, CKPT_DIR, f"rllib_{n}")


def _save(algo, run_dir: str, steps: int, wall_s: float) -> str:
    """An RLlib checkpoint at ``steps``, then the run's marker (atomically, last)."""
    from kraby_rl.training.train import write_marker
    path = checkpoint_dir(run_dir, steps)
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(tmp)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    write_marker(run_dir, steps, wall_s)
    return path


def _scalars(result: dict) -> dict:
    runners = result.get("env_runners", {})
    learner = (result.get("learners") or {}).get("default_policy", {})
    out = {"rollout/ep_rew_mean": runners.get("episode_return_mean"),
           "rollout/ep_len_mean": runners.get("episode_len_mean"),
           "train/policy_loss": learner.get("policy_loss"),
           "train/vf_loss": learner.get("vf_loss"),
           "train/entropy": learner.get("entropy"),
           "time/env_steps_per_s": runners.get("num_env_steps_sampled_lifetime_throughput")}
    scalars = {}
    for k, v in out.items():
        try:
            v = float(v)
        except (TypeError, ValueError):     # absent (None) or not a number (a stats dict)
            continue
        if np.isfinite(v):
            scalars[k] = v
    return scalars


def train_rllib(cfg: TrainConfig, run_dir: str, resume: bool, ray_address: str | None = None,
                log=print) -> str:
    """Train (or resume) RLlib PPO into ``run_dir``; returns the final checkpoint's path.
    A KeyboardInterrupt saves a checkpoint and is raised again."""
    import ray
    from torch.utils.tensorboard import SummaryWriter
    from kraby_rl.training.train import _marker, latest_checkpoint
    check_section(cfg)
    loopback_ray_env()
    started = False
    if ray_address:
        ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
        log(f"ray: joined the cluster at {ray_address} "
            f"({int(ray.cluster_resources().get('CPU', 0))} CPUs, "
            f"{len([n for n in ray.nodes() if n['Alive']])} nodes)")
    else:
        started = start_ray(max(os.cpu_count() or 1, cfg.n_envs), log)
    try:
        algo = build_config(cfg, log).build_algo()
        wall0 = 0.0
        if resume:
            n = latest_checkpoint(run_dir)[0]
            algo.restore_from_path(checkpoint_dir(run_dir, n))
            wall0 = float((_marker(run_dir) or {}).get("wall_s", 0.0))
            log(f"resuming {run_dir} from checkpoint at {n} steps")
        writer = SummaryWriter(os.path.join(run_dir, "tb", "rllib"))
        t0 = time.time()
        steps = int(latest_checkpoint(run_dir)[0]) if resume else 0
        start_steps = steps
        next_ckpt = (steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
        try:
            while steps < cfg.total_timesteps:
                result = algo.train()
                steps = int(result["num_env_steps_sampled_lifetime"])
                scalars = _scalars(result)
                for name, v in scalars.items():
                    writer.add_scalar(name, v, steps)
                writer.flush()
                rate = (steps - start_steps) / max(time.time() - t0, 1e-9)
                ret = scalars.get("rollout/ep_rew_mean")
                log(f"training: {steps}/{cfg.total_timesteps} steps "
                    f"({100 * steps / cfg.total_timesteps:.0f} %), {rate:.0f} steps/s; "
                    + (f"episode reward {ret:.2f}" if ret is not None
                       else "no episode finished yet"))
                if steps >= next_ckpt:
                    _save(algo, run_dir, steps, wall0 + time.time() - t0)
                    next_ckpt = (steps // cfg.checkpoint_every + 1) * cfg.checkpoint_every
        except KeyboardInterrupt:
            _save(algo, run_dir, steps, wall0 + time.time() - t0)
            log(f"interrupted: checkpoint saved at {steps} steps; continue with "
                f"'kraby train --resume {run_dir}'")
            raise
        wall = wall0 + time.time() - t0
        _save(algo, run_dir, steps, wall)
        final = os.path.join(run_dir, "final_rllib")
        shutil.rmtree(final, ignore_errors=True)
        algo.save_to_path(final)
        writer.close()
        with open(os.path.join(run_dir, "training.json"), "w") as fh:
            json.dump({"timesteps": steps, "last_session_wall_s": time.time() - t0,
                       "wall_s": wall, "algorithm": cfg.algorithm, "engine": "rllib",
                       "seed": cfg.seed}, fh)
        log(f"trained {run_dir} with rllib: {steps} steps in all, {steps - start_steps} this "
            f"session in {time.time() - t0:.0f} s. Next: kraby export {run_dir}")
        algo.stop()
        return final
    finally:
        if started or ray_address:
            ray.shutdown()


def load_checkpoint(run_dir: str, checkpoint: int | None = None):
    """(RLModule, observation filter or None) of a run's final checkpoint, or the one at
    ``checkpoint`` steps, else the newest; without starting Ray."""
    from ray.rllib.core.rl_module.rl_module import RLModule
    from kraby_rl.training.train import latest_checkpoint
    if checkpoint is not None:
        path = checkpoint_dir(run_dir, checkpoint)
    elif os.path.isdir(os.path.join(run_dir, "final_rllib")):
        path = os.path.join(run_dir, "final_rllib")
    else:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"{run_dir!r} has neither final_rllib nor a checkpoint")
        path = checkpoint_dir(run_dir, ckpt[0])
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{run_dir!r}: RLlib checkpoint {path} missing")
    module = RLModule.from_checkpoint(
        os.path.join(path, "learner_group", "learner", "rl_module", "default_policy"))
    filt = None
    fpath = os.path.join(path, "env_runner", "env_to_module_connector", "MeanStdFilter")
    if os.path.isdir(fpath):
        filt = _filter_from_state(os.path.join(fpath, "state.pkl"))
    return module, filt


def _filter_from_state(path: str):
    """RLlib's observation filter (``ray.rllib.utils.filter.MeanStdFilter``) rebuilt from
    the MeanStdFilter connector's saved state (one agent), as the connector's ``set_state``
    does; the connector itself cannot be rebuilt without the env's spaces."""
    import pickle
    import tree
    from ray.rllib.utils.filter import MeanStdFilter, RunningStat
    with open(path, "rb") as fh:
        state = pickle.load(fh)
    (agent_state,) = state.values()
    filt = MeanStdFilter(tuple(int(n) for n in np.ravel(agent_state["shape"])),
                         demean=agent_state["de_mean_to_zero"],
                         destd=agent_state["de_std_to_one"], clip=agent_state["clip_by_value"])
    filt.running_stats = tree.unflatten_as(
        filt.shape, [RunningStat.from_state(s) for s in agent_state["running_stats"]])
    return filt


def module_layers(module, action_size: int) -> list:
    """[(W, b, activation)] of the deterministic actor of an RLlib PPO RLModule: the actor
    encoder's MLP, then the policy head's rows that give the Gaussian's mean."""
    from kraby_rl.training.export import _linear_stack
    layers = _linear_stack(module.encoder.actor_encoder.net.mlp, "")
    head = _linear_stack(module.pi.net.mlp, "")
    W, b, act = head[-1]
    head[-1] = [W[:action_size], b[:action_size], act]        # mean, not log std
    return layers + head


def filter_stats(filt, n_obs: int):
    """(mean, var, eps, clip) of the runtime's normalisation that equals RLlib's filter
    ``clip((x - mean) / (std + SMALL_NUMBER))``."""
    from ray.rllib.utils.filter import SMALL_NUMBER
    if filt is None:
        return np.zeros(n_obs), np.ones(n_obs), 0.0, float("inf")
    rs = filt.running_stats
    std = np.asarray(rs.std, dtype=float) + SMALL_NUMBER
    clip = float(filt.clip) if filt.clip else float("inf")
    return np.asarray(rs.mean, dtype=float), std ** 2, 0.0, clip
