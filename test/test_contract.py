"""The sim/real contract: one object, every key checked and named, defaults in one place."""

import ast
import copy
import json
import os

import numpy as np
import pytest

from kraby_rl.core import contract as K
from kraby_rl.core import joints as J
from kraby_rl.core import spec as S
from kraby_rl.core.policy_runtime import ExportedPolicy, PolicyError
from kraby_rl.resources import resolve_policy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def walk_metadata():
    with open(os.path.join(resolve_policy("walk"), "policy.json")) as fh:
        return json.load(fh)


def phase0_obs(command=(0.1, 0.0, 0.0)):
    obs = np.zeros(S.OBS_SIZE, np.float32)
    obs[S.OBS_SLICES["command"]] = command
    obs[S.OBS_SLICES["clock"]] = (0.0, 1.0)
    return obs


def test_metadata_round_trip_gives_the_same_contract_and_the_same_targets():
    c = K.Contract(action_mode="gait_residual", gait_lift_m=0.025)
    again = K.Contract.from_metadata(json.loads(json.dumps(c.metadata())))
    assert again == c
    obs, a = phase0_obs(), np.full(S.ACTION_SIZE, 0.5)
    dec = c.decoder()
    assert np.allclose(again.decoder()(a, obs), dec(a, obs))
    assert dec(a, obs) == pytest.approx(np.clip(dec.base(obs) + 0.5 * np.array(
        K.RESIDUAL_SCALE), J.SOFT_LOWER, J.SOFT_UPPER))
    assert c.metadata()["obs_size"] == S.OBS_SIZE and c.obs_size == S.OBS_SIZE


def test_the_decoder_uses_the_contracts_residual_scale():
    full = K.Contract(action_mode="gait_residual")
    half = full.replace(residual_scale=[x / 2 for x in K.RESIDUAL_SCALE])
    obs, a = phase0_obs(), np.full(S.ACTION_SIZE, 0.5)
    base = full.decoder().base(obs)
    q_full, q_half = full.decoder()(a, obs), half.decoder()(a, obs)
    assert np.abs(q_full - base).max() > 0.04
    assert np.allclose(q_half - base, (q_full - base) / 2, atol=1e-12)


def test_the_shipped_policies_load_with_their_own_choices():
    walk = ExportedPolicy(resolve_policy("walk")).contract()
    stand = ExportedPolicy(resolve_policy("stand")).contract()
    assert walk.action_mode == "gait_residual" and stand.action_mode == "joint"
    assert walk.control_period_s == K.CONTROL_PERIOD_S == stand.control_period_s


def test_every_package_key_that_differs_is_named_at_once():
    meta = walk_metadata()
    meta["residual_scale"][0] *= 2
    meta["action_upper"][3] += 0.1
    meta["obs_fields"][0][1] = 4
    meta["obs_history"] = 3
    meta["default_pose"][5] += 0.05
    meta.pop("obs_size")
    with pytest.raises(K.ContractError) as err:
        K.Contract.from_metadata(meta)
    text = str(err.value)
    for key in ("residual_scale", "action_upper", "obs_fields", "obs_history",
                "default_pose"):
        assert f"{key}: policy has" in text, (key, text)
    assert "robot expects" in text and "action_scale" not in text


@pytest.mark.parametrize("pinned,named", [
    ({"gait_duty": 0.6}, "gait_duty: policy has 0.5, robot expects 0.6"),
    ({"action_mode": "joint"}, "action_mode: policy has 'gait_residual', robot expects "
                               "'joint'"),
    ({"control_period_s": 0.03}, "control_period_s: policy has 0.02, robot expects 0.03"),
    ({"state_timeout_s": 0.05}, "state_timeout_s: policy has 0.1, robot expects 0.05"),
])
def test_a_key_the_runner_pins_must_match(pinned, named):
    with pytest.raises(K.ContractError, match=named.replace("(", r"\(")):
        K.Contract.from_metadata(walk_metadata(), pinned=pinned)


def test_pinning_the_policys_own_value_or_nothing_is_accepted():
    K.Contract.from_metadata(walk_metadata(), pinned={"control_period_s": 0.02,
                                                      "gait_lift_m": 0.02, "clock_hz": 0.0})
    with pytest.raises(K.ContractError, match="cannot pin \\['residual_scale'\\]"):
        K.Contract.from_metadata(walk_metadata(), pinned={"residual_scale": [0.1] * 18})


def test_missing_keys_are_listed_with_the_way_out():
    meta = walk_metadata()
    del meta["gait_lift_m"], meta["obs_history"]
    with pytest.raises(K.ContractError, match=r"lacks contract keys \['gait_lift_m', "
                                              r"'obs_history'\].*kraby export RUN"):
        K.Contract.from_metadata(meta)


