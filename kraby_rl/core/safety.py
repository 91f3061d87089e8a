"""The safety shield as plain logic: validate, clamp, rate-limit, trip, latch, reset.

The shield node feeds it messages (targets, joint states, tilt, emergency stop, reset) with
their arrival times and publishes what `update()` returns. No ROS, no clock of its own:
every method takes `now` [s], so the behaviour is tested with hand-made timelines.

States (`ShieldOutput.state`, published on safety/state):
- ``WAITING``: no joint state yet; nothing is commanded.
- ``OK``: targets pass through (clamped, rate-limited); before the first target, and after a
  reset, the measured pose is held.
- ``ESTOP``: emergency_stop was true (or the heartbeat stopped); nothing is commanded, the
  servo driver has braked. Latched.
- ``FAULT:<cause>``: stale_command, stale_state, tilt or servo_fault (the servo driver
  reports a servo in an error state: overload, driver fault, temperature, voltage,
  EEPROM); the pose measured at the trip is held (the last commanded one for
  stale_state). Latched. With ``on_servo_fault="continue"`` a servo fault is reported
  (``servo_faults``) but does not stop the robot: the policy walks on without the servo.

A latched stop is released only by `reset()`, and only once its cause has cleared; the robot
then resumes from its measured pose, never from an old target.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kraby_rl.core import joints as J


@dataclasses.dataclass(frozen=True)
class ShieldLimits:
    """Thresholds of the shield (all SI; 0 disables a timeout).

    lower, upper: (18,) joint limits [rad], order `J.JOINT_NAMES`.
    """

    lower: np.ndarray = dataclasses.field(default_factory=lambda: J.SOFT_LOWER.copy())
    upper: np.ndarray = dataclasses.field(default_factory=lambda: J.SOFT_UPPER.copy())
    max_rate_rad_s: float = 4.0
    command_timeout_s: float = 0.25
    state_timeout_s: float = 0.15
    max_tilt_rad: float = 0.6
    heartbeat_timeout_s: float = 0.0

    def __post_init__(self):
        for name in ("max_rate_rad_s", "max_tilt_rad"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a positive number, found {value!r}")
        for name in ("command_timeout_s", "state_timeout_s", "heartbeat_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name}: expected a number >= 0 (0 = off), found {value!r}")
        lower, upper = np.asarray(self.lower, float), np.asarray(self.upper, float)
        if lower.shape != (J.NUM_JOINTS,) or upper.shape != (J.NUM_JOINTS,):
            raise ValueError(f"joint limits: expected {J.NUM_JOINTS} lower and upper values, "
                             f"found {lower.size} and {upper.size}")
        bad = [J.JOINT_NAMES[i] for i in np.flatnonzero(~(lower < upper))]
        if bad:
            raise ValueError(f"joint limits: lower must be below upper; not so for {bad}")


class TargetError(ValueError):
    """A rejected target; `kind` is non_finite, wrong_length or unknown_name (for counters)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclasses.dataclass(frozen=True)
class Trip:
    """Why the shield stopped: cause, and where it applies, the joint, value and limit."""

    cause: str
    value: float
    limit: float
    joint: str | None = None

    def describe(self) -> str:
        what = {"estop": "emergency_stop received", "heartbeat": "heartbeat lost: no "
                "emergency_stop=false for {value:.3f} s (limit {limit:.3f} s)",
                "stale_command": "stale command: no target for {value:.3f} s "
                "(limit {limit:.3f} s)",
                "stale_state": "stale joint state: none for {value:.3f} s (limit {limit:.3f} s)",
                "tilt": "tilt {value:.3f} rad over the limit {limit:.3f} rad",
                "servo_fault": "servo fault: {joint}"}[self.cause]
        return what.format(value=self.value, limit=self.limit, joint=self.joint)


@dataclasses.dataclass
class ShieldOutput:
    state: str
    command: np.ndarray | None      # (18,) position targets [rad], or None: command nothing
    trips: list                     # trips that happened in this update (log each once)
    clamped: list                   # joint names clamped to a limit in this update


SERVO_FAULT_ACTIONS = ("stop", "continue")


