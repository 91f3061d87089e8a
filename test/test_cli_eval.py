"""kraby eval: the tripod reference gait walks plausibly; video and benchmark run headless."""

import json
import os
import subprocess
import sys

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
