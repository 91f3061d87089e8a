"""`kraby eval --through-stack`: the same episodes in the training env and through the real
stack over the virtual bus (serial protocol, DDS, shield, estimator, policy_node)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from kraby_rl.core import spec as S
from kraby_rl.core.contract import Contract
from kraby_rl.training.export import write_export


def tripod_policy(path):
    """An exported gait_residual policy with a zero residual: the tripod gait, as a policy."""
    meta = {**Contract(action_mode="gait_residual").metadata(),
            "env_id": "kraby_rl/Hexapod-v0",
            "env": {"action_mode": "gait_residual",
                    "randomize": {"friction": [0.6, 1.0], "servo_strength": [0.9, 1.1]}},
            "algorithm": "constant"}
    layers = [(np.zeros((18, S.OBS_SIZE)), np.zeros(18), "none")]
    return write_export(str(path), layers, np.zeros(S.OBS_SIZE), np.ones(S.OBS_SIZE), meta)


def test_through_stack_walks_like_the_training_env(tmp_path):
    policy = tripod_policy(tmp_path / "tripod")
    r = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "eval", policy, "--episodes", "1",
                        "--seconds", "4", "--command", "0.15", "0", "0", "--through-stack"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    env, stack = out["env"]["mean"], out["through_stack"]
    assert env["vx"] == pytest.approx(0.15, abs=0.02)
    assert stack["falls"] == 0 and stack["trips"] == []
    assert stack["mean"]["vx"] == pytest.approx(env["vx"], rel=0.2)
    assert abs(stack["mean"]["vy"]) < 0.03
    assert "through stack" in r.stderr and "stack/env" in r.stderr


def test_through_stack_needs_an_exported_policy():
    r = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "eval", "tripod", "--episodes",
                        "1", "--seconds", "1", "--through-stack"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "needs an exported policy" in r.stderr and "found 'tripod'" in r.stderr


def test_randomized_needs_a_policy_trained_with_randomisation():
    r = subprocess.run([sys.executable, "-m", "kraby_rl.cli", "eval", "stand", "--episodes",
                        "1", "--seconds", "1", "--randomized"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "was not trained with randomisation" in r.stderr


def test_gate_checks_apply_the_thresholds():
    from kraby_rl.evaluation.gate import checks
    good = {"falls": 0, "mean": {"vx": 0.14, "vy": 0.0, "yaw_rate": 0.0},
            "worst": {"slip_mean": 0.01, "step_freq_hz": 2.0, "envelope_violations": 0.0},
            "episodes_detail": [{"heading_change_deg": 5.0}, {"heading_change_deg": -9.0}]}
    assert all(ok for *_, ok in checks("forward", good))
    drifting = {**good, "episodes_detail": [{"heading_change_deg": 16.0}]}
    failed = [label for label, _v, _l, ok in checks("forward", drifting) if not ok]
    assert failed == ["forward: worst heading drift [deg]"]
    assert all(ok for *_, ok in checks("forward", drifting, slack=1.25))   # randomised: +25 %
    slow_turn = {**good, "mean": {"vx": 0.0, "vy": 0.0, "yaw_rate": 0.3}}
    assert [label for label, *_r, ok in checks("turn_left", slow_turn) if not ok] == \
        ["turn_left: yaw_rate (cmd +0.50)"]


def test_gate_runs_end_to_end_on_an_exported_policy(tmp_path):
    from kraby_rl.evaluation.gate import run
    policy = tripod_policy(tmp_path / "tripod")
    lines = []
    passed, rows, results = run(policy, episodes=1, seconds=3.0, stack_episodes=1,
                                log=lines.append)
    assert len(results) == 13 and "stack/forward" in results
    assert lines[-1].startswith("gate: ")
    by = {label: ok for label, _v, _l, ok in rows}
    assert by["forward: falls"] and by["stack: falls"] and by["stack: shield trips"]
    assert by["left: vy (cmd +0.10)"] and by["turn_left: yaw_rate (cmd +0.50)"]
