"""Observation and action spec shared by every env and by the policy node.

Observation, version 1 (float32, shape (65,)); only quantities the real robot can measure or
knows:

=======  ============================  ========  ===============================================
index    meaning                       unit      source on the robot
=======  ============================  ========  ===============================================
0-2      body angular velocity x,y,z   rad/s     IMU gyro / state estimator, ``base_link``
3-5      gravity direction x,y,z       1         unit vector in ``base_link`` (IMU / estimator)
6-8      command vx, vy, yaw rate      m/s, m/s, rad/s  ``cmd_vel`` (body frame)
9-26     joint angle - default pose    rad       servos, order ``JOINT_NAMES``
27-44    joint velocity                rad/s     servos, order ``JOINT_NAMES``
45-62    previous action               1         the policy's own last output
63-64    gait clock sin, cos           1         sin/cos(2 pi f t), f = ``clock_hz``
=======  ============================  ========  ===============================================

Version 2 (shape (119,)) appends ``joint_err`` (65-118): for each of the last 3 control
periods, newest first, the targets sent minus the joint angles measured a period later,
order ``JOINT_NAMES`` [rad]: a blocked foot or a torque-free leg shows as joints that do not
follow. Version 3 (shape (122,)) appends ``heading_err`` (119): the commanded yaw rate
minus the gyro's, integrated since the command last became non-zero (zero while it is zero),
clipped to +-``HEADING_ERR_MAX`` [rad]: how far the body has turned away from the heading
the command asked for (a limp leg or rough ground turns an open-loop gait); and ``tilt``
(120-121): the gravity direction's x and y low-passed with time constant ``TILT_TAU_S``
(the body's lean and rocking, with less of the sensor's noise). Version 4 (shape (128,))
appends ``leg_err`` (122-127): per leg, order ``LEG_PREFIXES``, the mean absolute
``joint_err`` of its three joints in the newest period, low-passed with time constant
``LEG_ERR_TAU_S`` [rad]: a leg whose servos do not follow (torque off, overload protection
tripped) reads 0.5-1 rad, a working leg under 0.12 rad on any ground, load or servo
strength the robustness gate tries. Every version is built by ``ObservationBuilder`` (env
and node alike).

Action (float32, shape (18,), each in [-1, 1]), order ``JOINT_NAMES``, decoded according to
the policy's ``action_mode`` (in its metadata, so every runner decodes it the same way):

* ``joint`` (default): ``q_target = DEFAULT_POSE + ACTION_SCALE * action``;
* ``gait_residual``: ``q_target = tripod_gait(phase, command) + residual_scale * action``:
  the tripod gait (``core.gait``, frequency ``clock_hz``) at the phase and command of the
  observation the action was computed from, plus a learned residual. With a heading gain
  ``k`` (contract ``gait_heading_gain``, spec version 3) the gait walks the yaw rate
  ``command + clip(k * heading_err, +-HEADING_RATE_MAX)`` while the command is non-zero:
  it steers back to the commanded heading instead of walking open loop. With a levelling
  gain ``c`` (contract ``gait_level_gain``, spec version 3) each foot is raised by
  ``clip(-c * (g_x x_foot + g_y y_foot), +-LEVEL_DZ_MAX)`` (``g``: the observation's
  ``tilt``, ``x_foot, y_foot``: the foot's default stance position in base_link): the legs
  on the side that rises shorten and those on the side that sinks extend, so the body tilts
  back toward level (a limp rear leg would otherwise let it rear up and topple). With a
  limp threshold (contract ``gait_limp_threshold``, spec version 4) the legs whose
  ``leg_err`` exceeds it count as limp: the gait holds them at their stance position and
  walks the others as a wave (``core.gait``), so that at most one working leg is in the
  air at a time.

Either way the target is clipped to the real robot's software clamps
``[SOFT_LOWER, SOFT_UPPER]``. The values these depend on (control period, clock, gait,
residual scale) and their defaults are the contract's: ``core.contract``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.core import kinematics as K
from kraby_rl.core.gait import TripodGait

SPEC_VERSION = 1


@dataclass(frozen=True)
class Field:
    """One block of the observation vector."""

    name: str
    size: int
    unit: str
    meaning: str


OBS_FIELDS: tuple[Field, ...] = (
    Field("base_ang_vel", 3, "rad/s", "body angular velocity in base_link"),
    Field("gravity", 3, "1", "gravity direction (unit vector) in base_link"),
    Field("command", 3, "m/s, m/s, rad/s", "commanded vx, vy, yaw rate (body frame)"),
    Field("joint_pos", J.NUM_JOINTS, "rad", "joint angle minus default pose"),
    Field("joint_vel", J.NUM_JOINTS, "rad/s", "joint velocity"),
    Field("last_action", J.NUM_JOINTS, "1", "previous action"),
    Field("clock", 2, "1", "sin, cos of the gait clock phase"),
)

JOINT_ERR_HISTORY = 3
"""Control periods of joint errors in a version-2 observation."""
OBS_FIELDS_V2: tuple[Field, ...] = OBS_FIELDS + (
    Field("joint_err", J.NUM_JOINTS * JOINT_ERR_HISTORY, "rad",
          "target sent minus joint angle measured a period later, the last 3 periods, "
          "newest first"),
)
"""Version 2: version 1 plus what a blind robot feels of a blocked foot or a dead leg (a
joint that does not follow its targets), from what the real driver measures."""
OBS_FIELDS_V3: tuple[Field, ...] = OBS_FIELDS_V2 + (
    Field("heading_err", 1, "rad",
          "commanded minus measured yaw rate integrated while the command is non-zero"),
    Field("tilt", 2, "1", "gravity direction x, y in base_link, low-passed (TILT_TAU_S)"),
)
"""Version 3: version 2 plus the heading error the gait's heading hold steers on and the
filtered tilt its levelling acts on."""
TILT_TAU_S = 0.05
"""[s] time constant of the ``tilt`` low-pass: it smooths sensor noise over a few control
periods but passes the gait's rocking (1-3 Hz), which the levelling must damp (with 0.1 s
or more the ripple gait with a limp rear leg topples, levelled or not)."""
HEADING_ERR_MAX = 0.35
"""[rad] clip of ``heading_err`` (20 deg: no wind-up while the robot is held or blocked)."""
HEADING_RATE_MAX = 0.5
"""[rad/s] largest yaw-rate correction the heading hold adds to the command."""
LEVEL_DZ_MAX = 0.03
"""[m] largest foot height change the gait's levelling makes."""
LIMP_THRESHOLD_MAX = 2.0
"""[rad] largest ``gait_limp_threshold`` (a leg error no leg reaches: never limp)."""
OBS_FIELDS_V4: tuple[Field, ...] = OBS_FIELDS_V3 + (
    Field("leg_err", 6, "rad",
          "per leg, mean |joint_err| of its joints, low-passed (LEG_ERR_TAU_S)"),
)
"""Version 4: version 3 plus, per leg, how far its joints lag their targets (a limp leg)."""
LEG_ERR_TAU_S = 0.5
"""[s] time constant of the ``leg_err`` low-pass: a stumble or a blocked foot lasts a few
control periods, a dead leg for good."""
SPEC_FIELDS = {1: OBS_FIELDS, 2: OBS_FIELDS_V2, 3: OBS_FIELDS_V3, 4: OBS_FIELDS_V4}
"""Observation fields of each spec version (a later version appends to the earlier)."""

