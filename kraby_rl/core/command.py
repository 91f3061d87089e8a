"""The body-velocity command a policy may be given: the range it was trained on.

A policy knows nothing outside its training command range; asked for 0.5 m/s, the walking
policy stepped at 3 Hz with joints at 119 % of the no-load speed. ``CommandLimiter`` clamps
each component of a ``cmd_vel`` to the range in the policy's metadata and says when a
command leaves the range (once per excursion, so a node can warn once and count).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

COMPONENTS = ("vx", "vy", "yaw_rate")
UNITS = {"vx": "m/s", "vy": "m/s", "yaw_rate": "rad/s"}
DEFAULT_COMMAND_RANGES = {"vx": (-0.15, 0.15), "vy": (-0.10, 0.10), "yaw_rate": (-0.5, 0.5)}
"""The command range envs sample from unless their config says otherwise."""


def command_ranges(ranges: dict | None) -> dict:
    """Complete, checked ranges: {component: (low, high)} over the defaults.

    Raises:
        ValueError: naming the component and what was found.
    """
    out = dict(DEFAULT_COMMAND_RANGES)
    for key, value in (ranges or {}).items():
        if key not in COMPONENTS:
            raise ValueError(f"command_ranges: unknown component {key!r}; expected "
                             f"{', '.join(COMPONENTS)}")
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"command_ranges[{key!r}]: expected [low, high], found "
                             f"{value!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"command_ranges[{key!r}]: expected finite low <= high, found "
                             f"{value!r}")
        out[key] = (lo, hi)
    return out


@dataclasses.dataclass
class LimitResult:
    command: np.ndarray            # (3,) the clamped command
    limited: list                  # components that were outside their range
    new_excursion: bool            # the command just left the range (warn now)


class CommandLimiter:
    def __init__(self, ranges: dict | None = None):
        self.ranges = command_ranges(ranges)
        self.low = np.array([self.ranges[k][0] for k in COMPONENTS])
        self.high = np.array([self.ranges[k][1] for k in COMPONENTS])
        self.outside = False
        self.excursions = 0
        self.limited_samples = 0

    @classmethod
    def from_metadata(cls, meta: dict) -> "CommandLimiter":
        return cls((meta.get("env") or {}).get("command_ranges"))

    def __call__(self, command) -> LimitResult:
        cmd = np.asarray(command, float)
        out = np.clip(cmd, self.low, self.high)
        limited = [COMPONENTS[i] for i in np.flatnonzero(out != cmd)]
        new = bool(limited) and not self.outside
        self.outside = bool(limited)
        if limited:
            self.limited_samples += 1
            self.excursions += int(new)
        return LimitResult(out, limited, new)

    def describe(self, command, limited) -> str:
        cmd = dict(zip(COMPONENTS, np.asarray(command, float)))
        parts = [f"{k} {cmd[k]:g} {UNITS[k]} outside [{self.ranges[k][0]:g}, "
                 f"{self.ranges[k][1]:g}]" for k in limited]
        return "cmd_vel limited to the policy's trained range: " + "; ".join(parts)

    def range_text(self) -> str:
        return ", ".join(f"{k} [{lo:g}, {hi:g}] {UNITS[k]}" for k, (lo, hi) in self.ranges.items())
