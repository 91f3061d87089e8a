"""Terrain for the PyBullet world: flat, rough, blocks, steps, stairs and slopes.

A ``TerrainSpec`` says what to build; ``draw_terrain`` draws one per episode from a training
config's ``terrain`` section (``check_terrain`` validates it); ``Terrain`` builds the bodies
in a PyBullet client and knows the ground height everywhere (``height(x, y)``), for the
reward, the fall test and a privileged critic, never for the actor.

The robot starts at the origin facing +x on a flat patch at ground height
``spec.start_height()``; obstacles begin ``START_CLEAR_M`` ahead of it (rough ground and
blocks leave a patch of that radius clear). Every surface has friction 1.0, like the plane.

Config section (every key optional; weights need not sum to 1)::

    terrain:
      kinds: {flat: 1, rough: 1, blocks: 1, steps: 1, stairs: 1, slope: 1}
      rough_m: [0.0, 0.03]        # heightfield amplitude
      blocks_m: [0.01, 0.04]      # block heights
      step_m: [-0.05, 0.05]       # step height: + up, - down
      stairs_m: [-0.05, 0.05]     # riser height of a flight of stairs
      slope_deg: [-15, 15]        # ramp angle: + uphill
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from kraby_rl.sim.sections import choose, interval, weights

KINDS = ("flat", "rough", "blocks", "steps", "stairs", "slope")
RANGE_KEYS = {"rough_m": (0.0, 0.05), "blocks_m": (0.0, 0.08), "step_m": (-0.08, 0.08),
              "stairs_m": (-0.08, 0.08), "slope_deg": (-25.0, 25.0)}
"""Range key -> the interval its values must lie in."""
DEFAULT_RANGES = {"rough_m": (0.0, 0.03), "blocks_m": (0.01, 0.04), "step_m": (-0.05, 0.05),
                  "stairs_m": (-0.05, 0.05), "slope_deg": (-15.0, 15.0)}
KIND_RANGE = {"rough": "rough_m", "blocks": "blocks_m", "steps": "step_m",
              "stairs": "stairs_m", "slope": "slope_deg"}
START_CLEAR_M = 0.3
"""Obstacles start this far ahead of the robot's start (and rough ground this far away)."""
EXTENT_M = 4.0
"""Half-size of the terrain area around the start [m]."""
CELL_M = 0.04
"""Heightfield cell size [m]."""
TREAD_M = 0.25
"""Stair tread depth [m]."""
STAIRS_N = 6
BLOCKS_N = 80


@dataclass(frozen=True)
class TerrainSpec:
    """One terrain.

    Attributes:
        kind: one of ``KINDS``.
        size: rough: amplitude [m]; blocks: largest block height [m]; steps: step height
            [m] (+ up, - down); stairs: riser height [m] (+ up); slope: ramp angle [deg]
            (+ uphill); flat: 0.
        seed: layout of the random kinds (rough, blocks).
    """

    kind: str = "flat"
    size: float = 0.0
    seed: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"terrain kind: expected one of {KINDS}, found {self.kind!r}")
        if not (isinstance(self.size, (int, float)) and math.isfinite(self.size)):
            raise ValueError(f"terrain size: expected a finite number, found {self.size!r}")
        if self.kind == "flat" and self.size != 0:
            raise ValueError(f"terrain size: flat ground has none, found {self.size!r}")
        if self.kind in ("rough", "blocks") and self.size < 0:
            raise ValueError(f"terrain size: {self.kind} height must be >= 0 m, found "
                             f"{self.size!r}")
        lo, hi = RANGE_KEYS[KIND_RANGE[self.kind]] if self.kind != "flat" else (0, 0)
        if not lo <= self.size <= hi:
            raise ValueError(f"terrain size: {self.kind} expects {lo}..{hi} "
                             f"{'deg' if self.kind == 'slope' else 'm'}, found {self.size!r}")

    def start_height(self) -> float:
        """Ground height under the start [m]: a way down starts on a platform."""
        if self.kind == "steps" and self.size < 0:
            return -self.size
        if self.kind == "stairs" and self.size < 0:
            return -self.size * STAIRS_N
        if self.kind == "slope" and self.size < 0:
            return _RAMP_M * math.tan(math.radians(-self.size))
        return 0.0

    def label(self) -> str:
        unit = "deg" if self.kind == "slope" else "cm"
        value = self.size if self.kind == "slope" else self.size * 100
        return "flat" if self.kind == "flat" else f"{self.kind} {value:+.1f} {unit}"


_RAMP_M = 1.5
"""Horizontal length of a ramp [m] (then flat)."""


