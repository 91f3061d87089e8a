"""The shipped walking policy (policies/walk): what it was trained from, and that it walks
as the acceptance gate demands, on shorter episodes than the gate's 10 x 20 s."""

import json
import os

import pytest
import yaml

from kraby_rl.training.config import from_dict
from kraby_rl.evaluation.evaluate import evaluate
from kraby_rl.evaluation.gate import COMMANDS, checks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WALK = os.path.join(ROOT, "policies", "walk")


def _meta():
    with open(os.path.join(WALK, "policy.json")) as fh:
        return json.load(fh)


def test_shipped_walk_is_the_recipe_in_config_train_walk():
    meta = _meta()
    with open(os.path.join(ROOT, "config", "train_walk.yaml")) as fh:
        cfg = from_dict(yaml.safe_load(fh), source="config/train_walk.yaml")
    assert meta["env"] == cfg.env                       # the config shipped is the one used
    assert meta["algorithm"] == cfg.algorithm and meta["seed"] == cfg.seed
    assert meta["action_mode"] == "gait_residual"
    training = meta["training"]                          # the whole run ...
    assert training["timesteps"] >= cfg.total_timesteps and training["seed"] == cfg.seed
    assert 0 < training["last_session_wall_s"] < 3600    # target: under an hour on 2 cores
    assert meta["checkpoint"] == meta["timesteps"] <= training["timesteps"]   # ... one of
    # its checkpoints is what ships
    with open(os.path.join(WALK, "README.md")) as fh:
        readme = fh.read()
    assert f"{meta['timesteps']:,}" in readme and "config/train_walk.yaml" in readme
    assert f"seed {cfg.seed}" in readme


@pytest.mark.parametrize("name", list(COMMANDS))
def test_shipped_walk_follows_the_command_plausibly(name):
    s = evaluate("walk", 1, 8.0, COMMANDS[name], env_overrides={"randomize": None},
                 log=lambda m: None)
    failed = [(label, value, limit) for label, value, limit, ok in checks(name, s) if not ok]
    assert not failed


@pytest.mark.parametrize("name", ["forward", "left", "turn_right"])
def test_shipped_walk_holds_under_randomisation(name):
    s = evaluate("walk", 2, 8.0, COMMANDS[name], randomized=True, seed=2000,
                 log=lambda m: None)
    failed = [(label, value, limit) for label, value, limit, ok in checks(name, s, 1.25)
              if not ok]
    assert not failed


def test_shipped_walk_through_the_real_stack_walks_like_the_env():
    from kraby_rl.stack.through_stack import evaluate_through_stack
    env = evaluate("walk", 1, 5.0, COMMANDS["forward"], env_overrides={"randomize": None},
                   log=lambda m: None)
    stack = evaluate_through_stack(WALK, 1, 5.0, COMMANDS["forward"], log=lambda m: None)
    assert stack["falls"] == 0 and stack["trips"] == []
    assert stack["mean"]["vx"] == pytest.approx(env["mean"]["vx"], rel=0.2)
