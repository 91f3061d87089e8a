"""The terrain/fault curriculum: levels scale what is drawn, advance on a good walk, retreat
on a fall, and the training logs the level distribution."""

import gymnasium as gym
import numpy as np
import pytest

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.sim.curriculum import Curriculum
from kraby_rl.sim.terrain import check_terrain
from kraby_rl.training.config import ConfigError, from_dict


def test_levels_scale_the_terrain_and_fault_draws():
    sec = check_terrain({"kinds": {"steps": 1, "rough": 1}, "step_m": [-0.05, 0.05],
                         "rough_m": [0.0, 0.03]})
    cur = Curriculum(levels=5)
    assert cur.terrain_section(sec)["kinds"] == {"flat": 1.0}        # level 0: flat
    cur.level = 2
    half = cur.terrain_section(sec)
    assert half["step_m"] == pytest.approx((-0.025, 0.025))
    assert half["rough_m"] == pytest.approx((0.0, 0.015))
    cur.level = 4
    assert cur.terrain_section(sec)["step_m"] == pytest.approx((-0.05, 0.05))
    down = check_terrain({"kinds": {"steps": 1}, "step_m": [-0.05, -0.02]})
    cur.level = 2                             # a way down only: from its gentlest step
    assert cur.terrain_section(down)["step_m"] == pytest.approx((-0.035, -0.02))
    cur.level = 4
    from kraby_rl.sim.faults import check_faults
    faults = check_faults({"kinds": {"limp_leg": 1}})
    rng = np.random.default_rng(0)
    cur.level = 1                                                     # difficulty 0.25
    share = np.mean([bool(cur.draw_faults(faults, rng).limp) for _ in range(400)])
    assert 0.18 < share < 0.32


def test_a_good_walk_advances_a_fall_retreats_and_the_ends_are_kept():
    cur = Curriculum(levels=3, advance_ratio=0.6)
    assert cur.episode_end(False, 1.9, 3.0) == 1          # 63 % of the commanded distance
    assert cur.episode_end(False, 1.0, 3.0) == 1          # too short: stays
    assert cur.episode_end(False, 3.0, 3.0) == 2
    assert cur.episode_end(False, 3.0, 3.0) == 2          # top
    assert cur.episode_end(True, 3.0, 3.0) == 1
    assert cur.episode_end(True, 0.0, 3.0) == 0
    assert cur.episode_end(True, 0.0, 3.0) == 0           # bottom
    for bad, said in [({"levels": 1}, "curriculum.levels: expected a whole number >= 2"),
                      ({"start_level": 7}, "curriculum.start_level: expected 0..4"),
                      ({"advance_ratio": 0}, "curriculum.advance_ratio"),
                      ({"speed": 1}, "curriculum: unknown key(s) ['speed']")]:
        with pytest.raises(ValueError) as exc:
            Curriculum.from_section(bad)
        assert said in str(exc.value)
    with pytest.raises(ConfigError, match="config key 'env': curriculum.levels"):
        from_dict({"env": {"curriculum": {"levels": 0}}})


def test_the_env_advances_its_level_as_the_gait_walks():
    env = gym.make("kraby_rl/Hexapod-v0", action_mode="gait_residual", command=[0.15, 0, 0],
                   zero_command_prob=0.0, episode_s=3.0,
                   terrain={"kinds": {"steps": 1}, "step_m": [0.0, 0.02]},
                   curriculum={"levels": 3}).unwrapped
    try:
        levels, labels = [], []
        for episode in range(3):
            _, info = env.reset(seed=episode)
            labels.append(env.terrain_spec.label())
            while True:
                _, _, term, trunc, info = env.step(np.zeros(18))
                if term or trunc:
                    break
            levels.append(info["curriculum_level"])
            assert info["curriculum_end"]["walked_m"] > 0.6 * 0.15 * 3.0
        assert levels == [1, 2, 2]
        assert labels[0] == "flat" and labels[1].startswith("steps")
    finally:
        env.close()


def test_training_logs_the_level_distribution(tmp_path):
    from kraby_rl.training.config import from_dict
    from kraby_rl.training.train import train
    cfg = from_dict({"algorithm": "ppo", "total_timesteps": 64, "n_envs": 1,
                     "vec_env": "dummy", "checkpoint_every": 64,
                     "algo_kwargs": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
                     "env": {"episode_s": 0.2, "curriculum": {"levels": 2},
                             "terrain": {"kinds": {"rough": 1}}}})
    run = str(tmp_path / "run")
    train(cfg, run, progress_bar=False, log=lambda *a: None)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    import glob
    events = glob.glob(f"{run}/**/events.out.tfevents.*", recursive=True)
    assert events
    tags = set()
    for path in events:
        acc = EventAccumulator(path)
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert "curriculum/level_mean" in tags and "curriculum/share_level_0" in tags


def test_the_terrain_recipe_is_a_valid_config():
    import os
    import yaml
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "config", "train_terrain.yaml")) as fh:
        cfg = from_dict(yaml.safe_load(fh), source="config/train_terrain.yaml")
    env = gym.make(cfg.env_id, **{**cfg.env, "episode_s": 0.1}).unwrapped
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == (119,) and env.curriculum.level == 0 and info["terrain"] == "flat"
    finally:
        env.close()


def test_resume_goes_on_at_the_saved_curriculum_levels(tmp_path):
    """A checkpoint keeps each env's level and the run's wall time; --resume restores both
    (it used to restart every env at level 0)."""
    import json
    import os
    from kraby_rl.training.config import from_dict
    from kraby_rl.training.train import train
    cfg = from_dict({"algorithm": "ppo", "total_timesteps": 64, "n_envs": 2,
                     "vec_env": "dummy", "checkpoint_every": 64,
                     "algo_kwargs": {"n_steps": 32, "batch_size": 32, "n_epochs": 1},
                     "env": {"episode_s": 0.1, "command": [0.15, 0.0, 0.0],
                             "zero_command_prob": 0.0,
                             "curriculum": {"levels": 4, "start_level": 2}}})
    run = str(tmp_path / "run")
    train(cfg, run, progress_bar=False, log=lambda *a: None)
    ckpt = os.path.join(run, "checkpoints")
    with open(os.path.join(ckpt, "latest.json")) as fh:
        marker = json.load(fh)
    assert marker["timesteps"] == 64 and marker["wall_s"] > 0
    with open(os.path.join(ckpt, "curriculum_64.json")) as fh:
        levels = json.load(fh)["levels"]
    assert len(levels) == 2 and all(0 <= k < 4 for k in levels)
    # pretend training had reached other levels, then resume past the saved checkpoint
    with open(os.path.join(ckpt, "curriculum_64.json"), "w") as fh:
        json.dump({"levels": [3, 0]}, fh)
    logged = []
    from kraby_rl.training.train import load_run_config
    cfg2 = from_dict({**load_run_config(run).to_dict(), "total_timesteps": 128})
    seen = []

    from stable_baselines3.common.callbacks import BaseCallback

    class FirstLevels(BaseCallback):
        def _on_training_start(self):
            seen.append(self.training_env.env_method("curriculum_level"))

        def _on_step(self):
            return True

    train(cfg2, run, resume=True, progress_bar=False, log=logged.append,
          callbacks=[FirstLevels()])
    assert seen == [[3, 0]]
    assert any("curriculum levels [3, 0]" in line for line in logged)
    with open(os.path.join(ckpt, "latest.json")) as fh:
        assert json.load(fh)["wall_s"] > marker["wall_s"]
