"""Navigate-v0 and DQN: the shared observation, the env, train -> export -> torch-free load ->
evaluate on a tiny budget, config checks, and the shipped navigation policy's success rate."""

import math
import os

import gymnasium as gym
import numpy as np
import pytest
from run_helpers import run_without

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.core import navigation as N
from kraby_rl.core.policy_runtime import ExportedPolicy
from kraby_rl.training import config as C

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
SPEC = N.NavigationSpec()


def test_observation_puts_the_goal_in_the_body_frame():
    # facing +y at (1, 1); the goal 2 m further along +y is straight ahead
    obs = N.observe(SPEC, (1.0, 1.0), math.pi / 2, (1.0, 3.0), (0.1, -0.05), 0.2, 3)
    assert obs.shape == (N.OBS_SIZE,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[:6], [2.0, 1.0, 0.0, 0.1, -0.05, 0.2], atol=1e-6)
    assert obs[6:].tolist() == [0, 0, 0, 1, 0, 0, 0]
    # the same goal seen facing +x is on the left; a far goal saturates
    left = N.observe(SPEC, (1.0, 1.0), 0.0, (1.0, 3.0), (0, 0), 0, 0)
    np.testing.assert_allclose(left[1:3], [0.0, 1.0], atol=1e-6)
    far = N.observe(SPEC, (0, 0), 0.0, (-10.0, 0.0), (0, 0), 0, 0)
    np.testing.assert_allclose(far[:3], [SPEC.distance_clip_m, -1.0, 0.0], atol=1e-6)


def test_primitives_and_spec_refuse_bad_values():
    assert N.command(1).tolist() == [0.15, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"primitive: expected an index 0..6 .*found 7"):
        N.command(7)
    with pytest.raises(ValueError, match=r"navigation arrive_m: expected a positive number, "
                                         r"found -0.1"):
        N.NavigationSpec(arrive_m=-0.1)
    meta = SPEC.metadata()
    assert N.NavigationSpec.from_metadata(meta) == SPEC
    bad = {"navigation": {**meta["navigation"], "primitives": [["stand", [0, 0, 0]]]}}
    with pytest.raises(ValueError, match="navigation primitives .* differ"):
        N.NavigationSpec.from_metadata(bad, what="policy 'x'")
    with pytest.raises(ValueError, match="not a navigation policy"):
        N.NavigationSpec.from_metadata({"env_id": "kraby_rl/Hexapod-v0"})


def test_env_walks_a_primitive_with_the_walking_policy():
    env = gym.make("kraby_rl/Navigate-v0")
    try:
        obs, info = env.reset(seed=0, options={"goal": (1.0, 0.0)})
        assert env.action_space.n == N.N_PRIMITIVES
        assert info["distance"] == pytest.approx(1.0, abs=0.01)
        np.testing.assert_allclose(obs[:3], [1.0, 1.0, 0.0], atol=0.02)
        total, arrived = 0.0, False
        for k in range(20):                     # 10 s of "forward" walks 1 m at 0.15 m/s
            obs, r, term, trunc, info = env.step(1)
            total += r
            assert not info["fell"]
            if term:
                arrived = True
                break
        assert arrived and info["arrived"] and info["distance"] < SPEC.arrive_m
        assert 5.0 < info["t"] < 9.0, info["t"]             # about 1 m / 0.15 m/s
        assert obs[6 + 1] == 1.0                            # last primitive: forward
        assert total > 10.0                                  # progress + arrival bonus
        # turning in place gains nothing and costs time
        env.reset(seed=0, options={"goal": (1.0, 0.0)})
        obs, r, term, trunc, info = env.step(5)
        assert r < 0.0 and not term and obs[5] > 0.3        # yawing left
        assert 0.95 < info["distance"] < 1.05
    finally:
        env.close()
    with pytest.raises(ValueError, match=r"goal_range_m: expected \[low, high\]"):
        gym.make("kraby_rl/Navigate-v0", goal_range_m=(2.0, 1.0))
    with pytest.raises(ValueError, match="primitive_s .* whole multiple"):
        gym.make("kraby_rl/Navigate-v0", primitive_s=0.51)


