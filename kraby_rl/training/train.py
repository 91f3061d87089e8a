"""``kraby train``: stable-baselines3 training with checkpoints that survive kill -9.

A run directory holds::

    config.yaml              the resolved TrainConfig
    spec.json                the observation/action contract (core.contract)
    checkpoints/model_<N>.zip, vecnormalize_<N>.pkl
    checkpoints/curriculum_<N>.json   each env's curriculum level (envs with a curriculum)
    checkpoints/latest.json  {"timesteps": N, "wall_s": S}, written last and atomically
                             (S: training wall time of all sessions so far)
    tb/                      TensorBoard logs (reward terms under reward/<term>)
    final_model.zip, final_vecnormalize.pkl   when training completes

``--resume RUN`` reloads the newest complete checkpoint (the curriculum levels included)
and trains on to ``total_timesteps``; at most one checkpoint interval of work is lost to a
kill.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time

import yaml

from kraby_rl.training.config import contract_metadata, TrainConfig, from_dict

CKPT_DIR = "checkpoints"


def _atomic_write(path: str, writer) -> None:
    tmp = path + ".tmp"
    writer(tmp)
    os.replace(tmp, path)


def make_env(env_id: str, **kwargs):
    """gym.make that first registers the kraby_rl envs (needed in worker processes)."""
    import gymnasium as gym
    import kraby_rl.envs  # noqa: F401
    return gym.make(env_id, **kwargs)


def make_worker_env(env_id: str, **kwargs):
    """`make_env` in a SubprocVecEnv worker, which leaves Ctrl-C to the training process.

    A terminal's Ctrl-C (and ros2 launch's SIGINT to a process group) reaches the workers
    too; a worker that died of it made the trainer fail with "Connection reset by peer"
    instead of stopping. The trainer stops, saves, and closes its workers itself.
    """
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return make_env(env_id, **kwargs)


def make_vec_env(cfg: TrainConfig, n_envs: int | None = None, seed_offset: int = 0):
    """The (un-normalised) vector env of a config."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv
    import kraby_rl.envs  # noqa: F401
    n = n_envs or cfg.n_envs
    cls = SubprocVecEnv if (cfg.vec_env == "subproc" and n > 1) else DummyVecEnv
    kwargs = {"start_method": "forkserver"} if cls is SubprocVecEnv else None
    factory = make_worker_env if cls is SubprocVecEnv else make_env
    return sb3_make(functools.partial(factory, cfg.env_id), n_envs=n,
                    seed=cfg.seed + seed_offset, env_kwargs=cfg.env, vec_env_cls=cls,
                    vec_env_kwargs=kwargs)


def _activation(name: str):
    import torch.nn as nn
    return {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}[name]


def checkpoint_paths(run_dir: str, n: int) -> tuple[str, str]:
    """(model path, vecnormalize path) of the checkpoint at ``n`` timesteps."""
    d = os.path.join(run_dir, CKPT_DIR)
    return os.path.join(d, f"model_{n}.zip"), os.path.join(d, f"vecnormalize_{n}.pkl")


CKPT_FILES = (("model_", ".zip"), ("pgpe_", ".pt"))
"""(prefix, suffix) of a checkpoint file: stable-baselines3's model, a PGPE search state."""


def checkpoint_steps(run_dir: str) -> list[int]:
    """Timesteps of the checkpoints in a run, ascending (partial ``.tmp`` writes skipped)."""
    d = os.path.join(run_dir, CKPT_DIR)
    names = os.listdir(d) if os.path.isdir(d) else []
    return sorted({int(f[len(a):-len(b)]) for f in names for a, b in CKPT_FILES
                   if f.startswith(a) and f.endswith(b) and f[len(a):-len(b)].isdigit()})


def _marker(run_dir: str) -> dict | None:
    path = os.path.join(run_dir, CKPT_DIR, "latest.json")
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        return json.load(fh)


def latest_checkpoint(run_dir: str) -> tuple[int, str, str] | None:
    """(timesteps, model path, vecnormalize path) of the newest complete checkpoint."""
    marker = _marker(run_dir)
    if marker is None:
        return None
    n = int(marker["timesteps"])
    return (n, *checkpoint_paths(run_dir, n))


def curriculum_path(run_dir: str, n: int) -> str:
    return os.path.join(run_dir, CKPT_DIR, f"curriculum_{n}.json")


