"""PGPE with EvoTorch (``training.evolution``): config checks, the gait search's coordinates
and fitness, and on a tiny budget each target end to end: train (Ray actors on loopback,
or in-process), kill -9 and resume, export, load without torch, evaluate."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from run_helpers import kill_at_first_checkpoint, kill_group, kraby, run_without
import yaml

from kraby_rl.core.contract import DEFAULT
from kraby_rl.core.policy_runtime import ExportedPolicy
from kraby_rl.training import config as C
from kraby_rl.training import evolution as E

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
GAIT = os.path.join(ROOT, "config", "train_pgpe_gait.yaml")
LINEAR = os.path.join(ROOT, "config", "train_pgpe_linear.yaml")
TINY = {"env": {"episode_s": 0.5}, "algo_kwargs": {"popsize": 4}}


@pytest.mark.parametrize("change, pattern", [
    ({"pgpe": {"target": "cpg"}}, r"'pgpe': target: expected one of \('linear', 'gait'\), "
                                  r"found 'cpg'"),
    ({"pgpe": {"actors": 2}}, r"'pgpe': unknown key 'actors'; allowed: target .*num_actors"),
    ({"pgpe": {"num_actors": 0}}, r"'pgpe': num_actors: expected a whole number >= 1, found 0"),
    ({"pgpe": {"fitness": "fast"}}, r"'pgpe': fitness: expected one of \('speed', 'tracking'\), "
                                    r"found 'fast'"),
    ({"pgpe": {"command": [0.4, 0]}}, r"'pgpe': command: expected \[vx, vy, yaw_rate\]"),
    ({"algo_kwargs": {"pop_size": 8}},
     r"'algo_kwargs' \(pgpe': unknown key 'pop_size'.*popsize"),
    ({"algorithm": "ppo"}, r"'pgpe': only for algorithm pgpe, found algorithm 'ppo'"),
    ({"env_id": "kraby_rl/OneLeg-v0", "env": {}},
     r"target gait: tunes the tripod gait of kraby_rl/Hexapod-v0, found env_id "
     r"'kraby_rl/OneLeg-v0'"),
    ({"pgpe": {"target": "gait", "feedback": True}},
     r"feedback: searches the gait's feedback gains, which need target gait and "
     r"env.spec_version 3, found target 'gait' and spec_version 1"),
    ({"pgpe": {"feedback": "yes"}}, r"feedback: expected true or false, found 'yes'"),
    ({"pgpe": {"target": "gait", "limp": True}, "env": {"spec_version": 4}},
     r"limp: searches the limp-leg wave's shift and crouch, which need target gait, "
     r"env.spec_version 4 and env.gait_limp_threshold > 0, found target 'gait', "
     r"spec_version 4 and gait_limp_threshold 0.0"),
    ({"pgpe": {"limp": 1}}, r"limp: expected true or false, found 1"),
    ({"env_id": "kraby_rl/OneLegReach-v0", "env": {}, "pgpe": {"target": "linear"}},
     r"pgpe searches a policy of a flat \(Box\) observation; kraby_rl/OneLegReach-v0 has a "
     r"Dict one"),
])
def test_bad_pgpe_configs_are_named(tmp_path, change, pattern):
    with open(GAIT) as fh:
        data = {**yaml.safe_load(fh), **change}
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(C.ConfigError, match=pattern):
        C.load(str(p))


def test_gait_coordinates_and_fitness():
    default = {k: DEFAULT.metadata()[k] for k in E.GAIT_BOUNDS}
    x = E.encode_gait(default)
    assert np.all(np.abs(x) <= 1)
    assert E.decode_gait(x) == pytest.approx(default)
    lo = E.decode_gait([-5] * len(E.GAIT_BOUNDS))  # clipped onto the ranges
    assert lo == {k: b[0] for k, b in E.GAIT_BOUNDS.items()}
    assert E.GAIT_BOUNDS["clock_hz"][1] <= 3.0      # never past the plausible step frequency
    both = E.gait_bounds({"feedback": True})
    assert list(both) == [*E.GAIT_BOUNDS, "gait_heading_gain", "gait_level_gain"]
    hi = E.decode_gait([1.0] * len(both), both)
    assert hi["gait_heading_gain"] == 5.0 and hi["gait_level_gain"] == 2.0
    limp = E.gait_bounds({"limp": True})
    assert list(limp) == [*E.GAIT_BOUNDS, "gait_limp_shift", "gait_limp_crouch_m"]
    with pytest.raises(ValueError, match="a gait search vector has 4 entries"):
        E.decode_gait([0.0] * 6)
    good = {"vx": 0.3, "vy": 0.0, "slip_mean": 0.01, "step_freq_hz": 2.5,
            "envelope_violations": 0.0, "fell": False}
    cmd = [0.4, 0.0, 0.0]
    assert E.gait_fitness(good, cmd) == pytest.approx(0.3)
    for worse in ({"slip_mean": 0.04}, {"step_freq_hz": 3.4}, {"envelope_violations": 0.01},
                  {"fell": True}, {"vx": 0.2}):
        assert E.gait_fitness({**good, **worse}, cmd) < E.gait_fitness(good, cmd), worse
    assert E.gait_fitness({**good, "vx": -0.3}, [-0.4, 0, 0]) == pytest.approx(0.3)
    # tracking: progress counts up to the command, heading drift over 10 deg costs
    slow = [0.15, 0.0, 0.0]
    straight = {**good, "heading_change_deg": 5.0}
    assert E.gait_fitness(straight, slow, tracking=True) == pytest.approx(0.15)
    assert E.gait_fitness({**straight, "vx": 0.12}, slow, tracking=True) == pytest.approx(0.12)
    assert E.gait_fitness({**straight, "heading_change_deg": -30.0}, slow,
                          tracking=True) == pytest.approx(0.15 - 0.1)


def _tiny(path, out, **extra):
    with open(path) as fh:
        data = C.merge(yaml.safe_load(fh), {**TINY, **extra})
    out.write_text(yaml.safe_dump(data))
    return str(out)


def _train_and_export(cfg_path, run, timeout):
    """``kraby train`` then ``kraby export`` of a run; returns the training's output."""
    proc = kraby("train", "--config", cfg_path, "--run-dir", run, "--no-progress")
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out
    r = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "export", run], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


