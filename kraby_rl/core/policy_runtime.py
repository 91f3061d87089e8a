"""Runs an exported policy with numpy alone (no torch, no stable-baselines3).

An exported policy is a directory with two files:

* ``policy.json``: metadata: the observation/action contract (``core.contract``: spec
  version, control period, clock, action mode, gait, joint order, default pose, scales,
  clamps, sensor timeouts), the algorithm, the layer activations, the observation
  normalisation clip, provenance.
* ``policy.npz``: ``W0, b0, W1, b1, ...`` (layer ``i`` computes ``x @ W_i.T + b_i``),
  ``obs_mean``, ``obs_var`` (identity normalisation if the run did not normalise).

Inference: ``x = clip((obs - obs_mean) / sqrt(obs_var + eps), -clip_obs, clip_obs)``, then
the hidden layers with their activation, the output layer, the output squash (``none`` for
PPO's Gaussian mean, ``tanh`` for SAC/TD3) and a clip to [-1, 1]. A policy whose metadata
says ``"action_type": "discrete"`` (DQN) outputs one Q value per action, and its action is
the index of the largest. A policy of a Dict observation (``obs_keys``: [[key, size]])
takes the dict, concatenated in that order.
"""

from __future__ import annotations

import json
import os

import numpy as np

from kraby_rl.core.contract import Contract, ContractError

_ACT = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
    "none": lambda x: x,
}


class PolicyError(ValueError):
    """An exported policy that cannot be loaded or does not fit the robot."""


class ExportedPolicy:
    """A deterministic MLP policy loaded from an export directory.

    Args:
        path: the export directory (or its ``policy.json``).
    """

    def __init__(self, path: str):
        if os.path.basename(path) == "policy.json":
            path = os.path.dirname(path)
        self.path = path
        meta_path = os.path.join(path, "policy.json")
        npz_path = os.path.join(path, "policy.npz")
        for p in (meta_path, npz_path):
            if not os.path.exists(p):
                raise PolicyError(f"exported policy {path!r}: {os.path.basename(p)} missing "
                                  f"(expected policy.json and policy.npz)")
        with open(meta_path) as fh:
            self.metadata = json.load(fh)
        with np.load(npz_path) as data:
            arrays = {k: data[k].astype(np.float64) for k in data.files}
        acts = self.metadata.get("activations")
        n = len([k for k in arrays if k.startswith("W")])
        if not acts or len(acts) != n:
            raise PolicyError(f"exported policy {path!r}: metadata 'activations' has "
                              f"{len(acts or [])} entries, the weights have {n} layers")
        self.layers = [(arrays[f"W{i}"], arrays[f"b{i}"], _ACT[acts[i]]) for i in range(n)]
        self.obs_mean = arrays["obs_mean"]
        self.obs_std = np.sqrt(arrays["obs_var"] + float(self.metadata.get("obs_eps", 1e-8)))
        self.clip_obs = float(self.metadata.get("clip_obs", np.inf))
        self.obs_size = self.layers[0][0].shape[1]
        self.action_size = self.layers[-1][0].shape[0]
        self.discrete = self.metadata.get("action_type", "continuous") == "discrete"
        self.obs_keys = [(k, int(n)) for k, n in self.metadata.get("obs_keys") or []]

    def flatten(self, obs) -> np.ndarray:
        """A Dict observation (goal-conditioned envs) as the network's flat input, its parts
        in ``obs_keys`` order; a flat one unchanged."""
        if not isinstance(obs, dict):
            return np.asarray(obs, dtype=np.float64)
        missing = [k for k, _ in self.obs_keys if k not in obs]
        if not self.obs_keys or missing:
            raise PolicyError(f"policy {self.path!r}: observation keys {sorted(obs)} do not "
                              f"match the policy's {[k for k, _ in self.obs_keys]}")
        return np.concatenate([np.asarray(obs[k], dtype=np.float64).reshape(
            *np.shape(obs[k])[:-1], n) for k, n in self.obs_keys], axis=-1)

    def values(self, obs) -> np.ndarray:
        """The network's raw output for observation(s): Q values of a discrete policy."""
        x = (self.flatten(obs) - self.obs_mean) / self.obs_std
        x = np.clip(x, -self.clip_obs, self.clip_obs)
        for W, b, f in self.layers:
            x = f(x @ W.T + b)
        return x

    def act(self, obs: np.ndarray):
        """Action(s) for observation(s): in [-1, 1], (obs_size,) -> (action_size,), or
        batched; of a discrete policy, the index (an int, or an int array when batched)."""
        x = self.values(obs)
        if self.discrete:
            k = np.argmax(x, axis=-1)
            return int(k) if np.ndim(k) == 0 else k
        return np.clip(x, -1.0, 1.0)

    __call__ = act

    def contract(self, pinned: dict | None = None) -> Contract:
        """The policy's contract (``core.contract``), checked against this robot: every key
        present and valid, the package's keys equal, and any ``pinned`` key (a runner's
        parameter) equal to the pinned value.

        Raises:
            PolicyError: naming every missing, invalid or mismatching key.
        """
        try:
            return Contract.from_metadata(self.metadata, pinned, what=f"policy {self.path!r}")
        except ContractError as exc:
            raise PolicyError(str(exc)) from None
