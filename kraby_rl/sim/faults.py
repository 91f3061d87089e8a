"""Servo faults and payloads for the PyBullet world, drawn per episode.

What a real Kraby meets: a servo that tripped its overload protection goes torque-free
(the driver's torque mode ``free``), a leg whose servos all did, a servo weakened by heat
or a sagging battery, a servo jammed at its position (a stripped or blocked gear), and a
load on the body. ``FaultSpec`` says which; ``draw_faults`` draws one from a training
config's ``faults`` section (``check_faults`` validates it); ``KrabyWorld.reset(faults=...)``
applies it. The policy never observes a fault (what it can feel of one is its joints not
following their targets: ``leg_err``, observation spec version 4); the env reports it in
``info``. ``limp_legs``: two legs that are not neighbours (``NON_ADJACENT_PAIRS``).

Config section (every key optional)::

    faults:
      kinds: {none: 2, limp_servo: 1, limp_leg: 1, limp_legs: 1, weak_servo: 1,
              stuck_servo: 1}
      weak_strength: [0.4, 0.9]     # stall-torque factor of a weak servo
      payload_kg: [0.0, 0.5]        # drawn for every episode (0: none)
      payload_offset_m: 0.05        # largest horizontal offset from the body centre
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.sim.sections import choose, interval, weights

KINDS = ("none", "limp_servo", "limp_leg", "limp_legs", "weak_servo", "stuck_servo")
NON_ADJACENT_PAIRS = tuple(
    (a, b) for i, a in enumerate(J.LEG_PREFIXES) for j, b in enumerate(J.LEG_PREFIXES)
    if i < j and (j - i) % 6 not in (1, 5))
"""The 9 pairs of legs that are not neighbours around the body (``LEG_PREFIXES`` goes round
it: lf, lm, lr, rr, rm, rf)."""
DEFAULTS = {"weak_strength": (0.4, 0.9), "payload_kg": (0.0, 0.0), "payload_offset_m": 0.05}
LIMITS = {"weak_strength": (0.0, 1.0), "payload_kg": (0.0, 2.0)}


@dataclass(frozen=True)
class FaultSpec:
    """One episode's faults.

    Attributes:
        limp: joint names whose servos are torque-free (the driver's ``free``).
        weak: {joint name: stall-torque factor in (0, 1]}.
        stuck: joint names whose servos hold the position they had at reset.
        payload_kg: mass fixed on top of the body [kg] (0: none).
        payload_xy: its offset from the body centre in base_link, x forward [m].
    """

    limp: tuple = ()
    weak: dict = field(default_factory=dict)
    stuck: tuple = ()
    payload_kg: float = 0.0
    payload_xy: tuple = (0.0, 0.0)

    def __post_init__(self):
        names = set(J.JOINT_NAMES)
        for what, joints in (("limp", self.limp), ("stuck", self.stuck),
                             ("weak", tuple(self.weak))):
            bad = [j for j in joints if j not in names]
            if bad:
                raise ValueError(f"faults.{what}: unknown joint(s) {bad}; joints are "
                                 f"{list(J.JOINT_NAMES)}")
        for j, s in self.weak.items():
            if not (isinstance(s, (int, float)) and 0 < s <= 1):
                raise ValueError(f"faults.weak.{j}: expected a stall-torque factor in (0, 1], "
                                 f"found {s!r}")
        if not (isinstance(self.payload_kg, (int, float)) and 0 <= self.payload_kg <= 2.0):
            raise ValueError(f"faults.payload_kg: expected 0..2 kg, found {self.payload_kg!r}")

    @staticmethod
    def limp_leg(*prefixes: str) -> "FaultSpec":
        """All three servos of each leg ``prefixes`` (``lf``, ``lm``, ... ``rf``)
        torque-free."""
        bad = [p for p in prefixes if p not in J.LEG_PREFIXES]
        if bad or not prefixes:
            raise ValueError(f"limp leg: expected one or more of {J.LEG_PREFIXES}, found "
                             f"{list(prefixes)!r}")
        return FaultSpec(limp=tuple(n for n in J.JOINT_NAMES if n.split("_")[0] in prefixes))

    def limp_legs(self) -> tuple:
        """Prefixes (order ``LEG_PREFIXES``) of the legs whose three servos are all limp."""
        return tuple(p for p in J.LEG_PREFIXES
                     if all(f"{p}_{s}" in self.limp for s in J.JOINT_KINDS))

    def label(self) -> str:
        parts = []
        legs = self.limp_legs()
        single = [n for n in self.limp if n.split("_")[0] not in legs]
        parts += [f"limp leg {p}" for p in legs] + [f"limp {n}" for n in single]
        parts += [f"weak {n} x{s:.2f}" for n, s in self.weak.items()]
        parts += [f"stuck {n}" for n in self.stuck]
        if self.payload_kg > 0:
            parts.append(f"payload {self.payload_kg:.2f} kg at ({self.payload_xy[0]:+.2f}, "
                         f"{self.payload_xy[1]:+.2f}) m")
        return ", ".join(parts) or "none"

    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(limp, stuck) bool masks and the strength factors, canonical joint order."""
        idx = {n: k for k, n in enumerate(J.JOINT_NAMES)}
        limp = np.zeros(J.NUM_JOINTS, dtype=bool)
        limp[[idx[n] for n in self.limp]] = True
        stuck = np.zeros(J.NUM_JOINTS, dtype=bool)
        stuck[[idx[n] for n in self.stuck]] = True
        strength = np.ones(J.NUM_JOINTS)
        for n, s in self.weak.items():
            strength[idx[n]] = s
        return limp, stuck, strength


def check_faults(section: dict | None) -> dict:
    """Validate a config's ``faults`` section, naming the key, what was found and what is
    allowed; returns it with defaults filled in (None: no faults)."""
    out = {"kinds": {"none": 1.0}, **DEFAULTS}
    if section is None:
        return out
    if not isinstance(section, dict):
        raise ValueError(f"faults: expected a mapping, found {section!r}")
    for key, value in section.items():
        if key == "kinds":
            out["kinds"] = weights("faults.kinds", value, KINDS)
        elif key in LIMITS:
            out[key] = interval(f"faults.{key}", value, *LIMITS[key],
                                low_open=key == "weak_strength")
        elif key == "payload_offset_m":
            if not (isinstance(value, (int, float)) and 0 <= value <= 0.1):
                raise ValueError(f"faults.payload_offset_m: expected 0..0.1 m, found "
                                 f"{value!r}")
            out[key] = float(value)
        else:
            raise ValueError(f"faults: unknown key {key!r}; allowed "
                             f"{['kinds', *DEFAULTS]}")
    return out


def draw_faults(section: dict, rng: np.random.Generator) -> FaultSpec:
    """One episode's faults from a checked ``faults`` section."""
    kind = choose(section["kinds"], rng)
    joint = J.JOINT_NAMES[int(rng.integers(J.NUM_JOINTS))]
    spec = {}
    if kind == "limp_servo":
        spec["limp"] = (joint,)
    elif kind == "limp_leg":
        spec = {"limp": FaultSpec.limp_leg(J.LEG_PREFIXES[int(rng.integers(6))]).limp}
    elif kind == "limp_legs":
        pair = NON_ADJACENT_PAIRS[int(rng.integers(len(NON_ADJACENT_PAIRS)))]
        spec = {"limp": FaultSpec.limp_leg(*pair).limp}
    elif kind == "weak_servo":
        spec["weak"] = {joint: float(rng.uniform(*section["weak_strength"]))}
    elif kind == "stuck_servo":
        spec["stuck"] = (joint,)
    lo, hi = section["payload_kg"]
    if hi > 0:
        r = section["payload_offset_m"] * math.sqrt(rng.uniform())
        a = rng.uniform(0, 2 * math.pi)
        spec["payload_kg"] = float(rng.uniform(lo, hi))
        spec["payload_xy"] = (r * math.cos(a), r * math.sin(a))
    return FaultSpec(**spec)