def test_gait_search_on_ray_actors_exports_a_gait_config(tmp_path):
    cfg_path = _tiny(GAIT, tmp_path / "gait.yaml", total_timesteps=300,
                     checkpoint_every=100, pgpe={"num_actors": 2, "num_episodes": 1})
    run = str(tmp_path / "run")
    out = _train_and_export(cfg_path, run, 400)
    assert "ray: local, 2 CPUs on 127.0.0.1" in out
    gens = [line for line in out.splitlines() if line.startswith("generation ")]
    assert len(gens) == 3 and "centre clock_hz" in gens[-1], out   # 4 x 25 steps each
    assert os.listdir(os.path.join(run, "tb", "pgpe"))             # TensorBoard events
    policy = ExportedPolicy(os.path.join(run, "export"))
    contract = policy.contract()                  # a gait config this package accepts
    state = E.load_state(run)
    tuned = E.decode_gait(state["center"].numpy())
    assert contract.action_mode == "gait_residual"
    for key, value in tuned.items():
        assert getattr(contract, key) == pytest.approx(value)
        assert policy.metadata["env"][key] == pytest.approx(value)
    assert not np.any(policy.act(np.ones(policy.obs_size)))     # zero residual: the gait
    from kraby_rl.evaluation.evaluate import evaluate
    s = evaluate(os.path.join(run, "export"), episodes=1, seconds=1.0, command=(0.2, 0, 0),
                 log=lambda m: None)
    assert s["episodes_detail"][0]["command"] == [0.2, 0.0, 0.0]


