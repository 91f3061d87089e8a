"""kraby eval: the tripod reference gait walks plausibly; video and benchmark run headless."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def _run(args, timeout=300):
    p = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_eval_tripod_forward_reports_plausible_gait(tmp_path):
    video = str(tmp_path / "walk.gif")
    out = _run(["kraby_rl.cli", "eval", "tripod", "--episodes", "2", "--seconds", "5",
                "--command", "0.1", "0", "0", "--video", video])
    summary = json.loads(out.strip().splitlines()[-1])
    m = summary["mean"]
    assert summary["falls"] == 0
    assert 0.07 < m["vx"] < 0.12 and abs(m["vy"]) < 0.02
    assert m["slip_mean"] < 0.03
    assert 1.5 < m["step_freq_hz"] <= 2.5      # a 2 Hz tripod
    assert summary["worst"]["joint_speed_peak"] <= 6.31
    assert summary["worst"]["envelope_violations"] < 0.01
    assert "mean slip in stance" in out
    assert os.path.getsize(video) > 10_000


def test_eval_unknown_policy_is_a_clear_error():
    p = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "eval", "/nonexistent"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert "expected 'tripod', an export directory" in p.stderr


def test_bench_sim_prints_json_line():
    out = _run(["kraby_rl.bench", "sim", "--seconds", "0.5", "--rounds", "1"])
    result = json.loads(out.strip().splitlines()[-1])
    assert result["bench"] == "sim" and result["substeps"] == 5
    assert result["env_steps_per_s"] > 0 and 0 < result["ratio"] < 2


@pytest.mark.parametrize("argv,needle", [
    (["eval", "tripod", "--episodes", "0"],
     "--episodes: expected a int > 0 (episodes), found '0'"),
    (["eval", "tripod", "--seconds", "-1"], "--seconds: expected a float > 0"),
    (["eval", "tripod", "--video", "x.webm", "--episodes", "1"],
     "--video 'x.webm': expected a file ending in .mp4 or .gif, found '.webm'"),
    (["eval", "tripod", "--video", "/no/such/dir/x.mp4", "--episodes", "1"],
     "the folder '/no/such/dir' does not exist"),
    (["demo", "--seconds", "-5"], "--seconds: expected a float > 0"),
    (["train", "--set", "env.episode_s=-5", "--run-dir", "RUN"],
     "config key 'env' (kraby_rl/Hexapod-v0): episode_s must be > 0, found -5"),
    (["train", "--set", "env.bogus=1", "--run-dir", "RUN"], "unknown key 'bogus'"),
    (["train", "--set", "episode_s", "--run-dir", "RUN"], "--set: expected KEY=VALUE"),
])
def test_bad_cli_input_is_one_line_without_traceback(argv, needle, tmp_path):
    import subprocess
    import sys
    argv = [str(tmp_path / "run") if a == "RUN" else a for a in argv]
    p = subprocess.run([sys.executable, "-m", "kraby_rl.cli", *argv], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert needle in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert "pybullet build time" not in p.stdout + p.stderr
    assert not (tmp_path / "run").exists()       # nothing written before the check


def test_set_merges_into_a_section_instead_of_replacing_it(tmp_path):
    from kraby_rl.cli import _parse_overrides
    from kraby_rl.resources import find_config
    from kraby_rl.training import config as C
    cfg = C.load(find_config("train_walk.yaml"), _parse_overrides(
        ["env={episode_s: 5}", "env.latency_steps=1"]), build_env=False)
    assert cfg.env["episode_s"] == 5 and cfg.env["latency_steps"] == 1
    assert cfg.env["action_mode"] == "gait_residual"     # kept from the file
    assert cfg.env["reward_weights"]["heading"] == -10.0