@pytest.mark.parametrize("changes,named", [
    ({"clock_hz": 0.0}, "clock_hz: expected a frequency in (0, 5] [Hz], found 0.0"),
    ({"action_mode": "torque"}, "action_mode: expected one of ('joint', 'gait_residual'), "
                                "found 'torque'"),
    ({"residual_scale": [0.1, 0.1]}, "residual_scale: expected 18 finite radians, found "
                                     "[0.1, 0.1]"),
    ({"control_period_s": "fast"}, "control_period_s: expected a number, found 'fast'"),
    ({"obs_history": 0}, "obs_history: expected a whole number >= 1, found 0"),
])
def test_invalid_values_name_the_key_the_expectation_and_the_value(changes, named):
    with pytest.raises(K.ContractError) as err:
        K.Contract(**changes)
    assert named in str(err.value)


def test_the_policy_runtime_refuses_a_mismatch_with_the_policy_named(tmp_path):
    import shutil
    dst = tmp_path / "walk"
    shutil.copytree(resolve_policy("walk"), dst)
    meta = walk_metadata()
    meta["action_lower"][0] -= 0.2
    (dst / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(PolicyError, match=f"policy '{dst}' does not match this robot: "
                                          "action_lower: policy has"):
        ExportedPolicy(str(dst)).contract()


def test_the_env_exposes_the_contract_it_was_built_with():
    from kraby_rl.envs.hexapod_env import HexapodEnv
    env = HexapodEnv(action_mode="gait_residual", gait_duty=0.6)
    try:
        assert env.contract == K.Contract(action_mode="gait_residual", gait_duty=0.6)
        assert env.decoder.gait.duty == 0.6
    finally:
        env.close()
    with pytest.raises(ValueError, match="HexapodEnv: invalid contract: gait_duty"):
        HexapodEnv(gait_duty=1.5)
    from kraby_rl.training.config import contract_metadata
    meta = contract_metadata("kraby_rl/Hexapod-v0", {"action_mode": "gait_residual",
                                                     "gait_duty": 0.6, "episode_s": 5})
    assert K.Contract.from_metadata(meta) == env.contract


# --- the defaults live in core/contract.py only ---------------------------------------------
CONTRACT_NAMES = {"control_period_s", "clock_hz", "gait_duty", "gait_lift_m", "duty",
                  "gait_stride_scale", "stride_scale", "gait_pattern", "pattern",
                  "lift_m", "frequency_hz", "residual_scale", "action_mode",
                  "cmd_vel_timeout_s", "sensor_timeout_s"}


def _literal(node):
    return isinstance(node, ast.Constant) and not isinstance(node.value, bool) \
        and node.value is not None and node.value != 0


def contract_defaults_outside(path):
    """(line, what) for each literal default of a contract key written in ``path``."""
    tree = ast.parse(open(path).read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args.args + node.args.kwonlyargs
            defaults = ([None] * (len(node.args.args) - len(node.args.defaults))
                        + list(node.args.defaults) + list(node.args.kw_defaults))
            for arg, default in zip(args, defaults):
                if arg.arg in CONTRACT_NAMES and default is not None and _literal(default):
                    found.append((node.lineno, f"{node.name}({arg.arg}={default.value!r})"))
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "get" and len(node.args) == 2 \
                    and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in CONTRACT_NAMES and _literal(node.args[1]):
                found.append((node.lineno, f".get({node.args[0].value!r}, "
                                           f"{node.args[1].value!r})"))
            for kw in node.keywords:
                if kw.arg in CONTRACT_NAMES and _literal(kw.value):
                    found.append((node.lineno, f"{kw.arg}={kw.value.value!r}"))
    return found


def test_contract_defaults_are_written_in_core_contract_only():
    offenders = []
    for dirpath, _dirs, files in os.walk(os.path.join(ROOT, "kraby_rl")):
        for name in files:
            path = os.path.join(dirpath, name)
            if name.endswith(".py") and not path.endswith(os.path.join("core", "contract.py")):
                offenders += [f"{os.path.relpath(path, ROOT)}:{line}: {what}"
                              for line, what in contract_defaults_outside(path)]
    assert not offenders, "contract defaults outside core/contract.py:\n" + "\n".join(offenders)


def test_the_defaults_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(clock_hz=2.0, x=1):\n    return cfg.get('control_period_s', 0.02)"
                   "\n\n\ng = Gait(duty=0.5)\n")
    assert sorted(w for _l, w in contract_defaults_outside(str(bad))) == [
        ".get('control_period_s', 0.02)", "duty=0.5", "f(clock_hz=2.0)"]


def test_copying_a_contract_keeps_it_frozen():
    c = K.DEFAULT
    import dataclasses
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.clock_hz = 3.0
    assert copy.deepcopy(c) == c and hash(c) == hash(K.Contract())
