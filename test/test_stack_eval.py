"""`kraby eval --through-stack`: the same episodes in the training env and through the real
stack over the virtual bus (serial protocol, DDS, shield, estimator, policy_node)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from kraby_rl.core import spec as S
from kraby_rl.training.export import write_export


def tripod_policy(path):
    """An exported gait_residual policy with a zero residual: the tripod gait, as a policy."""
    meta = {**S.spec_metadata(0.02, 2.0, S.ActionDecoder("gait_residual", 2.0)),
            "env_id": "kraby_rl/Hexapod-v0", "env": {"action_mode": "gait_residual"},
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
