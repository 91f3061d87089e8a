"""Gymnasium registration of the kraby_rl envs, by entry-point string only.

Run by ``import kraby_rl`` so that ``gym.make("kraby_rl/Hexapod-v0")`` works after it, without
importing PyBullet or the envs themselves (gymnasium imports an entry point when the env is
made). Without gymnasium (a robot that only runs the nodes) nothing is registered.
"""

ENVS = {
    "kraby_rl/Hexapod-v0": "kraby_rl.envs.hexapod_env:HexapodEnv",
    "kraby_rl/OneLeg-v0": "kraby_rl.envs.one_leg_env:OneLegEnv",
    "kraby_rl/OneLegReach-v0": "kraby_rl.envs.one_leg_env:OneLegReachEnv",
    "kraby_rl/Navigate-v0": "kraby_rl.envs.navigate_env:NavigateEnv",
}
ENV_IDS = tuple(ENVS)


def register_envs() -> bool:
    try:
        import gymnasium as gym
    except ImportError:
        return False
    for env_id, entry in ENVS.items():
        if env_id not in gym.registry:
            # time limits are the envs' own (in seconds of simulated time)
            gym.register(id=env_id, entry_point=entry)
    return True
