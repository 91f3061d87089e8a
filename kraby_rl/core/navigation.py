"""Goal navigation by motion primitives: what ``Navigate-v0`` and the navigator node share.

A navigation policy picks one of ``PRIMITIVES`` every ``primitive_s`` seconds; each is a
fixed body-velocity command (``cmd_vel``) that the walking policy executes. The observation
(``OBS_FIELDS``) is built by ``observe`` from the goal and the body's planar pose and
velocity, in the env from the simulator's state and in the node from ``odom``, so both feed
the policy the same numbers.

====  ==========================  =====  ==========================================
index field                       size   unit / meaning
====  ==========================  =====  ==========================================
0     goal_distance               1      m, clipped to ``distance_clip_m``
1-2   goal_bearing                2      cos, sin of the goal's bearing (base_link)
3-4   base_lin_vel                2      m/s, body frame x, y
5     base_yaw_rate               1      rad/s
6-12  last_primitive              7      one-hot of the primitive being executed
====  ==========================  =====  ==========================================
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

PRIMITIVES = (
    ("stand", (0.0, 0.0, 0.0)),
    ("forward", (0.15, 0.0, 0.0)),
    ("backward", (-0.15, 0.0, 0.0)),
    ("left", (0.0, 0.10, 0.0)),
    ("right", (0.0, -0.10, 0.0)),
    ("turn_left", (0.0, 0.0, 0.5)),
    ("turn_right", (0.0, 0.0, -0.5)),
)
"""(name, cmd_vel (vx [m/s], vy [m/s], yaw rate [rad/s])): the discrete actions, inside the
walking policy's trained command range."""
PRIMITIVE_NAMES = tuple(name for name, _ in PRIMITIVES)
N_PRIMITIVES = len(PRIMITIVES)
OBS_FIELDS = (("goal_distance", 1, "m"), ("goal_bearing", 2, "1 (cos, sin)"),
              ("base_lin_vel", 2, "m/s"), ("base_yaw_rate", 1, "rad/s"),
              ("last_primitive", N_PRIMITIVES, "one-hot"))
OBS_SIZE = sum(n for _, n, _ in OBS_FIELDS)


@dataclasses.dataclass(frozen=True)
class NavigationSpec:
    """The navigation contract: primitive duration, arrival tolerance, observation clip.

    Attributes:
        primitive_s: how long one primitive runs before the next decision [s].
        arrive_m: the goal is reached within this distance [m] (then the robot stops).
        distance_clip_m: the observed distance saturates here [m] (a farther goal looks
            like one at this distance: walk towards it).
    """

    primitive_s: float = 0.5
    arrive_m: float = 0.1
    distance_clip_m: float = 3.0

    def __post_init__(self):
        for name in ("primitive_s", "arrive_m", "distance_clip_m"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 \
                    or not math.isfinite(v):
                raise ValueError(f"navigation {name}: expected a positive number, found {v!r}")

    def metadata(self) -> dict:
        """What an exported navigation policy records (and the navigator checks)."""
        return {"navigation": {**dataclasses.asdict(self),
                               "primitives": [[n, list(c)] for n, c in PRIMITIVES],
                               "obs_fields": [list(f) for f in OBS_FIELDS]}}

    @classmethod
    def from_metadata(cls, meta: dict, what: str = "policy") -> "NavigationSpec":
        """The spec of an exported navigation policy; raises ValueError naming what differs
        from this package's primitives or observation."""
        nav = meta.get("navigation")
        if not isinstance(nav, dict):
            raise ValueError(f"{what}: not a navigation policy (no 'navigation' metadata; "
                             f"env_id {meta.get('env_id')!r})")
        expected = cls().metadata()["navigation"]
        for key in ("primitives", "obs_fields"):
            if nav.get(key) != expected[key]:
                raise ValueError(f"{what}: navigation {key} {nav.get(key)!r} differ from this "
                                 f"package's {expected[key]!r}")
        return cls(**{f.name: nav[f.name] for f in dataclasses.fields(cls) if f.name in nav})


def goal_in_body(position_xy, yaw: float, goal_xy) -> tuple[float, float]:
    """(distance [m], bearing [rad]) of a goal seen from a body at ``position_xy``, ``yaw``."""
    dx, dy = goal_xy[0] - position_xy[0], goal_xy[1] - position_xy[1]
    return math.hypot(dx, dy), math.atan2(dy, dx) - yaw


def observe(spec: NavigationSpec, position_xy, yaw: float, goal_xy, lin_vel_body,
            yaw_rate: float, last_primitive: int) -> np.ndarray:
    """The (OBS_SIZE,) float32 observation (``OBS_FIELDS``)."""
    dist, bearing = goal_in_body(position_xy, yaw, goal_xy)
    one_hot = np.zeros(N_PRIMITIVES)
    one_hot[int(last_primitive)] = 1.0
    return np.concatenate([[min(dist, spec.distance_clip_m), math.cos(bearing),
                            math.sin(bearing)], np.asarray(lin_vel_body, float)[:2],
                           [float(yaw_rate)], one_hot]).astype(np.float32)


def command(primitive: int) -> np.ndarray:
    """The cmd_vel (vx, vy, yaw rate) of a primitive index; raises ValueError out of range."""
    if isinstance(primitive, bool) or not 0 <= int(primitive) < N_PRIMITIVES \
            or int(primitive) != primitive:
        raise ValueError(f"primitive: expected an index 0..{N_PRIMITIVES - 1} "
                         f"({', '.join(PRIMITIVE_NAMES)}), found {primitive!r}")
    return np.array(PRIMITIVES[int(primitive)][1], dtype=float)
