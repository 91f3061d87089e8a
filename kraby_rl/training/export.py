"""``kraby export RUN``: turn a trained run into a torch-free policy (``core.policy_runtime``)."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from kraby_rl.core import spec as S
from kraby_rl.core.contract import Contract, DEFAULT
from kraby_rl.training.config import contract_metadata
from kraby_rl.training.train import load_model


def _linear_stack(module, activation: str):
    """[(W, b, act)] of an nn.Sequential of Linear + activation layers."""
    import torch.nn as nn
    layers = []
    for m in module:
        if isinstance(m, nn.Linear):
            layers.append([m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy(), "none"])
        elif layers:
            name = {nn.Tanh: "tanh", nn.ReLU: "relu", nn.ELU: "elu"}.get(type(m))
            if name is None:
                raise ValueError(f"cannot export layer {m!r}: only Linear, Tanh, ReLU, ELU")
            layers[-1][2] = name
    return layers


def actor_layers(model) -> list:
    """The deterministic actor of an SB3 PPO/SAC/TD3 model as [(W, b, activation)]; of a
    DQN model, its Q network (one output per discrete action)."""
    from stable_baselines3 import DQN, PPO, SAC, TD3
    pol = model.policy
    if isinstance(model, PPO):
        layers = _linear_stack(pol.mlp_extractor.policy_net, "")
        an = pol.action_net
        layers.append([an.weight.detach().numpy(), an.bias.detach().numpy(), "none"])
    elif isinstance(model, SAC):
        layers = _linear_stack(pol.actor.latent_pi, "")
        mu = pol.actor.mu
        layers.append([mu.weight.detach().numpy(), mu.bias.detach().numpy(), "tanh"])
    elif isinstance(model, TD3):
        layers = _linear_stack(pol.actor.mu, "")
    elif isinstance(model, DQN):
        layers = _linear_stack(pol.q_net.q_net, "")      # Q values; the action is argmax
    else:
        raise ValueError(f"cannot export a {type(model).__name__}: PPO, SAC, TD3 or DQN "
                         f"expected")
    return layers


def obs_keys(model) -> list | None:
    """[(key, size)] of a Dict observation in the order the network concatenates its
    parts (stable-baselines3's CombinedExtractor), or None for a flat observation."""
    import gymnasium as gym
    space = model.observation_space
    if not isinstance(space, gym.spaces.Dict):
        return None
    return [(k, int(np.prod(sp.shape))) for k, sp in space.spaces.items()]


def write_export(out_dir: str, layers: list, obs_mean, obs_var, meta: dict,
                 eps: float = 0.0, clip: float = float("inf")) -> str:
    """Write ``policy.npz`` + ``policy.json`` (format of ``core.policy_runtime``)."""
    os.makedirs(out_dir, exist_ok=True)
    arrays = {}
    for i, (W, b, _) in enumerate(layers):
        arrays[f"W{i}"], arrays[f"b{i}"] = (np.asarray(W, np.float32),
                                            np.asarray(b, np.float32))
    arrays["obs_mean"] = np.asarray(obs_mean, np.float64)
    arrays["obs_var"] = np.asarray(obs_var, np.float64)
    np.savez(os.path.join(out_dir, "policy.npz"), **arrays)
    meta = {**meta, "activations": [a for _, _, a in layers], "obs_eps": float(eps)}
    if np.isfinite(clip):
        meta["clip_obs"] = float(clip)
    with open(os.path.join(out_dir, "policy.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    return out_dir


def export_stand(out_dir: str, contract: Contract = DEFAULT) -> str:
    """The ``stand`` policy: one linear layer with zero weights and bias, so its action is
    always 0, i.e. the default stance. Shipped so the stacks run a real exported policy
    through the whole pipeline before a walking one ships."""
    n = S.OBS_SIZE
    layers = [(np.zeros((S.ACTION_SIZE, n)), np.zeros(S.ACTION_SIZE), "none")]
    meta = {**contract.metadata(), "env_id": "kraby_rl/Hexapod-v0",
            "algorithm": "constant", "description": "holds the default stance (action 0)",
            "timesteps": 0, "seed": None, "training": {}}
    return write_export(out_dir, layers, np.zeros(n), np.ones(n), meta)


def _export_rllib(run_dir, cfg, out_dir, checkpoint) -> str:
    """The RLlib run's actor (encoder + the mean rows of the policy head) and its
    MeanStdFilter statistics, in the same format as every export."""
    from kraby_rl.training import rllib_engine as R
    contract = contract_metadata(cfg.env_id, cfg.env)
    module, filt = R.load_checkpoint(run_dir, checkpoint)
    layers = R.module_layers(module, int(contract["action_size"]))
    mean, var, eps, clip = R.filter_stats(filt, layers[0][0].shape[1])
    training = _training_json(run_dir)
    meta = {**contract, "env_id": cfg.env_id, "env": cfg.env, "algorithm": cfg.algorithm,
            "engine": "rllib", "timesteps": int(training.get("timesteps", 0)),
            "seed": cfg.seed, "checkpoint": checkpoint,
            "source_run": os.path.abspath(run_dir), "training": training,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return write_export(out_dir, layers, mean, var, meta, eps, clip)


def _training_json(run_dir: str) -> dict:
    tj = os.path.join(run_dir, "training.json")
    if not os.path.exists(tj):
        return {}
    with open(tj) as fh:
        return json.load(fh)


def export(run_dir: str, out_dir: str | None = None, checkpoint: int | None = None) -> str:
    """Write ``policy.npz`` and ``policy.json`` for a run (its final model, or the checkpoint
    at ``checkpoint`` steps); returns the export directory."""
    from kraby_rl.training.config import EVOLUTION_ALGORITHMS
    from kraby_rl.training.train import load_run_config
    out_dir = out_dir or os.path.join(run_dir, "export")
    cfg = load_run_config(run_dir)
    if cfg.algorithm in EVOLUTION_ALGORITHMS:
        from kraby_rl.training.evolution import export_pgpe, load_state
        state = load_state(run_dir, checkpoint)
        meta = {"env_id": cfg.env_id, "algorithm": cfg.algorithm, "pgpe": cfg.pgpe,
                "timesteps": int(state["steps"]), "generations": int(state["generation"]),
                "seed": cfg.seed, "checkpoint": checkpoint,
                "source_run": os.path.abspath(run_dir), "training": _training_json(run_dir),
                "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        return export_pgpe(run_dir, cfg, out_dir, checkpoint, meta)
    if cfg.engine == "rllib":
        return _export_rllib(run_dir, cfg, out_dir, checkpoint)
    model, vec, cfg = load_model(run_dir, checkpoint)
    layers = actor_layers(model)
    n_obs = layers[0][0].shape[1]
    keys = obs_keys(model)
    if vec is not None and vec.norm_obs:
        if keys:            # a Dict observation: statistics per key, in the network's order
            rms = vec.obs_rms
            ident = {k: (np.zeros(n), np.ones(n)) for k, n in keys}
            parts = [(rms[k].mean, rms[k].var) if k in rms else ident[k] for k, _ in keys]
            mean = np.concatenate([m for m, _ in parts])
            var = np.concatenate([v for _, v in parts])
        else:
            mean, var = vec.obs_rms.mean, vec.obs_rms.var
        eps, clip = float(vec.epsilon), float(vec.clip_obs)
    else:
        mean, var = np.zeros(n_obs), np.ones(n_obs)
        eps, clip = 0.0, float("inf")
    env = cfg.env
    contract = contract_metadata(cfg.env_id, env)
    training = _training_json(run_dir)
    if keys:
        contract = {**contract, "obs_keys": [[k, n] for k, n in keys]}
    meta = {**contract, "env_id": cfg.env_id, "env": env, "algorithm": cfg.algorithm,
            "her": cfg.her,
            "timesteps": int(model.num_timesteps), "seed": cfg.seed,
            "checkpoint": checkpoint,
            "source_run": os.path.abspath(run_dir), "training": training,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    return write_export(out_dir, layers, mean, var, meta, eps, clip)
