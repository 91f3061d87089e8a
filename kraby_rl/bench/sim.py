"""Hexapod-v0 env steps/s against a bare PyBullet loop doing the same physics work.

The bare loop uses the same robot, physics step, substeps and per-substep PyBullet calls
(joint states, servo model, motor commands, stepSimulation) with no observation, reward
or bookkeeping. Both replay the same tripod-gait goals, alternating in rounds so that
machine load affects both alike. ratio = env physics rate / bare physics rate.
"""

from __future__ import annotations

import time

import numpy as np

from kraby_rl.core import spec as S
from kraby_rl.core.contract import DEFAULT


def _goals(n: int, dt: float) -> np.ndarray:
    g = DEFAULT.tripod_gait()
    return np.array([g.joint_targets(k * dt, (0.1, 0.0, 0.2)) for k in range(n)])


def run(seconds: float = 5.0, rounds: int = 3) -> dict:
    import gymnasium as gym
    import kraby_rl.envs  # noqa: F401
    from kraby_rl.sim.world import KrabyWorld

    env = gym.make("kraby_rl/Hexapod-v0", episode_s=1e9).unwrapped
    env.reset(seed=0)
    world = KrabyWorld(env.world.physics_dt, env.world.substeps)
    world.reset()
    goals = _goals(500, env.dt)
    actions = np.array([S.targets_to_action(q) for q in goals]).astype(np.float32)
    env_rates, bare_rates = [], []
    # warm-up (caches, contact pairs, allocator), not counted
    for k in range(200):
        env.step(actions[k % len(actions)])
        world.servo.set_goal(goals[k % len(goals)], world.t)
        world.step()
    for r in range(rounds):
        # environment
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            _, _, term, trunc, _ = env.step(actions[n % len(actions)])
            if term or trunc:
                env.reset()
            n += 1
        env_rates.append(n / (time.perf_counter() - t0))
        # bare loop
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            world.servo.set_goal(goals[n % len(goals)], world.t)
            for _ in range(world.substeps):
                world.substep()
            n += 1
        bare_rates.append(n / (time.perf_counter() - t0))
        print(f"round {r}: env {env_rates[-1]:.0f} steps/s, bare {bare_rates[-1]:.0f} "
              f"control periods/s", flush=True)
    e, b = float(np.median(env_rates)), float(np.median(bare_rates))
    sub = env.world.substeps
    print(f"Hexapod-v0: {e:.0f} env steps/s ({e * sub:.0f} physics steps/s); bare PyBullet "
          f"loop: {b * sub:.0f} physics steps/s; ratio {e / b:.3f} (target >= 0.85)")
    env.close()
    world.close()
    return {"bench": "sim", "env_steps_per_s": e, "bare_physics_steps_per_s": b * sub,
            "env_physics_steps_per_s": e * sub, "substeps": sub,
            "physics_dt_s": env.world.physics_dt, "ratio": e / b, "target_ratio": 0.85}
