"""The Kraby joint table: names, servo IDs, limits, default pose and leg geometry.

This is the one place where the 18 joints are described. The URDF (``urdf/kraby.urdf``),
the simulator, the observation/action spec and (later) the servo driver all read it; a test
fails if the URDF and this table disagree.

Conventions (REP 103): ``base_link`` has x forward, y left, z up, origin at the body centre.
Legs are numbered as the real robot is wired (servo ID = 3 x leg + joint), going
counter-clockwise seen from above, starting at the left front leg:

=====  ======  ==========================  ===========
leg    prefix  position                    servo IDs
=====  ======  ==========================  ===========
0      lf      left front                  0, 1, 2
1      lm      left middle                 3, 4, 5
2      lr      left rear                   6, 7, 8
3      rr      right rear                  9, 10, 11
4      rm      right middle                12, 13, 14
5      rf      right front                 15, 16, 17
=====  ======  ==========================  ===========

The canonical joint order (``JOINT_NAMES``) is the servo-ID order, so index i of every
per-joint array is servo ID i.

Joint sign conventions, identical on every leg (each leg frame is the body frame yawed by
``HIP_YAW[leg]``, x pointing away from the body):

* coxa: rotation about the leg's z axis; positive turns the leg counter-clockwise seen
  from above.
* femur: positive lifts the knee (foot goes up).
* tibia: positive swings the foot outwards/up relative to the femur.

At all-zero angles the femur is horizontal and the tibia points straight down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LEG_PREFIXES: tuple[str, ...] = ("lf", "lm", "lr", "rr", "rm", "rf")
"""Leg name prefixes in servo (wiring) order."""

JOINT_KINDS: tuple[str, ...] = ("coxa", "femur", "tibia")
"""Joint kinds from the body outwards; servo ID = 3 x leg + index of the kind."""

NUM_LEGS = 6
NUM_JOINTS = 18

# --- leg geometry [m, rad], in base_link ------------------------------------------------
HIP_RADIUS_CORNER = 0.092225
"""Distance from body centre to the corner legs' coxa axes [m] (real robot: 92.2 mm)."""

HIP_YAW: tuple[float, ...] = (
    math.pi / 4, math.pi / 2, 3 * math.pi / 4,
    -3 * math.pi / 4, -math.pi / 2, -math.pi / 4,
)
"""Yaw of each leg frame in base_link [rad], leg order ``LEG_PREFIXES``."""

HIP_XY: tuple[tuple[float, float], ...] = tuple(
    (round(HIP_RADIUS_CORNER * math.cos(y), 6), round(HIP_RADIUS_CORNER * math.sin(y), 6))
    for y in HIP_YAW
)
"""Coxa axis position (x, y) in base_link [m]; the hips lie in the plane z = 0."""

COXA_LENGTH = 0.055
"""Coxa axis to femur axis, along the leg's x axis [m]."""
FEMUR_LENGTH = 0.070
"""Femur axis to tibia axis [m]."""
TIBIA_LENGTH = 0.110
"""Tibia axis to the centre of the foot sphere [m]."""
FOOT_RADIUS = 0.010
"""Radius of the rubber foot tip [m]."""

# --- masses [kg] --------------------------------------------------------------------------
BODY_MASS = 0.667
SERVO_MASS = 0.047
BRACKET_MASS = 0.011
FOOT_MASS = 0.0105

# --- DRS-0101 servo facts (at 7.4 V) ----------------------------------------------------------
SERVO_STALL_TORQUE = 1.18
"""Stall torque [N*m] (12 kgf*cm)."""
SERVO_NO_LOAD_SPEED = 6.31
"""No-load speed [rad/s] (0.166 s / 60 deg)."""

SERVO_REFLECTED_INERTIA = 2.0e-3
"""Motor rotor inertia seen at the output through the 266:1 gearbox [kg*m^2] (estimate:
a rotor of about 3e-8 kg*m^2 x 266^2). It dominates the light leg links' own inertia and
keeps contact impacts from whipping joints beyond what the gearbox allows; the URDF adds
it to each moving link about its joint axis (PyBullet has no joint armature)."""

STANDING_HEIGHT = 0.14
"""Height of base_link above flat ground in the default pose [m]."""


@dataclass(frozen=True)
class Joint:
    """One row of the joint table.

    Attributes:
        name: joint name used in the URDF, JointState and YAML, e.g. ``lf_femur``.
        leg: leg index 0..5 (``LEG_PREFIXES``).
        kind: ``coxa``, ``femur`` or ``tibia``.
        servo_id: Herkulex ID on the bus (= canonical index).
        lower, upper: hard joint limits [rad] (URDF limits).
        soft_lower, soft_upper: the real robot's software clamps [rad] (Kraby's
            calibrated-count clamps around 512, herkulex-drs0101.md section 9).
        default: default standing angle [rad].
        direction: +1 if a positive servo count change is a positive joint angle.
        zero_counts: calibrated servo position [counts] at joint angle 0.
        calibration: the servo's calibration difference (RAM 47) [counts] that makes
            ``zero_counts`` the joint zero on the real robot (herkulex-drs0101.md section 9).
        max_velocity: servo no-load speed [rad/s].
        max_effort: servo stall torque [N*m].
    """

    name: str
    leg: int
    kind: str
    servo_id: int
    lower: float
    upper: float
    soft_lower: float
    soft_upper: float
    default: float
    direction: int = 1
    zero_counts: int = 512
    calibration: int = 0
    max_velocity: float = SERVO_NO_LOAD_SPEED
    max_effort: float = SERVO_STALL_TORQUE


