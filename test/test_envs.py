"""Hexapod-v0 and OneLeg-v0: API conformance, determinism, rendering, reward ordering."""

import gymnasium as gym
import functools

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import kraby_rl.envs
from kraby_rl.core import spec as S
from kraby_rl.core.contract import DEFAULT
from kraby_rl.core.rewards import TERMS


@pytest.mark.parametrize("env_id", kraby_rl.envs.ENV_IDS)
def test_check_env_and_headless_render(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    gym_check_env(env.unwrapped, skip_render_check=False)
    sb3_check_env(env.unwrapped)
    env.reset(seed=0)
    img = env.render()
    assert img.shape == (240, 320, 3) and img.dtype == np.uint8
    assert img.std() > 5, "the rendered image is blank"
    env.close()


def _rollout(env_id, seed, n=40):
    env = gym.make(env_id)
    flat = functools.partial(gym.spaces.utils.flatten, env.observation_space)  # Dict obs
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [flat(obs)]
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    for _ in range(n):
        action = (rng.integers(env.action_space.n) if discrete
                  else rng.uniform(-0.3, 0.3, env.action_space.shape))
        obs, r, term, trunc, _ = env.step(action)
        out.append(np.append(flat(obs), r))
        if term or trunc:
            break
    env.close()
    return out


@pytest.mark.parametrize("env_id", kraby_rl.envs.ENV_IDS)
def test_same_seed_same_rollout(env_id):
    a, b, c = _rollout(env_id, 7), _rollout(env_id, 7), _rollout(env_id, 8)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_observation_matches_spec_table():
    assert S.OBS_SIZE == sum(f.size for f in S.OBS_FIELDS) == 65
    env = gym.make("kraby_rl/Hexapod-v0", command=(0.1, -0.05, 0.2))
    obs, _ = env.reset(seed=1)
    assert obs.shape == env.observation_space.shape == (S.OBS_SIZE,)
    np.testing.assert_allclose(obs[S.OBS_SLICES["command"]], [0.1, -0.05, 0.2], rtol=1e-6)
    np.testing.assert_allclose(obs[S.OBS_SLICES["gravity"]], [0, 0, -1], atol=1e-3)
    assert np.abs(obs[S.OBS_SLICES["joint_pos"]]).max() <= 0.02 + 1e-6  # init noise only
    a = np.full(18, 0.25, dtype=np.float32)
    obs, _, _, _, info = env.step(a)
    np.testing.assert_allclose(obs[S.OBS_SLICES["last_action"]], a)
    assert set(info["reward_terms"]) == set(TERMS)
    env.close()


def _episode_return(command, actor, seconds=4.0, **kwargs):
    env = gym.make("kraby_rl/Hexapod-v0", command=command, episode_s=seconds, **kwargs)
    obs, _ = env.reset(seed=0)
    total, k, fell = 0.0, 0, False
    while True:
        obs, r, term, trunc, info = env.step(actor(k))
        assert r == pytest.approx(sum(info["reward_terms"].values()))
        total += r
        k += 1
        if term or trunc:
            fell = term
            break
    env.close()
    return total, fell, info


def test_walking_as_commanded_beats_standing_beats_falling():
    cmd = (0.1, 0.0, 0.0)
    gait = DEFAULT.tripod_gait()
    walk = lambda k: S.targets_to_action(gait.joint_targets(k * 0.02, cmd))  # noqa: E731
    back = (-0.1, 0.0, 0.0)
    wrong_way = lambda k: S.targets_to_action(gait.joint_targets(k * 0.02, back))  # noqa: E731
    stand = lambda k: np.zeros(18)  # noqa: E731
    r_walk, f_walk, i_walk = _episode_return(cmd, walk)
    r_wrong, f_wrong, _ = _episode_return(cmd, wrong_way)
    r_stand, f_stand, _ = _episode_return(cmd, stand)
    # servos at 4 % of the stall torque cannot carry the body: it collapses
    r_fall, f_fall, _ = _episode_return(cmd, stand, servo={"stall_torque": 0.05})
    assert not f_walk and not f_stand and not f_wrong and f_fall
    assert i_walk["base_pos"][0] > 0.25          # it really walked forward
    assert r_walk > r_stand > r_fall
    assert r_walk > r_wrong


def test_bad_env_arguments_are_named():
    with pytest.raises(ValueError, match="unknown reward term 'speed'"):
        gym.make("kraby_rl/Hexapod-v0", reward_weights={"speed": 1.0})
    with pytest.raises(ValueError, match=r"control_period_s \(0.021\) must be a positive whole"):
        gym.make("kraby_rl/Hexapod-v0", control_period_s=0.021)
    with pytest.raises(ValueError, match="unknown servo parameter 'kp_gain'"):
        gym.make("kraby_rl/Hexapod-v0", servo={"kp_gain": 3})


def test_one_leg_reaches_target_with_inverse_kinematics():
    from kraby_rl.core import kinematics as K
    env = gym.make("kraby_rl/OneLeg-v0")
    obs, info = env.reset(seed=3)
    target = obs[9:12]
    feet = K.DEFAULT_FEET.copy()
    feet[0] = target
    q = K.leg_inverse(feet)
    a = S.targets_to_action(q)[:3]
    for _ in range(50):
        obs, r, term, trunc, info = env.step(a)
    assert info["distance"] < 0.005
    assert r > -0.1
    env.close()


def test_import_kraby_rl_registers_the_envs_without_pybullet():
    """In a fresh interpreter: `import kraby_rl` alone makes gym.make work, and registering
    does not import the simulator."""
    import subprocess
    import sys
    code = ("import sys, gymnasium as gym, kraby_rl\n"
            "assert 'pybullet' not in sys.modules\n"
            "env = gym.make('kraby_rl/Hexapod-v0')\n"
            "print(env.observation_space.shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "(65,)" in out.stdout


def test_the_readme_lists_every_reward_term_with_its_default_weight():
    import os
    import re

    from kraby_rl.core import rewards
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "README.md")) as fh:
        rows = dict(re.findall(r"^\| `(\w+)` \|.*\| (-?[\d.]+) \|$", fh.read(), re.M))
    assert {k: float(v) for k, v in rows.items()} == rewards.DEFAULT_WEIGHTS