def _curriculum_levels(venv) -> list | None:
    """Each env's curriculum level, or None when the envs have no curriculum."""
    try:        # has_attr is answered safely by SubprocVecEnv's workers; env_method is not
        if not venv.has_attr("curriculum_level"):
            return None             # an env without curricula (OneLeg, the robot bridge)
    except (AttributeError, NotImplementedError):
        return None
    levels = venv.env_method("curriculum_level")
    return None if all(k is None for k in levels) else levels


def _restore_curriculum(venv, run_dir: str, n: int) -> list | None:
    path = curriculum_path(run_dir, n)
    if not os.path.exists(path):
        return None
    with open(path) as fh:
        levels = json.load(fh)["levels"]
    for i in range(venv.num_envs):      # --n-envs may differ from the saved run's
        venv.env_method("set_curriculum_level", levels[i % len(levels)], indices=[i])
    return levels


def save_checkpoint(model, run_dir: str, wall_s: float | None = None) -> int:
    """Write model, normalisation stats and curriculum levels, then the marker (with the
    run's training wall time ``wall_s`` when given); returns the timestep count."""
    n = int(model.num_timesteps)
    d = os.path.join(run_dir, CKPT_DIR)
    os.makedirs(d, exist_ok=True)
    model_path, vec_path = checkpoint_paths(run_dir, n)
    _atomic_write(model_path, lambda p: _save_zip(model, p))
    vec = model.get_vec_normalize_env()
    if vec is not None:
        _atomic_write(vec_path, vec.save)
    levels = _curriculum_levels(model.get_env())
    if levels is not None:
        _atomic_write(curriculum_path(run_dir, n),
                      lambda p: open(p, "w").write(json.dumps({"levels": levels})))
    write_marker(run_dir, n, wall_s)
    return n


def write_marker(run_dir: str, n: int, wall_s: float | None = None) -> None:
    """Mark the checkpoint at ``n`` steps as the newest complete one (atomically, after
    everything it names is written), with the run's training wall time ``wall_s``. Every
    engine's checkpoints (stable-baselines3, RLlib, PGPE) share this marker."""
    marker = {"timesteps": n, **({} if wall_s is None else {"wall_s": round(wall_s, 1)})}
    _atomic_write(os.path.join(run_dir, CKPT_DIR, "latest.json"),
                  lambda p: open(p, "w").write(json.dumps(marker)))


def _save_zip(model, path: str) -> None:
    # SB3 appends ".zip" to paths without it; save to a file object to keep our name.
    with open(path, "wb") as fh:
        model.save(fh)


def _prepare_run_dir(cfg: TrainConfig, run_dir: str, resume: bool):
    """Check that ``run_dir`` can be resumed (or is free for a new run) and write a new
    run's config and contract; returns the newest checkpoint (None for a new run).

    Raises:
        FileExistsError: starting a new run in a directory that already holds one.
        FileNotFoundError: resuming a run that has no checkpoint.
    """
    ckpt = latest_checkpoint(run_dir)
    if resume and ckpt is None:
        raise FileNotFoundError(f"cannot resume {run_dir!r}: it has no complete checkpoint "
                                f"({os.path.join(run_dir, CKPT_DIR, 'latest.json')} missing)")
    if not resume and os.path.exists(os.path.join(run_dir, "config.yaml")):
        raise FileExistsError(f"{run_dir!r} already holds a run; use --resume to continue it "
                              f"or choose another --run-dir")
    os.makedirs(run_dir, exist_ok=True)
    if not resume:
        with open(os.path.join(run_dir, "config.yaml"), "w") as fh:
            yaml.safe_dump(cfg.to_dict(), fh, sort_keys=False)
        with open(os.path.join(run_dir, "spec.json"), "w") as fh:
            json.dump({"env_id": cfg.env_id, "env": cfg.env,
                       **contract_metadata(cfg.env_id, cfg.env)}, fh, indent=1)
    return ckpt


