"""The sim/real contract: everything a policy is trained against and a robot must honour.

One frozen ``Contract`` holds it; this module is the only place its default values are
written. ``HexapodEnv`` builds one from its arguments and exposes it (``env.contract``);
training and export write ``contract.metadata()`` beside the weights; ``policy_node``, the
topic env and ``gym_bridge`` rebuild it with ``Contract.from_metadata()``, which checks
every key of it and names each problem.

Two kinds of keys:

* fixed by this package (``PACKAGE_KEYS``): observation fields (those of the spec
  version) and history, joint order, default pose, action scale, residual scale, clamps. A
  policy that differs in any of them is refused everywhere;
* chosen by the policy (``POLICY_KEYS``): control period, gait clock, action mode, gait
  duty, lift, stride, pattern, heading and levelling gains, limp threshold, shift and
  crouch, sensor timeouts, observation spec version (1 to 4). A runner adopts the policy's
  values, unless it pins one (a node parameter): then a policy with another value is
  refused.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.core import spec as S
from kraby_rl.core.gait import LIMP_CROUCH_MAX, PATTERNS, TripodGait

# --- the defaults (nowhere else) -----------------------------------------------------------
CONTROL_PERIOD_S = 0.02
"""Policy period [s]: one observation, one action, one set of servo goals."""
CLOCK_HZ = 2.0
"""Gait clock frequency [Hz] (and the tripod gait's step frequency)."""
ACTION_MODE = "joint"
GAIT_DUTY = 0.5
"""Fraction of a step cycle a foot is on the ground (``gait_residual``)."""
GAIT_LIFT_M = 0.02
"""Foot lift at mid-swing [m] (``gait_residual``)."""
GAIT_STRIDE_SCALE = 1.0
"""Stride over the no-slip stride of the commanded velocity (``gait_residual``)."""
GAIT_PATTERN = "tripod"
"""Which legs step when: ``tripod`` or ``ripple`` (``core.gait.PATTERNS``)."""
GAIT_HEADING_GAIN = 0.0
"""[1/s] the gait's heading hold (yaw rate per radian of heading error; spec version 3);
0: the gait walks open loop (``gait_residual``)."""
GAIT_LEVEL_GAIN = 0.0
"""[m] the gait's levelling (foot height change per metre of stance position and unit of
gravity tilt, ``core.spec``); 0: none (``gait_residual``)."""
GAIT_LIMP_THRESHOLD = 0.0
"""[rad] a leg whose ``leg_err`` (spec version 4) exceeds this counts as limp and the gait
walks a wave on the others (``core.gait``); 0: never (``gait_residual``)."""
GAIT_LIMP_SHIFT = 0.0
"""With limp legs, the fraction of the way the body sways toward the centroid of the feet on
the ground (``core.gait``; ``gait_residual``)."""
GAIT_LIMP_CROUCH_M = 0.0
"""[m] with limp legs, how much lower the body walks (``core.gait``; ``gait_residual``)."""
RESIDUAL_SCALE = tuple(float({"coxa": 0.10, "femur": 0.15, "tibia": 0.15}[j.kind])
                       for j in J.JOINTS)
"""(18,) radians per unit action of the ``gait_residual`` mode, order ``JOINT_NAMES``."""
OBS_HISTORY = 1
"""Observations the policy sees per step (the current one only)."""
STATE_TIMEOUT_S = 0.1
"""No observation (and no targets) while joint_states are older than this [s]."""
SENSOR_TIMEOUT_S = 0.2
"""imu/data older than this is replaced by odometry, then by a level robot at rest [s]."""
CMD_VEL_TIMEOUT_S = 0.5
"""A cmd_vel older than this counts as zero [s]."""


class ContractError(ValueError):
    """A contract that is invalid, incomplete, or does not match the one expected."""


def _fields(version: int) -> tuple:
    return tuple((f.name, f.size, f.unit) for f in S.SPEC_FIELDS[version])


def _floats(values) -> tuple:
    return tuple(float(v) for v in np.asarray(values, dtype=float).ravel())


@dataclasses.dataclass(frozen=True)
class Contract:
    """The observation/action contract of a policy (see the module docstring)."""

    control_period_s: float = CONTROL_PERIOD_S
    clock_hz: float = CLOCK_HZ
    action_mode: str = ACTION_MODE
    gait_duty: float = GAIT_DUTY
    gait_lift_m: float = GAIT_LIFT_M
    gait_stride_scale: float = GAIT_STRIDE_SCALE
    gait_pattern: str = GAIT_PATTERN
    gait_heading_gain: float = GAIT_HEADING_GAIN
    gait_level_gain: float = GAIT_LEVEL_GAIN
    gait_limp_threshold: float = GAIT_LIMP_THRESHOLD
    gait_limp_shift: float = GAIT_LIMP_SHIFT
    gait_limp_crouch_m: float = GAIT_LIMP_CROUCH_M
    state_timeout_s: float = STATE_TIMEOUT_S
    sensor_timeout_s: float = SENSOR_TIMEOUT_S
    cmd_vel_timeout_s: float = CMD_VEL_TIMEOUT_S
    spec_version: int = S.SPEC_VERSION
    obs_fields: tuple | None = None     # None: the fields of spec_version
    obs_history: int = OBS_HISTORY
    joint_names: tuple = tuple(J.JOINT_NAMES)
    default_pose: tuple = _floats(J.DEFAULT_POSE)
    action_scale: tuple = _floats(S.ACTION_SCALE)
    residual_scale: tuple = RESIDUAL_SCALE
    action_lower: tuple = _floats(J.SOFT_LOWER)
    action_upper: tuple = _floats(J.SOFT_UPPER)

    def __post_init__(self):
        problems = []
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        for name in ("control_period_s", "clock_hz", "gait_duty", "gait_lift_m",
                     "gait_stride_scale", "gait_heading_gain", "gait_level_gain",
                     "gait_limp_threshold", "gait_limp_shift", "gait_limp_crouch_m",
                     "state_timeout_s",
                     "sensor_timeout_s", "cmd_vel_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                problems.append(f"{name}: expected a number, found {value!r}")
                continue
            set_(name, float(value))
        for name in ("spec_version", "obs_history"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name}: expected a whole number >= 1, found {value!r}")
        if not problems:
            for name, ok, want in (
                    ("control_period_s", self.control_period_s > 0, "a period > 0 [s]"),
                    ("clock_hz", 0 < self.clock_hz <= 5, "a frequency in (0, 5] [Hz]"),
                    ("gait_duty", 0.3 <= self.gait_duty < 1, "a duty factor in [0.3, 1)"),
                    ("gait_lift_m", 0 <= self.gait_lift_m <= 0.1, "a lift in [0, 0.1] m"),
                    ("gait_stride_scale", 0.5 <= self.gait_stride_scale <= 2.0,
                     "a stride scale in [0.5, 2]"),
                    ("gait_heading_gain", 0 <= self.gait_heading_gain <= 10,
                     "a gain in [0, 10] [1/s]"),
                    ("gait_level_gain", 0 <= self.gait_level_gain <= 5,
                     "a gain in [0, 5] [m]"),
                    ("gait_limp_threshold",
                     0 <= self.gait_limp_threshold <= S.LIMP_THRESHOLD_MAX,
                     f"a leg error in [0, {S.LIMP_THRESHOLD_MAX}] [rad]"),
                    ("gait_limp_shift", 0 <= self.gait_limp_shift <= 1,
                     "a fraction in [0, 1]"),
                    ("gait_limp_crouch_m", 0 <= self.gait_limp_crouch_m <= LIMP_CROUCH_MAX,
                     f"a height in [0, {LIMP_CROUCH_MAX}] m"),
                    ("state_timeout_s", self.state_timeout_s > 0, "a time > 0 [s]"),
                    ("sensor_timeout_s", self.sensor_timeout_s > 0, "a time > 0 [s]"),
                    ("cmd_vel_timeout_s", self.cmd_vel_timeout_s > 0, "a time > 0 [s]")):
                if not ok:
                    problems.append(f"{name}: expected {want}, found {getattr(self, name)!r}")
        if self.gait_pattern not in PATTERNS:
            problems.append(f"gait_pattern: expected one of {sorted(PATTERNS)}, found "
                            f"{self.gait_pattern!r}")
        if self.action_mode not in S.ACTION_MODES:
            problems.append(f"action_mode: expected one of {S.ACTION_MODES}, found "
                            f"{self.action_mode!r}")
        if not problems and self.spec_version not in S.SPEC_FIELDS:
            problems.append(f"spec_version: expected one of {sorted(S.SPEC_FIELDS)}, found "
                            f"{self.spec_version!r}")
        for gain, what, uses, version in (
                ("gait_heading_gain", "a heading hold", "heading_err", 3),
                ("gait_level_gain", "levelling", "tilt", 3),
                ("gait_limp_threshold", "the limp-leg wave", "leg_err", 4),
                ("gait_limp_shift", "the limp-leg wave", "leg_err", 4),
                ("gait_limp_crouch_m", "the limp-leg wave", "leg_err", 4)):
            if not problems and getattr(self, gain) and (
                    self.spec_version < version or self.action_mode != "gait_residual"):
                problems.append(f"{gain}: {what} needs action_mode gait_residual and "
                                f"spec_version >= {version} (its {uses}), found "
                                f"{getattr(self, gain)!r} with {self.action_mode!r} and spec "
                                f"version {self.spec_version!r}")
        if self.obs_fields is None:
            set_("obs_fields", _fields(self.spec_version)
                 if self.spec_version in S.SPEC_FIELDS else ())
        try:
            set_("obs_fields", tuple((str(n), int(k), str(u)) for n, k, u in self.obs_fields))
        except (TypeError, ValueError):
            problems.append(f"obs_fields: expected [name, size, unit] entries, found "
                            f"{self.obs_fields!r}")

        names = self.joint_names
        if isinstance(names, str) or not all(isinstance(n, str) for n in names or ()):
            problems.append(f"joint_names: expected a list of names, found {names!r}")
        else:
            set_("joint_names", tuple(names))
        for name in ("default_pose", "action_scale", "residual_scale", "action_lower",
                     "action_upper"):
            value = getattr(self, name)
            try:
                arr = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                arr = None
            if arr is None or arr.shape != (J.NUM_JOINTS,) or not np.all(np.isfinite(arr)):
                problems.append(f"{name}: expected {J.NUM_JOINTS} finite radians, found "
                                f"{value!r}")
                continue
            if name in ("action_scale", "residual_scale") and not np.all(arr > 0):
                problems.append(f"{name}: expected {J.NUM_JOINTS} positive radians per unit "
                                f"action, found {arr.tolist()!r}")
                continue
            set_(name, _floats(arr))
        if not problems and not np.all(np.array(self.action_lower)
                                       <= np.array(self.action_upper)):
            problems.append("action_lower/action_upper: expected lower <= upper for every "
                            "joint")
        if problems:
            raise ContractError("invalid contract: " + "; ".join(problems))

    # --- derived -----------------------------------------------------------------------
    @property
    def obs_size(self) -> int:
        return self.obs_history * sum(size for _n, size, _u in self.obs_fields)

    @property
    def action_size(self) -> int:
        return len(self.joint_names)

    def replace(self, **changes) -> "Contract":
        return dataclasses.replace(self, **changes)

    def decoder(self) -> S.ActionDecoder:
        """How this contract's actions become joint targets."""
        return S.ActionDecoder(self.action_mode, self.clock_hz, self.gait_duty,
                               self.gait_lift_m, np.array(self.residual_scale),
                               self.gait_stride_scale, self.gait_pattern,
                               self.gait_heading_gain, self.gait_level_gain,
                               self.gait_limp_threshold, self.gait_limp_shift,
                               self.gait_limp_crouch_m)

    def observation_builder(self) -> S.ObservationBuilder:
        return S.ObservationBuilder(self.clock_hz, self.spec_version)

    def tripod_gait(self) -> TripodGait:
        """The open-loop gait at this contract's clock, duty, lift, stride and pattern."""
        return TripodGait(self.clock_hz, self.gait_duty, self.gait_lift_m,
                          self.gait_stride_scale, self.gait_pattern, self.gait_limp_shift,
                          self.gait_limp_crouch_m)

    # --- metadata ----------------------------------------------------------------------
    def metadata(self) -> dict:
        """Every key, JSON-ready (what training and export write beside the weights)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = ([list(v) for v in value] if f.name == "obs_fields"
                           else list(value) if isinstance(value, tuple) else value)
        out["obs_size"], out["action_size"] = self.obs_size, self.action_size
        return out

    @classmethod
    def from_metadata(cls, meta: dict, pinned: dict | None = None,
                      what: str = "policy") -> "Contract":
        """The contract a policy's metadata states, checked against what this robot expects.

        Every key must be present and valid; the ``PACKAGE_KEYS`` must equal this package's;
        the ``POLICY_KEYS`` in ``pinned`` (a runner's parameters) must equal the pinned value.

        Raises:
            ContractError: naming every missing, invalid and mismatching key.
        """
        missing = [k for k in KEYS if k not in meta]
        if missing:
            raise ContractError(
                f"{what} metadata lacks contract keys {missing} (exported before the "
                f"contract had them? re-export it: kraby export RUN)")
        try:
            contract = cls(**{k: meta[k] for k in KEYS})
        except (ContractError, TypeError) as exc:
            raise ContractError(f"{what}: {exc}") from None
        problems = [f"{k}: metadata says {meta[k]!r}, its fields give {getattr(contract, k)!r}"
                    for k in ("obs_size", "action_size")
                    if k in meta and meta[k] != getattr(contract, k)]
        problems += contract.mismatches(expected_by_robot(contract, pinned))
        if problems:
            raise ContractError(f"{what} does not match this robot: " + "; ".join(problems))
        return contract

    @classmethod
    def from_env_config(cls, env: dict | None) -> "Contract":
        """The contract of a ``HexapodEnv`` configured with ``env`` (a training config's
        ``env`` section): its ``POLICY_KEYS`` where given, the defaults elsewhere."""
        env = env or {}
        return cls(**{k: env[k] for k in ENV_KEYS if k in env})

    def mismatches(self, expected: "Contract") -> list[str]:
        """``"key: policy has X, robot expects Y"`` for every key that differs."""
        out = []
        for k in KEYS:
            have, want = getattr(self, k), getattr(expected, k)
            if isinstance(want, float) or (isinstance(want, tuple) and want
                                           and isinstance(want[0], float)):
                same = (np.shape(have) == np.shape(want)
                        and np.allclose(have, want, rtol=0, atol=1e-9))
            else:
                same = have == want
            if not same:
                out.append(f"{k}: policy has {_show(have)}, robot expects {_show(want)}")
        return out


def _show(value):
    return list(value) if isinstance(value, tuple) else repr(value)


KEYS = tuple(f.name for f in dataclasses.fields(Contract))
POLICY_KEYS = ("control_period_s", "clock_hz", "action_mode", "gait_duty", "gait_lift_m",
               "gait_stride_scale", "gait_pattern", "gait_heading_gain",
               "gait_level_gain", "gait_limp_threshold", "gait_limp_shift",
               "gait_limp_crouch_m", "state_timeout_s", "sensor_timeout_s",
               "cmd_vel_timeout_s", "spec_version")
"""Keys a policy chooses; a runner adopts them unless it pins them."""
PACKAGE_KEYS = tuple(k for k in KEYS if k not in POLICY_KEYS)
"""Keys fixed by this package: a policy must have exactly these."""
ENV_KEYS = ("control_period_s", "clock_hz", "action_mode", "gait_duty", "gait_lift_m",
            "gait_stride_scale", "gait_pattern", "gait_heading_gain",
            "gait_level_gain", "gait_limp_threshold", "gait_limp_shift",
            "gait_limp_crouch_m", "spec_version")
"""HexapodEnv arguments that are contract keys (same names)."""
DEFAULT = Contract()
"""This package's contract with every default."""


def expected_by_robot(policy: Contract, pinned: dict | None = None) -> Contract:
    """What this robot expects of ``policy``: the package's ``PACKAGE_KEYS``, and for each
    of the ``POLICY_KEYS`` the ``pinned`` value where one is given (not None, 0 or ""),
    else the policy's own."""
    pinned = {k: v for k, v in (pinned or {}).items() if v not in (None, 0, 0.0, "")}
    unknown = sorted(set(pinned) - set(POLICY_KEYS))
    if unknown:
        raise ContractError(f"cannot pin {unknown}: only {POLICY_KEYS} are chosen per policy")
    return Contract(**{k: pinned.get(k, getattr(policy, k)) for k in POLICY_KEYS})
