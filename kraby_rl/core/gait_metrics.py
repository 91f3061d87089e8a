"""Plausibility figures of a recorded gait (docs/sim-fidelity.md).

A gait whose feet slide, or whose joints run beyond the servo's torque-speed envelope, is a
simulator artefact, not a gait. ``gait_figures`` turns one episode's per-step records into
the figures ``kraby eval`` prints.

Slip and step frequency are figures of the legs the robot walks on. A limp leg (all its
servos torque-free) is not one: its foot hangs and is dragged where the body takes it, and
whatever it touches is neither stance nor a step, so ``gait_figures(..., legs=...)`` leaves
it out of both and reports how fast its foot was dragged as ``drag_mean`` instead.
"""

from __future__ import annotations

import math

import numpy as np

from kraby_rl.core.servo_model import envelope_excess

ENVELOPE_TOLERANCE = 0.02
"""Torque excess [N*m] below which a sample counts as inside the envelope (solver noise)."""


def touchdowns(contact: np.ndarray, min_swing_steps: int = 2) -> np.ndarray:
    """Touchdowns per leg: contact starts after at least ``min_swing_steps`` without contact.

    Args:
        contact: (T, L) bool foot contact per control step.

    Returns:
        (L,) int number of touchdowns; contact flicker shorter than ``min_swing_steps`` is
        not a step.
    """
    contact = np.asarray(contact, dtype=bool)
    T, L = contact.shape
    out = np.zeros(L, dtype=int)
    for leg in range(L):
        air = 0
        for k in range(T):
            if contact[k, leg]:
                if air >= min_swing_steps:
                    out[leg] += 1
                air = 0
            else:
                air += 1
    return out


def gait_figures(dt: float, base_pos: np.ndarray, yaw: np.ndarray, contact: np.ndarray,
                 slip: np.ndarray, w: np.ndarray, tau: np.ndarray, height: np.ndarray,
                 tilt: np.ndarray, stall_torque, no_load_speed,
                 w_tau: np.ndarray | None = None, legs: np.ndarray | None = None) -> dict:
    """Figures of one episode.

    Args:
        dt: control period [s].
        base_pos: (T, 3) body position in the world [m].
        yaw: (T,) body yaw [rad] (unwrapped here).
        contact: (T, 6) bool foot contact.
        slip: (T, 6) horizontal contact-point speed [m/s] (meaningful where in contact).
        w: (T, 18) joint speeds [rad/s]. tau: (T, 18) joint torques [N*m].
        height: (T,) body height [m]. tilt: (T,) body tilt from vertical [rad].
        stall_torque, no_load_speed: servo envelope [N*m], [rad/s]: scalars, or (18,)
            per servo (a randomised episode's servos are stronger or weaker: battery
            voltage moves the whole envelope, and each servo is checked against its own).
        w_tau: (T, 18) joint speeds at the start of the physics step in which each torque
            was applied [rad/s] (``w`` is the speed at its end); defaults to ``w``. Torques
            are checked at these speeds: the servo model bounds each step's torque by the
            envelope at the step's start speed (``core/servo_model``), so any excess is a
            fault of the model, not a discretisation effect.
        legs: (6,) bool, the legs the robot walks on (default all): slip, step frequency
            and duty factor are theirs; the others' feet give ``drag_mean``.

    Returns:
        dict of floats: duration_s, vx/vy (mean velocity in the initial heading frame) [m/s],
        yaw_rate [rad/s], heading_change_deg, slip_mean / slip_p95 in stance [m/s],
        step_freq_hz (mean over legs), duty_factor, drag_mean (mean contact-point speed of
        the other legs' feet on the ground, 0 without such legs) [m/s], joint_speed_peak /
        joint_speed_mean
        [rad/s], joint_speed_peak_ratio (of no-load speed), power_peak [W], envelope_violations
        (fraction of joint samples outside the envelope), envelope_excess_max [N*m],
        height_min / height_max [m], tilt_max_deg.
    """
    T = len(yaw)
    dur = T * dt
    yaw_u = np.unwrap(np.asarray(yaw, float))
    d = base_pos[-1, :2] - base_pos[0, :2]
    c, s = math.cos(yaw_u[0]), math.sin(yaw_u[0])
    contact = np.asarray(contact, dtype=bool)
    legs = np.ones(contact.shape[1], dtype=bool) if legs is None else np.asarray(legs, bool)
    stance = slip[:, legs][contact[:, legs]]
    dragged = slip[:, ~legs][contact[:, ~legs]]
    ex = envelope_excess(tau, w if w_tau is None else w_tau, stall_torque, no_load_speed)
    return {
        "duration_s": dur,
        "vx": float((c * d[0] + s * d[1]) / dur),
        "vy": float((-s * d[0] + c * d[1]) / dur),
        "yaw_rate": float((yaw_u[-1] - yaw_u[0]) / dur),
        "heading_change_deg": float(math.degrees(yaw_u[-1] - yaw_u[0])),
        "slip_mean": float(stance.mean()) if stance.size else 0.0,
        "slip_p95": float(np.percentile(stance, 95)) if stance.size else 0.0,
        "step_freq_hz": float(touchdowns(contact[:, legs]).mean() / dur) if legs.any() else 0.0,
        "duty_factor": float(np.mean(contact[:, legs])) if legs.any() else 0.0,
        "drag_mean": float(dragged.mean()) if dragged.size else 0.0,
        "joint_speed_peak": float(np.abs(w).max()),
        "joint_speed_mean": float(np.abs(w).mean()),
        "joint_speed_peak_ratio": float((np.abs(w) / no_load_speed).max()),
        "power_peak": float(np.abs(tau * w).max()),
        "envelope_violations": float(np.mean(ex > ENVELOPE_TOLERANCE)),
        "envelope_excess_max": float(ex.max()),
        "height_min": float(np.min(height)),
        "height_max": float(np.max(height)),
        "tilt_max_deg": float(math.degrees(np.max(tilt))),
    }
