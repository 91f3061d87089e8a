"""Checks shared by the simulator's config sections (``terrain``, ``faults``): each names the
key, what was found and what is allowed."""

from __future__ import annotations

import numpy as np


def interval(where: str, value, lo: float, hi: float, low_open: bool = False) -> tuple:
    """``value`` as (low, high) with ``lo <= low <= high <= hi`` (``lo < low`` if
    ``low_open``), else ValueError."""
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
          and lo <= value[0] <= value[1] <= hi and not (low_open and value[0] <= lo))
    if not ok:
        raise ValueError(f"{where}: expected [low, high] with {lo} {'<' if low_open else '<='} "
                         f"low <= high <= {hi}, found {value!r}")
    return float(value[0]), float(value[1])


def weights(where: str, value, kinds) -> dict:
    """``value`` as {kind: weight >= 0} over ``kinds``, not all 0, else ValueError."""
    if not isinstance(value, dict) or not value:
        raise ValueError(f"{where}: expected {{kind: weight}} with kinds from {tuple(kinds)}, "
                         f"found {value!r}")
    for k, w in value.items():
        if k not in kinds:
            raise ValueError(f"{where}: unknown kind {k!r}; allowed {tuple(kinds)}")
        if not (isinstance(w, (int, float)) and w >= 0):
            raise ValueError(f"{where}.{k}: expected a weight >= 0, found {w!r}")
    if sum(value.values()) <= 0:
        raise ValueError(f"{where}: the weights sum to 0: {value!r}")
    return {k: float(w) for k, w in value.items()}


def choose(weights_by_kind: dict, rng: np.random.Generator) -> str:
    """A kind drawn from a checked {kind: weight} mapping."""
    kinds = list(weights_by_kind)
    w = np.array([weights_by_kind[k] for k in kinds])
    return kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