def check_terrain(section: dict | None) -> dict:
    """Validate a config's ``terrain`` section, naming the key, what was found and what is
    allowed; returns it with defaults filled in (None: flat ground only)."""
    if section is None:
        return {"kinds": {"flat": 1.0}, **DEFAULT_RANGES}
    if not isinstance(section, dict):
        raise ValueError(f"terrain: expected a mapping, found {section!r}")
    out = {"kinds": {"flat": 1.0}, **DEFAULT_RANGES}
    for key, value in section.items():
        if key == "kinds":
            out["kinds"] = weights("terrain.kinds", value, KINDS)
        elif key in RANGE_KEYS:
            out[key] = interval(f"terrain.{key}", value, *RANGE_KEYS[key])
        else:
            raise ValueError(f"terrain: unknown key {key!r}; allowed "
                             f"{['kinds', *RANGE_KEYS]}")
    return out


def draw_terrain(section: dict, rng: np.random.Generator) -> TerrainSpec:
    """One terrain drawn from a checked ``terrain`` section."""
    kind = choose(section["kinds"], rng)
    seed = int(rng.integers(2**31))
    if kind == "flat":
        return TerrainSpec("flat", 0.0, seed)
    lo, hi = section[KIND_RANGE[kind]]
    return TerrainSpec(kind, float(rng.uniform(lo, hi)), seed)