OBS_SLICES: dict[str, slice] = {}
_i = 0
for _f in OBS_FIELDS_V4:
    OBS_SLICES[_f.name] = slice(_i, _i + _f.size)
    _i += _f.size
OBS_SIZE = sum(f.size for f in OBS_FIELDS)
"""Version 1's size (the default spec)."""


def obs_size(version: int) -> int:
    return sum(f.size for f in SPEC_FIELDS[version])


ACTION_SIZE = J.NUM_JOINTS

ACTION_SCALE = np.array([{"coxa": 0.40, "femur": 0.50, "tibia": 0.50}[j.kind] for j in J.JOINTS])
"""(18,) radians per unit action, order ``JOINT_NAMES``."""


def action_to_targets(action: np.ndarray) -> np.ndarray:
    """Joint position targets [rad] (18,) for an action (18,) in [-1, 1]."""
    a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
    return np.clip(J.DEFAULT_POSE + ACTION_SCALE * a, J.SOFT_LOWER, J.SOFT_UPPER)


ACTION_MODES = ("joint", "gait_residual")


class ActionDecoder:
    """Joint targets [rad] from an action and the observation it was computed from.

    Built by ``core.contract.Contract.decoder()`` (which holds the defaults).

    Args:
        mode: one of ``ACTION_MODES``.
        clock_hz: gait clock (and tripod step) frequency [Hz].
        duty, lift_m: tripod gait duty factor and foot lift [m] (``gait_residual``).
        residual_scale: (18,) radians per unit action of ``gait_residual``.
        stride_scale: the tripod gait's stride scale (``gait_residual``).
        pattern: the gait's pattern, ``tripod`` or ``ripple`` (``gait_residual``).
        heading_gain: [1/s] heading hold: yaw rate added per radian of ``heading_err``
            (``gait_residual``, observations of spec version 3; 0: open loop).
        level_gain: [m] levelling: foot height change per metre of stance position and
            unit of gravity tilt (``gait_residual``; 0: none).
        limp_threshold: [rad] a leg whose ``leg_err`` exceeds it counts as limp and the
            gait walks on the others (``gait_residual``, spec version 4; 0: never).
        limp_shift, limp_crouch_m: how the gait carries the body over fewer legs
            (``core.gait.TripodGait``).
    """

    def __init__(self, mode: str, clock_hz: float, duty: float, lift_m: float,
                 residual_scale, stride_scale: float, pattern: str,
                 heading_gain: float = 0.0, level_gain: float = 0.0,
                 limp_threshold: float = 0.0, limp_shift: float = 0.0,
                 limp_crouch_m: float = 0.0):
        if mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, found {mode!r}")
        self.mode = mode
        self.gait = (TripodGait(clock_hz, duty, lift_m, stride_scale, pattern, limp_shift,
                                limp_crouch_m)
                     if mode == "gait_residual" else None)
        scale = np.asarray(residual_scale, float)
        if scale.shape != (ACTION_SIZE,) or not np.all(np.isfinite(scale)) \
                or not np.all(scale > 0):
            raise ValueError(f"residual_scale: expected {ACTION_SIZE} positive radians per "
                             f"unit action, found {np.asarray(residual_scale).tolist()!r}")
        self.residual_scale = scale.copy()
        if not 0.0 <= heading_gain <= 10.0:
            raise ValueError(f"heading_gain: expected a gain in [0, 10] [1/s], found "
                             f"{heading_gain!r}")
        self.heading_gain = float(heading_gain)
        if not 0.0 <= level_gain <= 5.0:
            raise ValueError(f"level_gain: expected a gain in [0, 5], found {level_gain!r}")
        self.level_gain = float(level_gain)
        if not 0.0 <= limp_threshold <= LIMP_THRESHOLD_MAX:
            raise ValueError(f"limp_threshold: expected [0, {LIMP_THRESHOLD_MAX}] rad, found "
                             f"{limp_threshold!r}")
        self.limp_threshold = float(limp_threshold)

    def command(self, obs: np.ndarray) -> np.ndarray:
        """The command the gait walks: the observation's, steered by the heading hold."""
        cmd = np.array(obs[OBS_SLICES["command"]], dtype=float)
        if self.heading_gain and cmd.any():
            err = float(obs[OBS_SLICES["heading_err"]][0])
            cmd[2] += min(HEADING_RATE_MAX, max(-HEADING_RATE_MAX, self.heading_gain * err))
        return cmd

    def base(self, obs: np.ndarray) -> np.ndarray:
        """The targets of a zero action: the default pose, or the gait at the obs's phase."""
        if self.gait is None:
            return J.DEFAULT_POSE.copy()
        sin, cos = obs[OBS_SLICES["clock"]]
        phase = (math.atan2(sin, cos) / (2 * math.pi)) % 1.0
        limp = (obs[OBS_SLICES["leg_err"]] > self.limp_threshold
                if self.limp_threshold else None)
        feet = self.gait.feet(phase / self.gait.frequency, self.command(obs), limp)
        if self.level_gain:
            gx, gy = obs[OBS_SLICES["tilt"]]
            dz = -self.level_gain * (float(gx) * K.DEFAULT_FEET[:, 0]
                                     + float(gy) * K.DEFAULT_FEET[:, 1])
            feet[:, 2] += np.clip(dz, -LEVEL_DZ_MAX, LEVEL_DZ_MAX)
        return K.leg_inverse(feet)

    def __call__(self, action: np.ndarray, obs: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(action, dtype=float), -1.0, 1.0)
        if self.gait is None:
            return action_to_targets(a)
        q = self.base(obs) + self.residual_scale * a
        return np.clip(q, J.SOFT_LOWER, J.SOFT_UPPER)