class SafetyShield:
    """Args:
        limits: ``ShieldLimits``.
        on_servo_fault: ``stop`` (a servo fault latches FAULT:servo_fault) or ``continue``
            (it is only reported).
    """

    def __init__(self, limits: ShieldLimits | None = None, on_servo_fault: str = "stop"):
        if on_servo_fault not in SERVO_FAULT_ACTIONS:
            raise ValueError(f"on_servo_fault: expected one of {', '.join(SERVO_FAULT_ACTIONS)}"
                             f", found {on_servo_fault!r}")
        self.limits = limits or ShieldLimits()
        self.on_servo_fault = on_servo_fault
        self.servo_faults: dict[str, str] = {}
        """{joint: what is wrong} the servo driver reports now."""
        self.state = "WAITING"
        self.cause: Trip | None = None
        self.rejected: dict[str, int] = {}
        self._target = None            # (18,) validated target, order JOINT_NAMES
        self._target_t = None
        self._measured = None          # (18,) last measured position
        self._state_t = None
        self._tilt = 0.0
        self._estop_active = False
        self._heartbeat_t = None
        self._last_out = None          # (18,) last command sent
        self._last_t = None
        self._hold = None              # pose held while latched / waiting for a target
        self._pending: list[Trip] = []

    # --- inputs ----------------------------------------------------------------------------
    def validate(self, names, positions) -> np.ndarray:
        """A target message as (18,) positions in canonical order.

        Raises:
            TargetError: naming what is wrong (length, unknown or missing joint, non-finite).
        """
        names, positions = list(names), list(positions)
        if len(names) != len(positions):
            raise TargetError("wrong_length", f"wrong length: {len(names)} names but "
                              f"{len(positions)} positions")
        unknown = [n for n in names if n not in J.JOINT_NAMES]
        if unknown:
            raise TargetError("unknown_name", f"unknown joint {unknown[0]!r} (expected the "
                              f"names of core.joints, {J.JOINT_NAMES[0]} ...)")
        missing = [n for n in J.JOINT_NAMES if n not in names]
        if missing:
            raise TargetError("wrong_length", f"wrong length: expected all {J.NUM_JOINTS} "
                              f"joints, missing {missing}")
        q = np.empty(J.NUM_JOINTS)
        for name, value in zip(names, positions):
            value = float(value)
            if not math.isfinite(value):
                raise TargetError("non_finite", f"non-finite target {value} for joint {name}")
            q[J.joint_index(name)] = value
        return q

    def on_target(self, names, positions, now: float) -> str | None:
        """Accept a target; returns None, or the reason it was rejected (and counts it)."""
        try:
            q = self.validate(names, positions)
        except TargetError as exc:
            self.rejected[exc.kind] = self.rejected.get(exc.kind, 0) + 1
            return str(exc)
        self._target, self._target_t = q, now
        return None

    def on_joint_state(self, names, positions, now: float) -> None:
        try:
            q = self.validate(names, positions)
        except ValueError:
            return                      # an unusable state is a stale state
        self._measured, self._state_t = q, now
        if self.state == "WAITING":
            self.state = "OK"
            self._hold = q.copy()

    def on_servo_faults(self, faults: dict, now: float) -> None:
        """The servo driver's current faults, {joint: description} (empty: none)."""
        self.servo_faults = dict(faults)
        if self.servo_faults and self.on_servo_fault == "stop":
            what = ", ".join(f"{j} ({d})" for j, d in sorted(self.servo_faults.items()))
            self._trip(Trip("servo_fault", float(len(self.servo_faults)), 0.0, what))

    def on_tilt(self, tilt_rad: float, now: float) -> None:
        self._tilt = float(tilt_rad) if math.isfinite(tilt_rad) else math.inf

    def on_estop(self, active: bool, now: float) -> None:
        self._estop_active = bool(active)
        if active:
            self._trip(Trip("estop", 1.0, 0.0))
        else:
            self._heartbeat_t = now

    def reset(self, now: float) -> str | None:
        """Release a latched stop; returns None, or why it cannot be released yet."""
        if self.cause is None:
            return None if self.state != "WAITING" else "no joint state received yet"
        why = self._still_active(now)
        if why:
            return f"cannot reset {self.state}: {why}"
        if self._measured is None:
            return f"cannot reset {self.state}: no joint state received yet"
        self.cause = None
        self.state = "OK"
        self._hold = self._measured.copy()
        self._last_out = self._measured.copy()
        self._target = None             # a fresh target must come after the reset
        return None

    # --- the cycle -------------------------------------------------------------------------
    def update(self, now: float, judge_ages: bool = True) -> ShieldOutput:
        """One shield cycle at time ``now`` [s]. ``judge_ages=False`` skips the age checks
        (stale state, stale command, heartbeat) for this cycle: the node passes it when
        this cycle itself ran late, since a starved process cannot tell a silent sensor from
        messages still queued behind its own timer."""
        self._check(now, judge_ages)
        trips, self._pending = self._pending, []
        clamped: list[str] = []
        command = None
        if self.state == "OK":
            if self._target is None:
                command = self._hold.copy()
            else:
                goal = np.clip(self._target, self.limits.lower, self.limits.upper)
                clamped = [J.JOINT_NAMES[i] for i in np.flatnonzero(goal != self._target)]
                command = self._rate_limited(goal, now)
        elif self.state.startswith("FAULT") and self._hold is not None:
            command = self._hold.copy()
        if command is not None:
            self._last_out = command.copy()
        self._last_t = now
        return ShieldOutput(self.state, command, trips, clamped)

    def _rate_limited(self, goal, now):
        start = self._last_out if self._last_out is not None else self._measured
        dt = 0.0 if self._last_t is None else min(max(now - self._last_t, 0.0), 0.1)
        step = self.limits.max_rate_rad_s * dt
        return start + np.clip(goal - start, -step, step)

    def _check(self, now, judge_ages=True):
        if self.state == "WAITING":
            return
        lim = self.limits
        if not judge_ages:
            if self._tilt > lim.max_tilt_rad:
                self._trip(Trip("tilt", self._tilt, lim.max_tilt_rad))
            return
        # An e-stop can latch before the first joint state: there is no state age yet, and
        # nothing to hold (ESTOP commands nothing), so only the age checks need a state.
        if lim.state_timeout_s and self._state_t is not None \
                and now - self._state_t > lim.state_timeout_s:
            self._trip(Trip("stale_state", now - self._state_t, lim.state_timeout_s))
        if self._tilt > lim.max_tilt_rad:
            self._trip(Trip("tilt", self._tilt, lim.max_tilt_rad))
        if lim.heartbeat_timeout_s:
            since = now - (self._heartbeat_t if self._heartbeat_t is not None else -math.inf)
            if since > lim.heartbeat_timeout_s:
                self._trip(Trip("heartbeat", since, lim.heartbeat_timeout_s))
        if lim.command_timeout_s and self._target is not None \
                and now - self._target_t > lim.command_timeout_s:
            self._trip(Trip("stale_command", now - self._target_t, lim.command_timeout_s))

    def _still_active(self, now):
        lim = self.limits
        if self._estop_active:
            return "emergency_stop is still true"
        if self._state_t is None or (lim.state_timeout_s
                                     and now - self._state_t > lim.state_timeout_s):
            return "joint states are stale"
        if self._tilt > lim.max_tilt_rad:
            return f"tilt {self._tilt:.3f} rad is over the limit {lim.max_tilt_rad:.3f} rad"
        if self.servo_faults and self.on_servo_fault == "stop":
            return "servo fault still reported: " + ", ".join(
                f"{j} ({d})" for j, d in sorted(self.servo_faults.items()))
        if lim.heartbeat_timeout_s and (self._heartbeat_t is None or
                                        now - self._heartbeat_t > lim.heartbeat_timeout_s):
            return "no emergency_stop=false heartbeat"
        return None

    def _trip(self, trip: Trip):
        # Latched: only an e-stop overrides an earlier fault (then nothing is commanded at all).
        if self.cause is not None and not (trip.cause == "estop" and self.cause.cause != "estop"):
            return
        self.cause = trip
        self._pending.append(trip)
        if trip.cause in ("estop", "heartbeat"):
            self.state = "ESTOP"
        else:
            self.state = f"FAULT:{trip.cause}"
            if trip.cause == "stale_state" or self._measured is None:
                held = self._last_out if self._last_out is not None else self._measured
            else:
                held = self._measured
            # With no pose at all (nothing measured nor sent yet) a fault commands nothing.
            self._hold = None if held is None else held.copy()