@pytest.mark.parametrize("algorithm, env_id, allowed", [
    ("ppo", "kraby_rl/Navigate-v0", "dqn"),
    ("dqn", "kraby_rl/Hexapod-v0", "ppo, sac, td3, pgpe"),
])
def test_algorithm_must_fit_the_action_space(tmp_path, algorithm, env_id, allowed):
    p = tmp_path / "cfg.yaml"
    p.write_text(f"algorithm: {algorithm}\nenv_id: {env_id}\n")
    with pytest.raises(C.ConfigError, match=rf"'algorithm': '{algorithm}' does not fit "
                                            rf"{env_id}.*allowed: {allowed}$"):
        C.load(str(p))


def test_dqn_trains_exports_and_runs_without_torch(tmp_path):
    from kraby_rl.evaluation.evaluate import evaluate
    from kraby_rl.training.export import export
    from kraby_rl.training.train import load_model, train
    cfg = C.load(os.path.join(ROOT, "config", "train_navigate.yaml"),
                 {"total_timesteps": 200, "n_envs": 1, "vec_env": "dummy",
                  "checkpoint_every": 100, "env": {"episode_s": 5.0},
                  "algo_kwargs": {"learning_starts": 50, "buffer_size": 1000}})
    run = str(tmp_path / "run")
    train(cfg, run, progress_bar=False, log=lambda m: None)
    out = export(run, str(tmp_path / "export"))
    policy = ExportedPolicy(out)
    assert policy.discrete and policy.metadata["algorithm"] == "dqn"
    assert N.NavigationSpec.from_metadata(policy.metadata) == N.NavigationSpec()
    model, vec, _ = load_model(run)
    obs = np.random.default_rng(0).normal(0, 1, (1000, N.OBS_SIZE)).astype(np.float32)
    import torch
    with torch.no_grad():
        q_ref = model.q_net(torch.as_tensor(vec.normalize_obs(obs))).numpy()
    assert np.abs(policy.values(obs) - q_ref).max() <= 1e-5
    assert (policy.act(obs) == q_ref.argmax(axis=1)).mean() > 0.99
    r = run_without(("torch", "stable_baselines3"), (
        "import numpy as np\n"
        "from kraby_rl.core.policy_runtime import ExportedPolicy\n"
        f"p = ExportedPolicy({out!r})\n"
        "a = p.act(np.zeros(13))\n"
        "assert isinstance(a, int) and 0 <= a < 7, a\n"
        "print('ok', a)\n"))
    assert r.returncode == 0, r.stderr
    summary = evaluate(out, episodes=2, seconds=3.0, log=lambda m: None)
    assert summary["env_id"] == "kraby_rl/Navigate-v0" and summary["episodes"] == 2
    assert 0.0 <= summary["success_rate"] <= 1.0
    assert len(summary["episodes_detail"]) == 2
    assert all(0 < e["time_s"] <= 3.0 + 1e-6 for e in summary["episodes_detail"])


def test_shipped_navigation_policy_reaches_random_goals():
    """Done means >= 90 % of goals 0.5-2 m away within 0.1 m in 40 s, no falls (the closing
    note has 100 goals; 30 here)."""
    from kraby_rl.evaluation.evaluate import evaluate
    summary = evaluate("navigate", episodes=30, seed=5000, log=lambda m: None)
    assert summary["seconds"] == 40.0 and summary["arrive_m"] == 0.1
    assert summary["falls"] == 0
    assert summary["success_rate"] >= 0.9, summary["episodes_detail"]
    starts = [e["start_distance_m"] for e in summary["episodes_detail"]]
    assert min(starts) >= 0.5 - 0.02 and max(starts) <= 2.0 + 0.02