# Hard limits (URDF) per kind [rad].
_HARD_LIMIT = {"coxa": 0.46, "femur": 1.57, "tibia": 1.57}
# Real robot software clamps, calibrated counts relative to 512 x 0.325 deg/count.
_COUNT_RAD = math.radians(0.325)
_SOFT_COUNTS = {"coxa": (-77, 78), "femur": (-97, 97), "tibia": (-93, 93)}
# Default standing pose: femur 0.29 rad down and tibia vertical puts the body at 0.14 m.
_DEFAULT_FEMUR = -math.asin((STANDING_HEIGHT - TIBIA_LENGTH - FOOT_RADIUS) / FEMUR_LENGTH)
# The real robot's calibration differences (Kraby reset(), section 9 of the protocol doc).
_COXA_CALIBRATION = (38, 36, 29, 34, 43, 30)
_CALIBRATION = {"femur": -46, "tibia": 46}
_DEFAULT = {"coxa": 0.0, "femur": round(_DEFAULT_FEMUR, 4), "tibia": round(-_DEFAULT_FEMUR, 4)}


def _build_table() -> tuple[Joint, ...]:
    rows = []
    for leg, prefix in enumerate(LEG_PREFIXES):
        for k, kind in enumerate(JOINT_KINDS):
            lo_c, hi_c = _SOFT_COUNTS[kind]
            rows.append(Joint(
                name=f"{prefix}_{kind}", leg=leg, kind=kind, servo_id=3 * leg + k,
                lower=-_HARD_LIMIT[kind], upper=_HARD_LIMIT[kind],
                soft_lower=round(lo_c * _COUNT_RAD, 4), soft_upper=round(hi_c * _COUNT_RAD, 4),
                default=_DEFAULT[kind],
                calibration=_COXA_CALIBRATION[leg] if kind == "coxa" else _CALIBRATION[kind]))
    return tuple(rows)


JOINTS: tuple[Joint, ...] = _build_table()
"""The 18 joints in canonical (= servo ID) order."""

JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in JOINTS)
"""Canonical joint order, used by every per-joint array in the package."""

SERVO_IDS = np.array([j.servo_id for j in JOINTS], dtype=np.int64)
LOWER = np.array([j.lower for j in JOINTS])
"""(18,) hard lower limits [rad], order ``JOINT_NAMES``."""
UPPER = np.array([j.upper for j in JOINTS])
"""(18,) hard upper limits [rad], order ``JOINT_NAMES``."""
SOFT_LOWER = np.array([j.soft_lower for j in JOINTS])
"""(18,) real robot software clamps, lower [rad]."""
SOFT_UPPER = np.array([j.soft_upper for j in JOINTS])
"""(18,) real robot software clamps, upper [rad]."""
DEFAULT_POSE = np.array([j.default for j in JOINTS])
"""(18,) default standing pose [rad], order ``JOINT_NAMES``."""
DIRECTION = np.array([j.direction for j in JOINTS], dtype=np.int64)
"""(18,) +1/-1: sign of joint angle per servo count."""
ZERO_COUNTS = np.array([j.zero_counts for j in JOINTS], dtype=np.int64)
"""(18,) calibrated servo counts at joint angle 0."""
CALIBRATION = np.array([j.calibration for j in JOINTS], dtype=np.int64)
"""(18,) the real robot's servo calibration differences (RAM 47) [counts]."""
MAX_VELOCITY = np.array([j.max_velocity for j in JOINTS])
MAX_EFFORT = np.array([j.max_effort for j in JOINTS])


def joint_index(name: str) -> int:
    """Canonical index of a joint name.

    Raises:
        ValueError: if the name is not one of ``JOINT_NAMES``.
    """
    try:
        return JOINT_NAMES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown joint name {name!r}: expected one of {', '.join(JOINT_NAMES)}") from None


def index_map(names) -> np.ndarray:
    """Index map from a foreign joint order to the canonical one.

    Args:
        names: sequence of 18 joint names in some other order (e.g. a JointState).

    Returns:
        (18,) int array ``m`` such that ``canonical = foreign[m]``.

    Raises:
        ValueError: on unknown, missing or duplicated names.
    """
    names = list(names)
    if sorted(names) != sorted(JOINT_NAMES):
        unknown = [n for n in names if n not in JOINT_NAMES]
        missing = [n for n in JOINT_NAMES if n not in names]
        raise ValueError(
            f"joint names do not match the Kraby joint table: unknown {unknown}, "
            f"missing {missing}, {len(names)} names given, 18 expected")
    return np.array([names.index(n) for n in JOINT_NAMES], dtype=np.int64)


def from_joint_state(msg, velocity=False):
    """(18,) positions [rad] (and velocities [rad/s], zeros when absent) of a JointState in
    canonical order (``msg`` is any JointState-like object:
    ``name``, ``position``, ``velocity``).

    Raises:
        ValueError: naming what is wrong (unknown or missing names, lengths, non-finite).
    """
    try:
        idx = index_map(msg.name)
        q = np.asarray(msg.position, float)[idx]
        w = (np.asarray(msg.velocity, float)[idx] if len(msg.velocity)
             else np.zeros(NUM_JOINTS))
    except (ValueError, IndexError, KeyError) as exc:
        raise ValueError(str(exc)) from None
    if q.shape != (NUM_JOINTS,) or not np.all(np.isfinite(q)):
        raise ValueError(f"expected {NUM_JOINTS} finite positions, found {q.tolist()}")
    return (q, w) if velocity else q
