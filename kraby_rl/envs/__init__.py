"""Gymnasium envs of Kraby, registered on import: ``Hexapod-v0`` and ``OneLeg-v0`` (kraby_rl/)."""

import gymnasium as gym

from kraby_rl.envs.hexapod_env import HexapodEnv
from kraby_rl.envs.one_leg_env import OneLegEnv

ENV_IDS = ("kraby_rl/Hexapod-v0", "kraby_rl/OneLeg-v0")

for _id, _entry in zip(ENV_IDS, ("kraby_rl.envs.hexapod_env:HexapodEnv",
                                 "kraby_rl.envs.one_leg_env:OneLegEnv")):
    if _id not in gym.registry:
        # Time limits are handled by the envs themselves (in seconds of simulated time).
        gym.register(id=_id, entry_point=_entry)

__all__ = ["HexapodEnv", "OneLegEnv", "ENV_IDS"]
