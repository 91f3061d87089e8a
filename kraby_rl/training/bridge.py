"""The training half of gym_bridge: stable-baselines3 runs driven by the node.

``nodes/gym_bridge_node.py`` is the ROS side (parameters, the robot's topics as an env,
publishing the first sim env for RViz, emergency_stop pauses, diagnostics); it never
imports training. This module gives it its two training jobs and is the ``gym_bridge``
console script:

* ``SimTraining``: ``mode:=sim``, ``kraby train`` in PyBullet from ``train_config``;
* ``FineTuning``: ``mode:=real fine_tune_run:=RUN``, the run continued on the robot's
  topics, on the run's own contract and reward.

A job is built with the node (``job(node)``; a configuration problem raises ValueError
naming the parameter) and ``run()`` in the node's worker thread. Both stop with a
checkpoint when the node's ``stop`` event is set and pause (checkpoint, wait) while its
``paused`` event is.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from kraby_rl.core.contract import Contract, ContractError


def bridge_callback(node, run_dir: str, publish: bool = True):
    """An SB3 callback that honours the node's stop and pause events, reports the step
    count in the node's status and, in sim, publishes the first env at publish_hz."""
    from stable_baselines3.common.callbacks import BaseCallback

    from kraby_rl.nodes.gym_bridge_node import Stop
    from kraby_rl.training.train import save_checkpoint

    class Bridge(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_pub = 0.0

        def _on_step(self):
            if node.stop.is_set():
                raise Stop()
            if node.paused.is_set():
                n = save_checkpoint(self.model, run_dir)
                node.get_logger().warning(f"emergency_stop: training paused, checkpoint "
                                          f"at {n} steps")
                node.status = f"paused at {n} steps"
                while node.paused.is_set() and not node.stop.is_set():
                    time.sleep(0.05)
                if node.stop.is_set():
                    raise Stop()
                node.get_logger().info("emergency_stop released: training resumes")
            node.status = f"training: {self.model.num_timesteps} steps"
            now = time.monotonic()
            if publish and now >= self.next_pub:
                self.next_pub = now + 1.0 / node.p["publish_hz"]
                node.publish_env(self.locals["infos"][0])
            return True

    return Bridge()


class SimTraining:
    """``mode:=sim``: train in PyBullet like ``kraby train``."""

    publishes_env = True

    def __init__(self, node):
        from kraby_rl.resources import find_config
        from kraby_rl.training import config as TC
        from kraby_rl.training.defaults import DEFAULT_CONFIG
        from kraby_rl.training.train import load_run_config
        self.node = node
        p = node.p
        try:
            if p["resume"]:
                self.cfg, self.run_dir = load_run_config(p["run_dir"]), p["run_dir"]
                return
            overrides = {k: v for k, v in (("total_timesteps", p["timesteps"]),
                                           ("n_envs", p["n_envs"])) if v > 0}
            if p["seed"] >= 0:
                overrides["seed"] = p["seed"]
            cfg = TC.load(find_config(p["train_config"] or DEFAULT_CONFIG), overrides)
        except (TC.ConfigError, FileNotFoundError) as exc:
            raise ValueError(f"parameter 'train_config': {exc}") from None
        if cfg.env_id != "kraby_rl/Hexapod-v0":
            raise ValueError(f"parameter 'train_config': expected env_id kraby_rl/Hexapod-v0 "
                             f"(the robot's env), found {cfg.env_id!r}")
        if os.path.exists(os.path.join(p["run_dir"], "config.yaml")):
            raise ValueError(f"parameter 'run_dir': {p['run_dir']!r} already holds a run; "
                             f"set resume:=true to continue it or choose another run_dir")
        self.cfg, self.run_dir = cfg, p["run_dir"]

    def run(self):
        from kraby_rl.training.train import train
        node = self.node
        node.status = "training"
        train(self.cfg, self.run_dir, resume=node.p["resume"], progress_bar=False,
              log=lambda m: node.get_logger().info(m),
              callbacks=[bridge_callback(node, self.run_dir)])


class FineTuning:
    """``mode:=real fine_tune_run:=RUN``: the run's training continued on the robot for
    ``timesteps`` steps, through the node's topic env (checkpoints in the run)."""

    publishes_env = False

    def __init__(self, node):
        from kraby_rl.training.train import latest_checkpoint, load_run_config
        self.node = node
        p, run = node.p, node.p["fine_tune_run"]
        try:
            cfg = load_run_config(run)
        except (ValueError, FileNotFoundError) as exc:
            raise ValueError(f"parameter 'fine_tune_run': {exc}") from None
        ckpt = latest_checkpoint(run)
        if ckpt is None:
            raise ValueError(f"parameter 'fine_tune_run': expected a run with a checkpoint, "
                             f"found none in {run!r}")
        if cfg.env_id != "kraby_rl/Hexapod-v0":
            raise ValueError(f"parameter 'fine_tune_run': expected a run of "
                             f"kraby_rl/Hexapod-v0, found {cfg.env_id!r}")
        if not p["timesteps"] > 0:
            raise ValueError(f"parameter 'timesteps': expected a positive number of robot "
                             f"steps, found {p['timesteps']!r}")
        self.cfg = dataclasses.replace(cfg, total_timesteps=ckpt[0] + p["timesteps"])
        self.run_dir = run
        self.contract = run_contract(run, cfg.env)
        # fine-tuning continues on the run's own reward (its weights and kernel widths)
        self.reward_weights = cfg.env.get("reward_weights")
        self.tracking_sigma = cfg.env.get("tracking_sigma")

    def run(self):
        from stable_baselines3.common.monitor import Monitor
        from stable_baselines3.common.vec_env import DummyVecEnv

        from kraby_rl.training.train import train
        node = self.node
        node.status = "fine-tuning"
        venv = DummyVecEnv([lambda: Monitor(node.env)])
        train(self.cfg, self.run_dir, resume=True, progress_bar=False, venv=venv,
              log=lambda m: node.get_logger().info(m),
              callbacks=[bridge_callback(node, self.run_dir, publish=False)])


def run_contract(run_dir: str, env: dict) -> Contract:
    """The contract a run trained against: its spec.json checked key by key against this
    robot (a run trained under another residual scale, clamp or observation is refused),
    else, for a run without one, the contract of its env config."""
    path = os.path.join(run_dir, "spec.json")
    if not os.path.exists(path):
        return Contract.from_env_config(env)
    with open(path) as fh:
        meta = json.load(fh)
    try:
        return Contract.from_metadata(meta, what=f"run {run_dir!r}")
    except ContractError as exc:
        raise ValueError(f"parameter 'fine_tune_run': {exc}") from None


JOBS = {"sim": SimTraining, "fine_tune": FineTuning}


def main(args=None):
    """The gym_bridge console script: the node with the training jobs. Exit status 0 when
    training or the episodes finished (or were stopped), 1 when they failed, 2 on a
    configuration error."""
    from kraby_rl.nodes.gym_bridge_node import run_bridge
    sys.exit(run_bridge(JOBS, args=args))


if __name__ == "__main__":
    main()
