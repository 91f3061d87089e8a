"""What every Kraby env shares: a ``KrabyWorld``, headless rendering and closing."""

from __future__ import annotations

import gymnasium as gym


class KrabyWorldEnv(gym.Env):
    """Base of the Kraby envs; subclasses set ``self.world`` (a ``KrabyWorld``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    @staticmethod
    def check_render_mode(render_mode) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', found {render_mode!r}")

    def render(self):
        if self.render_mode == "rgb_array":
            return self.world.render()
        return None

    def close(self):
        self.world.close()