def targets_to_action(q_target: np.ndarray) -> np.ndarray:
    """Inverse of ``action_to_targets`` (not clipped): action (18,) for targets [rad]."""
    return (np.asarray(q_target, dtype=float) - J.DEFAULT_POSE) / ACTION_SCALE


class ObservationBuilder:
    """Builds observation vectors in place (one buffer, no allocation per call).

    Args:
        clock_hz: gait clock frequency [Hz].
    """

    def __init__(self, clock_hz: float, spec_version: int = SPEC_VERSION):
        if not clock_hz > 0:
            raise ValueError(f"clock_hz must be > 0, found {clock_hz!r}")
        if spec_version not in SPEC_FIELDS:
            raise ValueError(f"spec_version: expected one of {sorted(SPEC_FIELDS)}, found "
                             f"{spec_version!r}")
        self.clock_hz = float(clock_hz)
        self.spec_version = spec_version
        self._buf = np.zeros(obs_size(spec_version), dtype=np.float32)
        self._err = np.zeros((JOINT_ERR_HISTORY, J.NUM_JOINTS))
        self._sent = None
        self._heading = 0.0
        self._tilt = None
        self._leg_err = np.zeros(6)
        self._t = None

    def reset(self) -> None:
        """A new run: no targets sent, no joint error history, no heading error, no leg
        error, the tilt filter starts from the next gravity reading."""
        self._err[:] = 0.0
        self._leg_err[:] = 0.0
        self._sent = None
        self._heading = 0.0
        self._tilt = None
        self._t = None

    def note_targets(self, q_target) -> None:
        """The joint targets [rad] sent after the last observation (version 2 compares the
        next measured angles with them)."""
        self._sent = np.array(q_target, dtype=float)

    def build(self, ang_vel, gravity, command, joint_pos, joint_vel, last_action,
              t: float) -> np.ndarray:
        """Return a new observation vector.

        Args:
            ang_vel: (3,) body angular velocity [rad/s] in base_link.
            gravity: (3,) unit gravity direction in base_link.
            command: (3,) vx [m/s], vy [m/s], yaw rate [rad/s].
            joint_pos: (18,) joint angles [rad], order ``JOINT_NAMES`` (absolute).
            joint_vel: (18,) joint speeds [rad/s].
            last_action: (18,) previous action.
            t: time since the start of the episode [s] (drives the gait clock).
        """
        b = self._buf
        b[0:3] = ang_vel
        b[3:6] = gravity
        b[6:9] = command
        b[9:27] = joint_pos
        b[9:27] -= J.DEFAULT_POSE
        b[27:45] = joint_vel
        b[45:63] = last_action
        ph = 2.0 * math.pi * self.clock_hz * t
        b[63] = math.sin(ph)
        b[64] = math.cos(ph)
        if self.spec_version >= 2:
            self._err[1:] = self._err[:-1]
            self._err[0] = 0.0 if self._sent is None else self._sent - joint_pos
            b[65:119] = self._err.ravel()
        # integrated over the time since the last observation, at most 0.1 s (a paused run
        # does not count its gap as turning)
        dt = 0.0 if self._t is None else min(0.1, max(0.0, t - self._t))
        if self.spec_version >= 3:
            if command[0] == 0.0 and command[1] == 0.0 and command[2] == 0.0:
                self._heading = 0.0         # a stop: the next command sets a new heading
            else:
                e = self._heading + (float(command[2]) - float(ang_vel[2])) * dt
                self._heading = min(HEADING_ERR_MAX, max(-HEADING_ERR_MAX, e))
            b[119] = self._heading
            g = np.array(gravity[:2], dtype=float)
            if self._tilt is None:
                self._tilt = g
            else:
                self._tilt += (g - self._tilt) * min(1.0, dt / TILT_TAU_S)
            b[120:122] = self._tilt
        if self.spec_version >= 4:
            per_leg = np.abs(self._err[0]).reshape(6, 3).mean(axis=1)
            self._leg_err += (per_leg - self._leg_err) * min(1.0, dt / LEG_ERR_TAU_S)
            b[122:128] = self._leg_err
        self._t = t
        return b.copy()


# --- OneLeg-v0 -----------------------------------------------------------------------------
ONE_LEG_OBS_FIELDS: tuple[Field, ...] = (
    Field("joint_pos", 3, "rad", "lf coxa, femur, tibia angle minus default pose"),
    Field("joint_vel", 3, "rad/s", "lf joint velocities"),
    Field("foot", 3, "m", "lf foot position in base_link (forward kinematics)"),
    Field("target", 3, "m", "target point in base_link"),
    Field("last_action", 3, "1", "previous action"),
)
"""OneLeg-v0 observation (15,): the left-front leg only; the other legs hold still."""
ONE_LEG_OBS_SIZE = sum(f.size for f in ONE_LEG_OBS_FIELDS)
ONE_LEG_ACTION_SIZE = 3