class Terrain:
    """The bodies of one ``TerrainSpec`` in PyBullet client ``cid`` (on top of the world's
    ground plane at z = 0); ``remove()`` takes them away again."""

    def __init__(self, cid: int, spec: TerrainSpec, shapes: dict | None = None):
        """``shapes``: the world's store of reusable collision shapes. A rough ground's
        heightfield is made once per world and its heights replaced per episode: PyBullet
        never frees a heightfield shape (removeCollisionShape refuses one a removed body
        used), and a new one per episode grew a training worker by 24 MB an episode."""
        self.cid = cid
        self.spec = spec
        self._shapes = {} if shapes is None else shapes
        self.bodies: list[int] = []
        self._field = None              # rough: (heights, x0, y0)
        self._boxes: list[tuple] = []   # blocks: (half x, half y, top, cos, sin, cx, cy)
        self._profile = None            # 1-D ground height along x: (xs, zs)
        rng = np.random.default_rng(spec.seed)
        build = getattr(self, f"_build_{spec.kind}")
        build(rng)

    # --- building ------------------------------------------------------------------------
    def _box(self, centre, half, yaw: float = 0.0, pitch: float = 0.0) -> None:
        c = self.cid
        shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(half), physicsClientId=c)
        orn = pb.getQuaternionFromEuler([0.0, pitch, yaw])
        body = pb.createMultiBody(0, shape, basePosition=list(centre), baseOrientation=orn,
                                  physicsClientId=c)
        pb.changeDynamics(body, -1, lateralFriction=1.0, physicsClientId=c)
        self.bodies.append(body)

    def _build_flat(self, rng) -> None:
        pass

    def _build_rough(self, rng) -> None:
        amp = self.spec.size
        n = int(2 * EXTENT_M / CELL_M) + 1
        h = rng.uniform(0.0, amp, (n, n))
        xs = (np.arange(n) - (n - 1) / 2) * CELL_M
        r = np.hypot(xs[None, :], xs[:, None])          # rows are y, columns are x
        h[r < START_CLEAR_M] = 0.0
        h[0, :] = h[-1, :] = h[:, 0] = h[:, -1] = 0.0   # min 0 and max amp: known centre
        if amp > 0:
            h[1, 1] = amp
        c = self.cid
        reuse = self._shapes.get("heightfield")
        shape = pb.createCollisionShape(
            pb.GEOM_HEIGHTFIELD, meshScale=[CELL_M, CELL_M, 1.0],
            heightfieldData=h.ravel().tolist(), numHeightfieldRows=n,
            numHeightfieldColumns=n, physicsClientId=c,
            **({} if reuse is None else {"replaceHeightfieldIndex": reuse}))
        if reuse is None:
            self._shapes["heightfield"] = shape
        # PyBullet centres a heightfield on its (min + max) / 2
        body = pb.createMultiBody(0, shape, basePosition=[0, 0, (h.min() + h.max()) / 2],
                                  physicsClientId=c)
        pb.changeDynamics(body, -1, lateralFriction=1.0, physicsClientId=c)
        self.bodies.append(body)
        self._field = (h, xs[0])

    def _build_blocks(self, rng) -> None:
        for _ in range(BLOCKS_N):
            while True:
                x, y = rng.uniform(-EXTENT_M + 0.2, EXTENT_M - 0.2, 2)
                if math.hypot(x, y) > START_CLEAR_M + 0.15:
                    break
            hx, hy = rng.uniform(0.025, 0.075, 2)
            top = float(rng.uniform(min(0.01, self.spec.size), self.spec.size))
            if top <= 0:
                continue
            yaw = float(rng.uniform(0, math.pi))
            self._box([x, y, top / 2], [hx, hy, top / 2], yaw=yaw)
            self._boxes.append((hx, hy, top, math.cos(yaw), math.sin(yaw), x, y))

    def _profile_boxes(self, xs, zs) -> None:
        """Ground along x as steps: z = zs[i] for xs[i] <= x < xs[i+1] (boxes from z = 0)."""
        for i, z in enumerate(zs):
            if z <= 0:
                continue
            x0, x1 = xs[i], xs[i + 1]
            self._box([(x0 + x1) / 2, 0.0, z / 2], [(x1 - x0) / 2, EXTENT_M, z / 2])
        self._profile = (np.asarray(xs, float), np.asarray(zs, float))

    def _build_steps(self, rng) -> None:
        h = self.spec.size
        xs = [-EXTENT_M, START_CLEAR_M, EXTENT_M]
        zs = [0.0, h] if h >= 0 else [-h, 0.0]
        self._profile_boxes(xs, zs)

    def _build_stairs(self, rng) -> None:
        h = self.spec.size
        xs = [-EXTENT_M] + [START_CLEAR_M + i * TREAD_M for i in range(STAIRS_N + 1)] \
            + [EXTENT_M]
        levels = [i * abs(h) for i in range(STAIRS_N + 1)]
        zs = levels + [levels[-1]] if h >= 0 else [lv for lv in reversed(levels)] + [0.0]
        self._profile_boxes(xs, zs)

    def _build_slope(self, rng) -> None:
        deg = self.spec.size
        top = _RAMP_M * math.tan(math.radians(abs(deg)))
        x0, x1 = START_CLEAR_M, START_CLEAR_M + _RAMP_M
        if deg >= 0:        # flat at 0, ramp up, a platform at the top
            self._profile_boxes([-EXTENT_M, x1, EXTENT_M], [0.0, top])
            self._profile = (np.array([-EXTENT_M, x0, x1, EXTENT_M]),
                             np.array([0.0, 0.0, top, top]))
        else:               # a platform, ramp down, flat at 0
            self._profile_boxes([-EXTENT_M, x0, EXTENT_M], [top, 0.0])
            self._profile = (np.array([-EXTENT_M, x0, x1, EXTENT_M]),
                             np.array([top, top, 0.0, 0.0]))
        if top > 0:
            # the ramp: a slab whose top face runs from A = (x0, za) to B = (x1, zb)
            za, zb = (0.0, top) if deg >= 0 else (top, 0.0)
            alpha = math.atan2(zb - za, _RAMP_M)
            thick = 0.05
            nx, nz = -math.sin(alpha), math.cos(alpha)          # the face's normal
            self._box([(x0 + x1) / 2 - nx * thick / 2, 0.0, (za + zb) / 2 - nz * thick / 2],
                      [math.hypot(_RAMP_M, top) / 2, EXTENT_M, thick / 2], pitch=-alpha)

    # --- queries -------------------------------------------------------------------------
    def height(self, x: float, y: float) -> float:
        """Ground height [m] at (x, y) in the world (0 outside the terrain area)."""
        if abs(x) > EXTENT_M or abs(y) > EXTENT_M:
            return 0.0
        if self._field is not None:
            h, first = self._field
            n = h.shape[0]
            fy, fx = (y - first) / CELL_M, (x - first) / CELL_M
            i, j = min(int(fy), n - 2), min(int(fx), n - 2)
            u, v = fx - j, fy - i
            a, b, c, d = h[i, j], h[i, j + 1], h[i + 1, j], h[i + 1, j + 1]
            # the cell's two triangles, split along the diagonal Bullet uses (checked by
            # ray casts in the tests)
            if u + v <= 1.0:
                return float(a + u * (b - a) + v * (c - a))
            return float(d + (1.0 - u) * (c - d) + (1.0 - v) * (b - d))
        if self._profile is not None:
            xs, zs = self._profile
            if self.spec.kind == "slope":
                return float(np.interp(x, xs, zs))
            k = int(np.searchsorted(xs, x, side="right")) - 1
            return float(zs[min(max(k, 0), len(zs) - 1)])
        best = 0.0
        for hx, hy, top, c, s, cx, cy in self._boxes:
            dx, dy = x - cx, y - cy
            if abs(c * dx + s * dy) <= hx and abs(-s * dx + c * dy) <= hy:
                best = max(best, top)
        return best

    def remove(self) -> None:
        for body in self.bodies:
            pb.removeBody(body, physicsClientId=self.cid)
        self.bodies = []
