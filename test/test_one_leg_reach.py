"""OneLegReach-v0 and SAC+HER: the goal env's sparse reward, config checks, and train ->
export -> torch-free load -> evaluate on a tiny budget; resume of a hindsight run."""

import os

import gymnasium as gym
import numpy as np
import pytest
from run_helpers import run_without

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.core.policy_runtime import ExportedPolicy
from kraby_rl.training import config as C

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
CONFIG = os.path.join(ROOT, "config", "train_one_leg_reach.yaml")


def test_reward_is_sparse_vectorised_and_matches_the_step():
    env = gym.make("kraby_rl/OneLegReach-v0")
    try:
        obs, info = env.reset(seed=3)
        assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
        assert obs["observation"].shape == (9,) and obs["desired_goal"].shape == (3,)
        u = env.unwrapped
        goal = obs["desired_goal"]
        batch = np.stack([goal, goal + [0.004, 0, 0], goal + [0, 0.006, 0]])
        r = u.compute_reward(batch, np.repeat(goal[None], 3, axis=0), [{}] * 3)
        assert r.shape == (3,) and r.tolist() == [0.0, 0.0, -1.0]
        for _ in range(5):
            obs, rew, term, trunc, info = env.step(env.action_space.sample())
            assert rew == float(u.compute_reward(obs["achieved_goal"], obs["desired_goal"],
                                                 info))
            assert info["is_success"] == (info["distance"] <= 0.005) == (rew == 0.0)
        # a target where the foot starts is a success at once
        obs, info = env.reset(seed=4)
        foot = obs["achieved_goal"].astype(float)
        obs, info = env.reset(seed=4, options={"target": foot})
        assert info["is_success"]
    finally:
        env.close()
    with pytest.raises(ValueError, match=r"tolerance_m must be > 0 \[m\], found 0"):
        gym.make("kraby_rl/OneLegReach-v0", tolerance_m=0)


@pytest.mark.parametrize("change, pattern", [
    ({"algorithm": "ppo", "algo_kwargs": {}},
     r"'her': hindsight replay needs an off-policy algorithm \(sac, td3, dqn\), found 'ppo'"),
    ({"her": {"n_sampled_goals": 4}},
     r"'her' \(HerReplayBuffer\): unknown key 'n_sampled_goals'.*n_sampled_goal"),
    ({"env_id": "kraby_rl/OneLeg-v0", "env": {}},
     r"'her': kraby_rl/OneLeg-v0 is not a goal-conditioned env"),
])
def test_bad_her_configs_are_named(tmp_path, change, pattern):
    import yaml
    with open(CONFIG) as fh:
        data = {**yaml.safe_load(fh), **change}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(C.ConfigError, match=pattern):
        C.load(str(p))


def test_sac_her_trains_resumes_exports_and_runs_without_torch(tmp_path):
    from kraby_rl.evaluation.evaluate import evaluate
    from kraby_rl.training.export import export
    from kraby_rl.training.train import load_model, train
    cfg = C.load(CONFIG, {"total_timesteps": 300, "checkpoint_every": 150,
                          "algo_kwargs": {"learning_starts": 100, "buffer_size": 2000,
                                          "batch_size": 32}})
    run = str(tmp_path / "run")
    # stop at 200 steps (a checkpoint at 150), then resume: the hindsight buffer is empty
    # again and must refill before the first update, instead of failing to sample
    from stable_baselines3.common.callbacks import BaseCallback

    class StopAt200(BaseCallback):
        def _on_step(self):
            if self.model.num_timesteps >= 200:
                raise KeyboardInterrupt
            return True
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress_bar=False, log=lambda m: None, callbacks=[StopAt200()])
    train(cfg, run, resume=True, progress_bar=False, log=lambda m: None)
    out = export(run, str(tmp_path / "export"))
    policy = ExportedPolicy(out)
    assert [k for k, _ in policy.obs_keys] and policy.metadata["her"]["n_sampled_goal"] == 4
    assert sum(n for _, n in policy.obs_keys) == policy.obs_size == 15
    model, vec, _ = load_model(run)
    rng = np.random.default_rng(0)
    obs = {"observation": rng.normal(0, 1, (1000, 9)).astype(np.float32),
           "achieved_goal": rng.normal(0, 0.1, (1000, 3)).astype(np.float32),
           "desired_goal": rng.normal(0, 0.1, (1000, 3)).astype(np.float32)}
    ref, _ = model.predict(vec.normalize_obs(obs), deterministic=True)
    got = policy.act(obs)
    assert np.abs(ref - got).max() <= 1e-5
    assert np.abs(got).max() > 1e-3
    with pytest.raises(Exception, match="observation keys"):
        policy.act({"observation": obs["observation"]})
    r = run_without(("torch", "stable_baselines3"), (
        "import numpy as np\n"
        "from kraby_rl.core.policy_runtime import ExportedPolicy\n"
        f"p = ExportedPolicy({out!r})\n"
        "a = p.act({'observation': np.zeros(9), 'achieved_goal': np.zeros(3),\n"
        "           'desired_goal': np.full(3, 0.1)})\n"
        "assert a.shape == (3,), a\n"
        "print('ok', a)\n"))
    assert r.returncode == 0, r.stderr
    summary = evaluate(out, episodes=3, log=lambda m: None)
    assert summary["env_id"] == "kraby_rl/OneLegReach-v0" and summary["tolerance_m"] == 0.005
    assert 0.0 <= summary["success_rate"] <= 1.0
    assert summary["mean"]["final_distance_m"] > 0


def test_every_target_is_reached_by_a_constant_action():
    """Targets come from joint angles an action can command: the inverse kinematics of each
    target gives an action in [-1, 1], and holding it brings the foot within 5 mm."""
    from kraby_rl.core import joints as J
    from kraby_rl.core import kinematics as K
    from kraby_rl.core import spec as S
    env = gym.make("kraby_rl/OneLegReach-v0")
    try:
        for seed in range(12):
            obs, _ = env.reset(seed=seed)
            feet = K.foot_positions(J.DEFAULT_POSE)
            feet[0] = obs["desired_goal"]
            a = ((K.leg_inverse(feet) - J.DEFAULT_POSE) / S.ACTION_SCALE)[:3]
            assert np.all(np.abs(a) <= 1.0), (seed, a)
            for _ in range(50):
                obs, r, term, trunc, info = env.step(a)
            assert info["distance"] <= 0.005, (seed, info["distance"])
    finally:
        env.close()
