"""Helpers for tests that walk a HexapodEnv: a zero-action episode's outcome, and the env
beside a robot ``Observer`` fed the env's own sensor readings."""

import math

import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.core.observer import Observer


def walk(env, faults, seed: int = 0):
    """(turn [deg], dx [m], fell) of one zero-action episode of ``env`` (unwrapped) with
    ``faults`` (a ``FaultSpec`` or its dict)."""
    env.reset(seed=seed, options={"faults": faults})
    yaw0 = G.yaw_from_quat(env.robot_state.base_quat)
    x0 = env.robot_state.base_pos[0]
    fell = False
    for _ in range(env.max_steps):
        _, _, fell, trunc, _ = env.step(np.zeros(18))
        if fell or trunc:
            break
    s = env.robot_state
    return (math.degrees(G.yaw_from_quat(s.base_quat) - yaw0), s.base_pos[0] - x0, fell)


def beside_the_robot(env, obs, steps: int, check):
    """Step ``env`` (unwrapped, just reset to ``obs``) ``steps`` times with zero actions
    beside an ``Observer`` fed the env's joint states and IMU (as policy_node is by the servo
    driver and the IMU) and the env's command; before each step ``check(env_obs,
    robot_obs)`` and the two decoders' targets must agree. Returns the last env obs."""
    robot = Observer(env.contract)
    t = 0.0
    for _ in range(steps):
        s = env.robot_state
        robot.joint_state(t, s.q, s.w)
        robot.imu(t, s.base_quat, s.ang_vel_body)
        check(obs, robot.observe(t, command=env.command))
        np.testing.assert_allclose(robot.targets(np.zeros(18)),
                                   env.decoder(np.zeros(18), obs), atol=1e-9)
        obs, *_ = env.step(np.zeros(18))
        t += env.dt
    return obs
