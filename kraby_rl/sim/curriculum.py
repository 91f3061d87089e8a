"""A terrain and fault curriculum: difficulty levels that advance when the robot walks far
enough and retreat when it falls (the training config's ``curriculum`` section).

Each env instance keeps its own level ``0..levels-1``; its difficulty ``d = level /
(levels - 1)`` scales what is drawn for an episode: terrain sizes within ``d`` times their
configured range (signed ranges shrink towards 0, so level 0 is flat ground), and a fault
only with probability ``d`` (otherwise the episode is healthy). After an episode: a fall
drops one level; walking at least ``advance_ratio`` of the commanded distance raises one;
anything else keeps it. The training logs the level distribution (``curriculum/...``).

Config section (every key optional)::

    curriculum:
      levels: 5
      start_level: 0
      advance_ratio: 0.6
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kraby_rl.sim import faults as F
from kraby_rl.sim import terrain as T


@dataclasses.dataclass
class Curriculum:
    levels: int = 5
    start_level: int = 0
    advance_ratio: float = 0.6

    def __post_init__(self):
        if isinstance(self.levels, bool) or not isinstance(self.levels, int) \
                or self.levels < 2:
            raise ValueError(f"curriculum.levels: expected a whole number >= 2, found "
                             f"{self.levels!r}")
        if isinstance(self.start_level, bool) or not isinstance(self.start_level, int) \
                or not 0 <= self.start_level < self.levels:
            raise ValueError(f"curriculum.start_level: expected 0..{self.levels - 1}, found "
                             f"{self.start_level!r}")
        if not (isinstance(self.advance_ratio, (int, float)) and 0 < self.advance_ratio <= 1):
            raise ValueError(f"curriculum.advance_ratio: expected a share in (0, 1], found "
                             f"{self.advance_ratio!r}")
        self.level = self.start_level

    @classmethod
    def from_section(cls, section: dict | None) -> "Curriculum | None":
        if section is None:
            return None
        if not isinstance(section, dict):
            raise ValueError(f"curriculum: expected a mapping, found {section!r}")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in section if k not in allowed]
        if unknown:
            raise ValueError(f"curriculum: unknown key(s) {unknown}; allowed {allowed}")
        return cls(**section)

    @property
    def difficulty(self) -> float:
        return self.level / (self.levels - 1)

    def terrain_section(self, section: dict) -> dict:
        """``section`` (checked) with every size range scaled to this level, from its
        easiest value (the one nearest 0) towards both of its ends."""
        d = self.difficulty
        out = dict(section)
        for key in T.RANGE_KEYS:
            lo, hi = section[key]
            easy = min(max(0.0, lo), hi)
            out[key] = (easy + d * (lo - easy), easy + d * (hi - easy))
        if d == 0:
            out["kinds"] = {"flat": 1.0}
        return out

    def draw_faults(self, section: dict, rng: np.random.Generator) -> F.FaultSpec:
        """Faults for one episode: none with probability 1 - difficulty."""
        if rng.uniform() >= self.difficulty:
            return F.FaultSpec()
        return F.draw_faults(section, rng)

    def episode_end(self, fell: bool, walked_m: float, commanded_m: float) -> int:
        """Move the level after an episode; returns the new level."""
        if fell:
            self.level = max(0, self.level - 1)
        elif commanded_m > 0 and walked_m >= self.advance_ratio * commanded_m:
            self.level = min(self.levels - 1, self.level + 1)
        return self.level
