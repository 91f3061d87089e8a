"""Observation spec version 2 (joint error history): through the contract, built alike by
the env and the robot's observer, and it shows a leg that does not follow."""

import gymnasium as gym
import numpy as np
import pytest

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.core import joints as J
from kraby_rl.core import spec as S
from kraby_rl.core.contract import Contract, ContractError
from kraby_rl.core.observer import Observer
from kraby_rl.sim.faults import FaultSpec

ERR = S.OBS_SLICES["joint_err"]


def make_env(**kw):
    return gym.make("kraby_rl/Hexapod-v0", spec_version=2, action_mode="gait_residual",
                    command=[0.15, 0, 0], zero_command_prob=0.0, episode_s=4.0,
                    **kw).unwrapped


def test_a_version_2_contract_goes_through_metadata_and_a_wrong_one_is_named():
    c = Contract(spec_version=2, action_mode="gait_residual")
    assert c.obs_size == 119 == S.obs_size(2) and c.obs_fields[-1] == ("joint_err", 54, "rad")
    meta = c.metadata()
    assert Contract.from_metadata(meta).spec_version == 2
    bad = dict(meta, obs_fields=Contract().metadata()["obs_fields"], obs_size=65)
    with pytest.raises(ContractError, match="obs_fields: policy has"):
        Contract.from_metadata(bad)
    with pytest.raises(ContractError,
                       match=r"spec_version: expected one of \[1, 2, 3, 4\], found 5"):
        Contract(spec_version=5)
    with pytest.raises(ContractError, match="spec_version: policy has 2, robot expects 1"):
        Contract.from_metadata(meta, pinned={"spec_version": 1})


def test_env_and_robot_observer_build_the_same_version_2_observation():
    """The env's observations against an Observer fed the env's own joint states and the
    same actions, as policy_node would be by the servo driver."""
    env = make_env()
    try:
        obs, _ = env.reset(seed=0)
        obs_r = Observer(env.contract)
        rng = np.random.default_rng(0)
        t = 0.0
        s = env.robot_state
        obs_r.joint_state(t, s.q, s.w)
        robot = obs_r.observe(t, command=env.command)
        for k in range(60):
            assert robot.shape == obs.shape == (119,)
            np.testing.assert_allclose(robot[ERR], obs[ERR], atol=1e-6)
            np.testing.assert_allclose(robot[S.OBS_SLICES["joint_pos"]],
                                       obs[S.OBS_SLICES["joint_pos"]], atol=1e-6)
            a = rng.uniform(-0.5, 0.5, 18)
            q_robot = obs_r.targets(a)
            obs, *_ = env.step(a)
            np.testing.assert_allclose(q_robot, env.obs_builder._sent, atol=1e-6)
            t += env.dt
            s = env.robot_state
            obs_r.joint_state(t, s.q, s.w)
            robot = obs_r.observe(t, command=env.command)
        assert np.abs(obs[ERR]).max() > 0.005        # the joints lag their targets
    finally:
        env.close()


def test_a_limp_leg_shows_in_the_joint_errors():
    env = make_env()
    try:
        def errors(faults):
            obs, _ = env.reset(seed=0, options={"faults": faults})
            e = []
            for _ in range(100):
                obs, *_ = env.step(np.zeros(18))
                e.append(np.abs(obs[ERR][:18]))
            return np.mean(e, axis=0)
        healthy = errors(FaultSpec())
        limp = errors(FaultSpec.limp_leg("lm"))
        k = [J.JOINT_NAMES.index(f"lm_{j}") for j in ("coxa", "femur", "tibia")]
        assert limp[k].mean() > 3 * healthy[k].mean()
        others = [i for i in range(18) if i not in k]
        assert limp[others].mean() < 2 * healthy[others].mean()
    finally:
        env.close()
