"""Training past one machine (RLlib PPO and Ray Tune), on a local Ray on loopback: a tiny
RLlib run trains, checkpoints, resumes after kill -9 of its driver, exports an
export that runs without torch and acts as the RLlib module does; a 4-trial sweep ranks its
trials; config errors are named."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from run_helpers import kill_at_first_checkpoint, kill_group, kraby, run_without
import yaml

from kraby_rl.training import config as C

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
TINY = {"algorithm": "ppo", "env_id": "kraby_rl/Hexapod-v0",
        "env": {"episode_s": 1.0, "action_mode": "gait_residual"}, "n_envs": 2,
        "vec_env": "dummy", "net_arch": [16, 16], "seed": 3,
        "algo_kwargs": {"n_steps": 100, "batch_size": 100, "n_epochs": 1}}


def _write(tmp_path, name, **changes):
    p = tmp_path / name
    p.write_text(yaml.safe_dump({**TINY, **changes}))
    return str(p)


@pytest.mark.parametrize("changes, pattern", [
    ({"engine": "spark"}, r"config key 'engine': found 'spark'; allowed: sb3, rllib"),
    ({"engine": "rllib", "algorithm": "sac"},
     r"config key 'rllib': engine rllib trains ppo, found algorithm 'sac'"),
    ({"engine": "rllib", "rllib": {"learners": {}}},
     r"config key 'rllib': unknown section 'learners'; allowed: env_runners, training"),
    ({"engine": "rllib", "rllib": {"training": {"learning_rate": 0.1}}},
     r"config key 'rllib': training: unknown key 'learning_rate'; allowed: .*\blr\b"),
    ({"rllib": {"training": {"lr": 0.1}}},
     r"config key 'rllib': only for engine rllib .* found engine 'sb3'"),
    ({"engine": "rllib", "env_id": "kraby_rl/OneLegReach-v0", "env": {}},
     r"config key 'engine': rllib trains a policy of a flat \(Box\) observation here; "
     r"kraby_rl/OneLegReach-v0 has a Dict one"),
])
def test_bad_engine_configs_are_named(tmp_path, changes, pattern):
    with pytest.raises(C.ConfigError, match=pattern):
        C.load(_write(tmp_path, "bad.yaml", **changes))


def test_rllib_run_resumes_after_kill_exports_and_matches_the_module(tmp_path):
    cfg_path = _write(tmp_path, "rllib.yaml", engine="rllib", total_timesteps=1600,
                      checkpoint_every=200)
    run = str(tmp_path / "run")
    proc = kraby("train", "--config", cfg_path, "--run-dir", run, "--no-progress")
    killed_at = kill_at_first_checkpoint(proc, run)               # kill -9 of the driver
    out_first = proc.stdout.read()
    assert "ray: local," in out_first and "on 127.0.0.1" in out_first, out_first
    assert 200 <= killed_at < 1600
    proc = kraby("train", "--resume", run, "--no-progress")
    try:
        out, _ = proc.communicate(timeout=400)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out
    assert f"resuming {run} from checkpoint at {killed_at} steps" in out
    first = [line for line in out.splitlines() if line.startswith("training: ")][0]
    assert first.startswith(f"training: {killed_at + 200}/1600 steps"), out
    with open(os.path.join(run, "training.json")) as fh:
        assert json.load(fh)["timesteps"] == 1600
    assert os.listdir(os.path.join(run, "tb", "rllib"))
    r = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "export", run], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    export = os.path.join(run, "export")
    # the export acts as RLlib does: its filter, then the module's Gaussian mean, clipped
    import torch
    from ray.rllib.core.columns import Columns
    from kraby_rl.core.policy_runtime import ExportedPolicy
    from kraby_rl.training import rllib_engine as R
    policy = ExportedPolicy(export)
    assert policy.metadata["engine"] == "rllib" and policy.contract() is not None
    module, filt = R.load_checkpoint(run)
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 1, (1000, policy.obs_size)) * 3
    with torch.no_grad():
        dist = module.forward_inference(
            {Columns.OBS: torch.as_tensor(filt(obs.copy(), update=False),
                                          dtype=torch.float32)})[Columns.ACTION_DIST_INPUTS]
    ref = np.clip(dist[:, :policy.action_size].numpy(), -1, 1)
    got = policy.act(obs)
    assert np.abs(ref - got).max() <= 1e-5
    assert np.abs(got).max() > 1e-3
    r = run_without(("torch", "ray", "stable_baselines3"), (
        "from kraby_rl.evaluation.evaluate import evaluate\n"
        f"s = evaluate({export!r}, episodes=1, seconds=1.0, command=(0.1, 0, 0),\n"
        "             log=lambda m: None)\n"
        "print('ok', s['mean']['vx'])\n"))
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


def test_sweep_of_four_trials_ranks_them(tmp_path):
    cfg_path = _write(tmp_path, "sweep.yaml", n_envs=1, total_timesteps=100,
                      checkpoint_every=100)
    sweep_dir = str(tmp_path / "sweep")
    proc = kraby("sweep", cfg_path, "--sweep-dir", sweep_dir,
                 "--grid", "algo_kwargs.learning_rate=0.0001,0.001", "--seeds", "0", "1",
                 "--episodes", "1", "--seconds", "1", "--metric", "vx")
    try:
        out, _ = proc.communicate(timeout=400)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out
    result = json.loads(out.strip().splitlines()[-1])
    trials = result["trials"]
    assert len(trials) == 4 and all(t["vx"] is not None for t in trials), out
    assert [t["vx"] for t in trials] == sorted((t["vx"] for t in trials), reverse=True)
    assert {(t["params"]["algo_kwargs.learning_rate"], t["params"]["seed"])
            for t in trials} == {(lr, s) for lr in (0.0001, 0.001) for s in (0, 1)}
    for t in trials:                      # each trial is a kraby run with its export
        assert t["run_dir"].startswith(os.path.join(sweep_dir, "runs"))
        assert os.path.exists(os.path.join(t["run_dir"], "export", "policy.json"))
        with open(os.path.join(t["run_dir"], "config.yaml")) as fh:
            saved = yaml.safe_load(fh)
        assert saved["seed"] == t["params"]["seed"]
        assert saved["algo_kwargs"]["learning_rate"] == t["params"]["algo_kwargs.learning_rate"]
        assert saved["algo_kwargs"]["n_steps"] == 100          # the rest of the config kept
    assert result["best"]["run_dir"] == trials[0]["run_dir"]
    assert f"best: vx {trials[0]['vx']:.4f}, {trials[0]['run_dir']}" in out