def _callbacks(cfg: TrainConfig, run_dir: str, wall):
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpoints(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_at = None

        def _on_training_start(self):
            every = cfg.checkpoint_every
            self.next_at = (self.model.num_timesteps // every + 1) * every

        def _on_step(self):
            if self.model.num_timesteps >= self.next_at:
                save_checkpoint(self.model, run_dir, wall())
                self.next_at += cfg.checkpoint_every
            return True

    class RewardTerms(BaseCallback):
        """Logs the mean of every reward term under reward/<term>."""

        def __init__(self):
            super().__init__()
            self.sums: dict = {}
            self.count = 0

        def _on_step(self):
            for info in self.locals.get("infos", []):
                for k, v in info.get("reward_terms", {}).items():
                    self.sums[k] = self.sums.get(k, 0.0) + v
                self.count += 1
            return True

        def _on_rollout_end(self):
            if self.count:
                for k, v in self.sums.items():
                    self.logger.record(f"reward/{k}", v / self.count)
            self.sums, self.count = {}, 0

    class CurriculumLevels(BaseCallback):
        """Logs the curriculum's level distribution over the envs' steps of each rollout
        (curriculum/level_mean, curriculum/share_level_<k>), when the env has one."""

        def __init__(self):
            super().__init__()
            self.counts: dict = {}

        def _on_step(self):
            for info in self.locals.get("infos", []):
                if "curriculum_level" in info:
                    k = info["curriculum_level"]
                    self.counts[k] = self.counts.get(k, 0) + 1
            return True

        def _on_rollout_end(self):
            total = sum(self.counts.values())
            if total:
                self.logger.record("curriculum/level_mean",
                                   sum(k * n for k, n in self.counts.items()) / total)
                for k, n in sorted(self.counts.items()):
                    self.logger.record(f"curriculum/share_level_{k}", n / total)
            self.counts = {}

    return [Checkpoints(), RewardTerms(), CurriculumLevels()]


def train(cfg: TrainConfig, run_dir: str, resume: bool = False,
          progress_bar: bool | None = None, log=print, callbacks=(), venv=None,
          ray_address: str | None = None) -> str:
    """Train (or resume) into ``run_dir``; returns the path of the final model.

    Feedback: ``progress_bar`` true (default: stderr is a terminal) shows a bar with the
    episode reward and length; false logs a progress line every 10 s through ``log``. The
    session ends with a summary naming the next command.

    ``callbacks`` are extra stable-baselines3 callbacks; one that raises KeyboardInterrupt
    stops training with a checkpoint saved, as Ctrl-C does. ``venv`` replaces the config's
    simulated envs (gym_bridge fine-tunes on the robot's topics this way). ``ray_address``:
    the Ray cluster an ``engine: rllib`` run joins (default: a local Ray for the run).

    Raises:
        FileExistsError: starting a new run in a directory that already holds one.
        FileNotFoundError: resuming a run that has no checkpoint.
    """
    from kraby_rl.training.config import EVOLUTION_ALGORITHMS
    if cfg.engine == "rllib":
        _prepare_run_dir(cfg, run_dir, resume)
        from kraby_rl.training.rllib_engine import train_rllib
        return train_rllib(cfg, run_dir, resume, ray_address, log=log)
    if cfg.algorithm in EVOLUTION_ALGORITHMS:
        _prepare_run_dir(cfg, run_dir, resume)
        from kraby_rl.training.evolution import train_pgpe
        return train_pgpe(cfg, run_dir, resume, log=log)
    from stable_baselines3.common.vec_env import VecNormalize
    from kraby_rl.training.config import _algo_class
    from kraby_rl.training.progress import Progress, summary

    import torch
    torch.set_num_threads(cfg.torch_threads)
    algo_cls = _algo_class(cfg.algorithm)
    ckpt = _prepare_run_dir(cfg, run_dir, resume)
    venv = venv if venv is not None else make_vec_env(cfg)
    if resume:
        n, model_path, vec_path = ckpt
        if cfg.normalize_obs or cfg.normalize_reward:
            venv = VecNormalize.load(vec_path, venv)
        model = algo_cls.load(model_path, env=venv, tensorboard_log=os.path.join(run_dir, "tb"))
        if hasattr(model, "learning_starts"):
            # off-policy: checkpoints hold no replay buffer; refill it before updating
            # (a hindsight buffer cannot even be sampled before its first episode ends)
            import inspect
            warmup = cfg.algo_kwargs.get("learning_starts", inspect.signature(
                algo_cls).parameters["learning_starts"].default)
            model.learning_starts = model.num_timesteps + int(warmup)
        levels = _restore_curriculum(venv, run_dir, n)
        log(f"resuming {run_dir} from checkpoint at {n} steps"
            + (f" (curriculum levels {levels})" if levels is not None else ""))
    else:
        if cfg.normalize_obs or cfg.normalize_reward:
            venv = VecNormalize(venv, norm_obs=cfg.normalize_obs,
                                norm_reward=cfg.normalize_reward, clip_obs=cfg.clip_obs)
        policy_kwargs = {"net_arch": list(cfg.net_arch),
                         **({"log_std_init": cfg.log_std_init} if cfg.algorithm == "ppo"
                            else {}),
                         "activation_fn": _activation(cfg.activation)}
        import gymnasium as gym
        extra = {}
        if cfg.her:
            from stable_baselines3 import HerReplayBuffer
            extra = {"replay_buffer_class": HerReplayBuffer,
                     "replay_buffer_kwargs": dict(cfg.her)}
        policy = ("MultiInputPolicy" if isinstance(venv.observation_space, gym.spaces.Dict)
                  else "MlpPolicy")
        model = algo_cls(policy, venv, seed=cfg.seed, verbose=0,
                         tensorboard_log=os.path.join(run_dir, "tb"),
                         policy_kwargs=policy_kwargs, **extra, **cfg.algo_kwargs)
    remaining = cfg.total_timesteps - model.num_timesteps
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    progress = Progress(cfg.total_timesteps, bar=progress_bar, log=log)
    t0 = time.time()
    wall0 = float((_marker(run_dir) or {}).get("wall_s", 0.0)) if resume else 0.0

    def wall():
        return wall0 + time.time() - t0
    start_steps = model.num_timesteps
    try:
        if remaining > 0:
            model.learn(remaining,
                        callback=_callbacks(cfg, run_dir, wall) + [progress] + list(callbacks),
                        reset_num_timesteps=not resume, tb_log_name="run")
    except KeyboardInterrupt:
        n = save_checkpoint(model, run_dir, wall())
        log(f"interrupted: checkpoint saved at {n} steps; continue with "
            f"'kraby train --resume {run_dir}'")
        venv.close()
        raise
    final = os.path.join(run_dir, "final_model.zip")
    _atomic_write(final, lambda p: _save_zip(model, p))
    vec = model.get_vec_normalize_env()
    if vec is not None:
        _atomic_write(os.path.join(run_dir, "final_vecnormalize.pkl"), vec.save)
    save_checkpoint(model, run_dir, wall())
    elapsed = time.time() - t0
    with open(os.path.join(run_dir, "training.json"), "w") as fh:
        json.dump({"timesteps": int(model.num_timesteps), "last_session_wall_s": elapsed,
                   "wall_s": wall(),
                   "algorithm": cfg.algorithm, "seed": cfg.seed}, fh)
    log(summary(model, run_dir, model.num_timesteps - start_steps, elapsed))
    venv.close()
    return final


def load_run_config(run_dir: str) -> TrainConfig:
    """The validated config saved in a run directory."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{run_dir!r} is not a training run: {path} missing")
    with open(path) as fh:
        return from_dict(yaml.safe_load(fh), source=path)


def load_model(run_dir: str, checkpoint: int | None = None):
    """(SB3 model, VecNormalize or None, config) of a run: the checkpoint at ``checkpoint``
    steps when given, else the final model, else the newest checkpoint."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
    from kraby_rl.training.config import _algo_class
    cfg = load_run_config(run_dir)
    final = os.path.join(run_dir, "final_model.zip")
    vec_path = os.path.join(run_dir, "final_vecnormalize.pkl")
    if checkpoint is not None:
        final, vec_path = checkpoint_paths(run_dir, checkpoint)
        if not os.path.exists(final):
            raise FileNotFoundError(f"{run_dir!r} has no checkpoint at {checkpoint} steps "
                                    f"({final} missing); checkpoints: "
                                    f"{checkpoint_steps(run_dir)}")
    elif not os.path.exists(final):
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"{run_dir!r} has neither final_model.zip nor a checkpoint")
        _, final, vec_path = ckpt
    import gymnasium as gym
    import kraby_rl.envs  # noqa: F401
    dummy = None
    if os.path.exists(vec_path) or cfg.her:     # a hindsight buffer is rebuilt on an env
        dummy = DummyVecEnv([lambda: gym.make(cfg.env_id, **cfg.env)])
    model = _algo_class(cfg.algorithm).load(final, device="cpu",
                                            **({"env": dummy} if cfg.her else {}))
    vec = None
    if os.path.exists(vec_path):
        vec = VecNormalize.load(vec_path, dummy)
        vec.training = False
        vec.norm_reward = False
    return model, vec, cfg


__all__ = ["train", "load_model", "load_run_config", "latest_checkpoint", "save_checkpoint",
           "make_vec_env"]
