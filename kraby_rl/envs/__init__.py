"""Gymnasium envs of Kraby, registered on ``import kraby_rl``: ``Hexapod-v0`` and
``OneLeg-v0``, ``OneLegReach-v0``, ``Navigate-v0`` (namespace kraby_rl/)."""

from kraby_rl.envs.hexapod_env import HexapodEnv
from kraby_rl.envs.navigate_env import NavigateEnv
from kraby_rl.envs.one_leg_env import OneLegEnv, OneLegReachEnv
from kraby_rl.registration import ENV_IDS, register_envs

register_envs()

__all__ = ["HexapodEnv", "OneLegEnv", "OneLegReachEnv", "NavigateEnv", "ENV_IDS"]
