"""Training config validation, kill -9 + resume, export equivalence, torch-free inference."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from run_helpers import run_without

from kraby_rl.core.policy_runtime import ExportedPolicy, PolicyError
from kraby_rl.training import config as C

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
KRABY = [sys.executable, "-m", "kraby_rl.cli"]


def _write(tmp_path, text):
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize("text, pattern", [
    ("algorithm: a2c\n", r"'algorithm': unknown algorithm 'a2c'; allowed: ppo, sac, td3"),
    ("total_timestep: 100\n",
     r"unknown key 'total_timestep' \(value 100\); allowed keys: .*total_timesteps"),
    ("n_envs: two\n", r"'n_envs': expected int, found 'two' \(str\)"),
    ("normalize_obs: 1\n", r"'normalize_obs': expected bool, found 1 \(int\)"),
    ("algo_kwargs: {n_step: 64}\n",
     r"'algo_kwargs' \(ppo\): unknown key 'n_step' \(value 64\); allowed keys: .*n_steps"),
    ("env: {episode_seconds: 3}\n", r"'env': unknown key 'episode_seconds'.*episode_s"),
    ("env_id: kraby_rl/Quadruped-v0\n", r"unknown env 'kraby_rl/Quadruped-v0'"),
    ("torch_threads: 0\n", r"'torch_threads': must be >= 1, found 0"),
])
def test_bad_config_is_named(tmp_path, text, pattern):
    with pytest.raises(C.ConfigError, match=pattern):
        C.load(_write(tmp_path, text))


def test_shipped_configs_are_valid():
    for name in os.listdir(os.path.join(ROOT, "config")):
        if name.startswith("train_") and name.endswith(".yaml"):
            C.load(os.path.join(ROOT, "config", name))


def test_cli_reports_config_error(tmp_path):
    p = subprocess.run(KRABY + ["train", "--config", _write(tmp_path, "algorithm: a2c\n"),
                                "--run-dir", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2
    assert "unknown algorithm 'a2c'" in p.stderr


def _latest(run):
    path = os.path.join(run, "checkpoints", "latest.json")
    if not os.path.exists(path):
        return 0
    with open(path) as fh:
        return json.load(fh)["timesteps"]


def test_kill_9_then_resume_continues_from_last_checkpoint(tmp_path):
    run = str(tmp_path / "run")
    cmd = KRABY + ["train", "--timesteps", "6144", "--run-dir", run, "--no-progress",
                   "--set", "checkpoint_every=1024",
                   "--set", "algo_kwargs={n_steps: 256, batch_size: 128, n_epochs: 2}",
                   "--set", "env={episode_s: 2.0}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 300
        while _latest(run) < 2048 and time.time() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)     # the trainer and its env workers
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    killed_at = _latest(run)
    assert 2048 <= killed_at < 6144
    assert not os.path.exists(os.path.join(run, "final_model.zip"))
    p = subprocess.run(KRABY + ["train", "--resume", run, "--no-progress"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"resuming {run} from checkpoint at {killed_at} steps" in p.stdout
    assert _latest(run) == 6144
    assert os.path.exists(os.path.join(run, "final_model.zip"))
    # a new run refuses to overwrite it
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "already holds a run" in p.stderr


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    from kraby_rl.training.train import train
    runs = {}
    ppo_kwargs = {"n_steps": 128, "batch_size": 64, "n_epochs": 1}
    for algo, extra in (("ppo", {"algo_kwargs": ppo_kwargs}),
                        ("sac", {"algo_kwargs": {"learning_starts": 100, "batch_size": 64},
                                 "net_arch": [64, 64], "activation": "relu",
                                 "normalize_reward": False})):
        cfg = C.from_dict({"algorithm": algo, "n_envs": 1, "vec_env": "dummy",
                           "total_timesteps": 512, "checkpoint_every": 256,
                           "env": {"episode_s": 1.0}, **extra})
        run = str(tmp_path_factory.mktemp(algo) / "run")
        logs = runs.setdefault("logs", {})[algo] = []
        train(cfg, run, progress_bar=False, log=logs.append)
        runs[algo] = run
    return runs


def test_a_training_session_ends_with_its_figures_and_the_next_command(trained_runs):
    run = trained_runs["ppo"]
    last = trained_runs["logs"]["ppo"][-1]
    assert last.startswith(f"trained {run}: 512 steps in all, 512 this session in ")
    assert "episode reward " in last and "length 50 steps" in last     # 1 s at 20 ms
    assert last.endswith(f"Next: kraby export {run} (writes {run}/export), then "
                         f"kraby eval {run}/export")


@pytest.mark.parametrize("bar", [True, False])
def test_progress_shows_steps_and_episode_figures_on_a_terminal_or_in_a_log(bar):
    import io

    import gymnasium as gym
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from kraby_rl.training.progress import Progress
    out, lines = io.StringIO(), []
    progress = Progress(512, bar=bar, log=lines.append, every_s=0.0, refresh_s=0.0, out=out)
    model = PPO("MlpPolicy", make_vec_env(lambda: gym.make("CartPole-v1"), n_envs=1),
                n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(512, callback=progress)
    if bar:
        text = out.getvalue()
        assert "512/512" in text and "ep_reward=" in text and "ep_len=" in text
        assert not lines
    else:
        assert out.getvalue() == "" and len(lines) >= 100
        assert lines[0].startswith("training: 1/512 steps (0 %), ")
        assert "no episode finished yet" in lines[0]
        assert lines[-1].startswith("training: 512/512 steps (100 %), ")
        assert " steps/s, about 0 s left; episode reward " in lines[-1]


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_export_matches_sb3_policy(trained_runs, algo):
    from kraby_rl.training.export import export
    from kraby_rl.training.train import load_model
    out = export(trained_runs[algo])
    policy = ExportedPolicy(out)
    policy.contract(pinned={"control_period_s": 0.02, "clock_hz": 2.0})
    model, vec, _ = load_model(trained_runs[algo])
    obs = (np.random.default_rng(0).normal(0, 1, (1000, 65)) * 2).astype(np.float32)
    ref, _ = model.predict(vec.normalize_obs(obs), deterministic=True)
    got = policy.act(obs)
    assert np.abs(ref - got).max() <= 1e-5
    assert np.abs(got).max() > 1e-3   # not a constant-zero policy


def test_export_of_a_chosen_checkpoint(trained_runs, tmp_path):
    from kraby_rl.training.export import export
    run = trained_runs["ppo"]
    early = ExportedPolicy(export(run, str(tmp_path / "early"), checkpoint=256))
    final = ExportedPolicy(export(run, str(tmp_path / "final")))
    assert early.metadata["timesteps"] == 256 and early.metadata["checkpoint"] == 256
    assert final.metadata["timesteps"] == 512 and final.metadata["checkpoint"] is None
    obs = np.random.default_rng(1).normal(0, 1, (50, 65)).astype(np.float32)
    assert np.abs(early.act(obs) - final.act(obs)).max() > 1e-6    # another model
    stray = os.path.join(run, "checkpoints", "model_999.zip.tmp")   # a write cut short
    open(stray, "w").close()
    r = subprocess.run(KRABY + ["export", run, "--checkpoint", "300", "--out",
                                str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2
    os.remove(stray)
    assert "no checkpoint at 300 steps" in r.stderr and "checkpoints: [256, 512]" in r.stderr


def test_exported_policy_runs_without_torch(trained_runs):
    from kraby_rl.training.export import export
    out = export(trained_runs["ppo"])
    r = run_without(("torch", "stable_baselines3"), (
        "import numpy as np\n"
        "from kraby_rl.core.policy_runtime import ExportedPolicy\n"
        f"p = ExportedPolicy({out!r})\n"
        "a = p.act(np.zeros(65))\n"
        "assert a.shape == (18,)\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok', a[:3])\n"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok")


def test_policy_with_other_contract_is_refused(trained_runs, tmp_path):
    from kraby_rl.training.export import export
    out = export(trained_runs["ppo"], str(tmp_path / "exp"))
    policy = ExportedPolicy(out)
    with pytest.raises(PolicyError, match=r"period_s: policy has 0.02, robot expects 0.05"):
        policy.contract(pinned={"control_period_s": 0.05})
    meta = json.load(open(os.path.join(out, "policy.json")))
    meta["joint_names"] = list(reversed(meta["joint_names"]))
    json.dump(meta, open(os.path.join(out, "policy.json"), "w"))
    with pytest.raises(PolicyError, match="joint_names: policy has"):
        ExportedPolicy(out).contract()
    os.remove(os.path.join(out, "policy.npz"))
    with pytest.raises(PolicyError, match="policy.npz missing"):
        ExportedPolicy(out)
