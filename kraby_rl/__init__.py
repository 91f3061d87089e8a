"""kraby_rl: ROS 2 control and reinforcement-learning stack for the Kraby hexapod.

``import kraby_rl`` registers the Gymnasium envs (``kraby_rl/Hexapod-v0``,
``kraby_rl/OneLeg-v0``) when gymnasium is installed.
"""

__version__ = "0.1.0"

from kraby_rl.registration import register_envs as _register_envs  # noqa: E402

_register_envs()