def test_the_robot_env_rewards_like_the_simulator_with_the_runs_weights():
    """topic_env once added the tilt penalty as a reward and ignored the run's weights."""
    import numpy as np

    from kraby_rl import ros
    from kraby_rl.core import rewards as R
    from kraby_rl.envs.topic_env import RobotTopicEnv
    ros.init(args=["test"])
    try:
        node = ros.Node("topic_env_reward")
        weights = {"lin_vel": 3.0, "tilt": -5.0, "alive": 0.0}
        env = RobotTopicEnv(node, DEFAULT, command=(0.1, 0.0, 0.0), reward_weights=weights,
                            tracking_sigma={"lin_vel": 0.2})
        assert env.reward_terms(np.zeros(18), np.zeros(18)) == {}      # no odometry yet
        level = (0.0, 0.0, 0.0, 1.0)
        tilted = (np.sin(0.15), 0.0, 0.0, np.cos(0.15))               # 0.3 rad roll
        a, last = np.full(18, 0.2), np.zeros(18)
        rewards = {}
        for name, quat in (("level", level), ("tilted", tilted)):
            env.odom = (quat, (0.0, 0.0, 0.0), np.array([0.1, 0.0, 0.0]), np.zeros(2), 0.1)
            rewards[name] = env.reward_terms(a, last)
        node.destroy_node()
    finally:
        ros.shutdown()
    terms = rewards["tilted"]
    assert set(terms) == set(R.TERMS) - {"foot_slip", "heading", "power"}
    assert terms["lin_vel"] == 3.0 * 0.02                  # on the command: the full weight
    assert terms["alive"] == 0.0
    assert terms["tilt"] == pytest.approx(-5.0 * np.sin(0.3) ** 2 * 0.02) and terms["tilt"] < 0
    assert sum(rewards["tilted"].values()) < sum(rewards["level"].values())
    expected = R.weighted_terms(R.resolve_weights(weights), R.resolve_sigma({"lin_vel": 0.2}),
                                0.02, lin_vel_body=np.array([0.1, 0.0, 0.0]),
                                ang_vel_body=np.zeros(3), command=np.array([0.1, 0.0, 0.0]),
                                gravity_body=np.array([0.0, -np.sin(0.3), -np.cos(0.3)]),
                                action=a, last_action=last, fell=False, height=0.1)
    assert terms.keys() == expected.keys()
    assert all(abs(terms[k] - expected[k]) < 1e-12 for k in terms)