def test_a_feedback_and_limp_search_tunes_and_exports_the_gains_shift_and_crouch(tmp_path):
    cfg_path = _tiny(GAIT, tmp_path / "gait.yaml", total_timesteps=100, checkpoint_every=100,
                     env={"spec_version": 4, "gait_heading_gain": 1.0, "gait_level_gain": 0.5,
                          "gait_limp_threshold": 0.3, "gait_limp_shift": 0.4,
                          "gait_limp_crouch_m": 0.015},
                     pgpe={"num_actors": 1, "num_episodes": 1, "feedback": True,
                           "limp": True})
    run = str(tmp_path / "run")
    out = _train_and_export(cfg_path, run, 300)
    gens = [line for line in out.splitlines() if line.startswith("generation 1:")]
    assert gens and "gait_heading_gain 1.000, gait_level_gain 0.500" in gens[0], out
    assert "gait_limp_shift 0.400, gait_limp_crouch_m 0.015" in gens[0], out
    contract = ExportedPolicy(os.path.join(run, "export")).contract()
    centre = E.load_state(run)["center"].numpy()
    assert centre.shape == (8,)                   # four gait parameters, two gains, two limp
    sec = {"feedback": True, "limp": True}
    tuned = E.decode_gait(centre, E.gait_bounds(sec))
    assert contract.spec_version == 4 and contract.obs_size == 128
    assert contract.gait_limp_threshold == 0.3                  # set, not searched
    for key in ("gait_heading_gain", "gait_level_gain", "clock_hz", "gait_limp_shift",
                "gait_limp_crouch_m"):
        assert getattr(contract, key) == pytest.approx(tuned[key])


def test_linear_search_resumes_after_kill_and_exports_what_evotorch_runs(tmp_path):
    cfg_path = _tiny(LINEAR, tmp_path / "linear.yaml", total_timesteps=1200,
                     checkpoint_every=100, pgpe={"num_actors": 1})
    run = str(tmp_path / "run")
    proc = kraby("train", "--config", cfg_path, "--run-dir", run, "--no-progress")
    killed_at = kill_at_first_checkpoint(proc, run)               # kill -9 mid-run
    assert killed_at < 1200
    before = E.load_state(run, killed_at)
    proc = kraby("train", "--resume", run, "--no-progress")
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out
    assert f"resuming {run} from checkpoint at {killed_at} steps (generation " \
           f"{before['generation']})" in out
    first = [line for line in out.splitlines() if line.startswith("generation ")][0]
    assert first.startswith(f"generation {before['generation'] + 1}:"), out
    with open(os.path.join(run, "training.json")) as fh:
        assert json.load(fh)["timesteps"] >= 1200
    r = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "export", run], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    export = os.path.join(run, "export")
    policy = ExportedPolicy(export)
    assert policy.metadata["algorithm"] == "pgpe" and policy.contract() is not None
    # the export acts exactly as EvoTorch's own policy of the search centre
    import torch
    cfg = C.load(cfg_path)
    sec = E.pgpe_section(cfg)
    problem = E._problem(cfg, sec)
    state = E.load_state(run)
    problem.set_observation_stats(state["obs_stats"])
    module = problem.to_policy(state["center"])
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 1, (1000, policy.obs_size))
    with torch.no_grad():
        ref = module(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    got = policy.act(obs)
    assert np.abs(ref - got).max() <= 1e-5
    assert np.abs(got).max() > 1e-4
    r = run_without(("torch", "evotorch", "ray"), (
        "from kraby_rl.evaluation.evaluate import evaluate\n"
        f"s = evaluate({export!r}, episodes=1, seconds=1.0, log=lambda m: None)\n"
        "print('steps ok', s['falls'])\n"))
    assert r.returncode == 0 and "steps ok" in r.stdout, r.stderr
