"""Reward terms for the walking task: small named functions, weighted in the training config.

Each term returns a float; the env multiplies it by its weight and by the control period,
sums the results, and reports every weighted term in ``info["reward_terms"]`` so that a
training curve can be explained term by term. Positive terms are rewards, the others
penalties (their weights are negative in the config).
"""

from __future__ import annotations

import math

import numpy as np

from kraby_rl.core.joints import STANDING_HEIGHT


def lin_vel_tracking(v_body: np.ndarray, command: np.ndarray, sigma: float = 0.1) -> float:
    """exp(-|v_xy - cmd_xy|^2 / sigma^2): 1 when the planar body velocity [m/s] matches."""
    ex = v_body[0] - command[0]
    ey = v_body[1] - command[1]
    return math.exp(-(ex * ex + ey * ey) / (sigma * sigma))


def yaw_rate_tracking(w_body: np.ndarray, command: np.ndarray, sigma: float = 0.3) -> float:
    """exp(-(wz - cmd_wz)^2 / sigma^2): 1 when the yaw rate [rad/s] matches."""
    e = w_body[2] - command[2]
    return math.exp(-(e * e) / (sigma * sigma))


def vertical_motion(v_body: np.ndarray, w_body: np.ndarray) -> float:
    """vz^2 + 0.1 (wx^2 + wy^2): bouncing and rocking of the body."""
    return float(v_body[2] * v_body[2] + 0.1 * (w_body[0] * w_body[0] + w_body[1] * w_body[1]))


def tilt(gravity_body: np.ndarray) -> float:
    """gx^2 + gy^2 of the unit gravity vector in base_link: 0 when level."""
    return float(gravity_body[0] * gravity_body[0] + gravity_body[1] * gravity_body[1])


def height_error(z: float, target: float) -> float:
    """(z - target)^2 [m^2]: body height away from the standing height."""
    return float((z - target) ** 2)


def joint_power(tau: np.ndarray, w: np.ndarray) -> float:
    """Sum of |tau * w| over joints [W]: mechanical power spent."""
    return float(np.abs(tau * w).sum())


def action_rate(action: np.ndarray, last_action: np.ndarray) -> float:
    """Sum of squared action changes between control steps."""
    d = action - last_action
    return float(d @ d)


def action_magnitude(action: np.ndarray) -> float:
    """Mean squared action: keeps a residual policy close to its base gait."""
    return float(np.mean(np.square(action)))


def heading_error(yaw_error: float) -> float:
    """Squared heading error [rad^2]: body yaw minus the commanded yaw rate integrated
    since the episode began (privileged: penalises a steady drift the per-step yaw-rate
    kernel barely sees)."""
    e = math.remainder(yaw_error, 2 * math.pi)
    return e * e


def foot_slip(slip_speed: np.ndarray) -> float:
    """Sum of squared horizontal speeds of feet in contact [m^2/s^2] (privileged)."""
    return float(slip_speed @ slip_speed)


def alive() -> float:
    """1 per step while the episode goes on."""
    return 1.0


def fall(fell: bool) -> float:
    """1 on the step the robot falls."""
    return 1.0 if fell else 0.0


TERMS = ("lin_vel", "yaw_rate", "alive", "vertical_motion", "tilt", "height", "power",
         "action_rate", "action_magnitude", "heading", "foot_slip", "fall")
"""Names of the reward terms; each needs a weight in the env's ``reward_weights``."""

DEFAULT_WEIGHTS = {
    "lin_vel": 2.0, "yaw_rate": 1.0, "alive": 0.5, "vertical_motion": -2.0, "tilt": -2.0,
    "height": -200.0, "power": -0.02, "action_rate": -0.02, "action_magnitude": 0.0,
    "heading": 0.0,
    "foot_slip": -20.0, "fall": -50.0,
}
"""Default weights (per second of episode, except ``fall`` which is per event)."""


DEFAULT_SIGMA = {"lin_vel": 0.1, "yaw_rate": 0.3}
"""Default kernel widths of the tracking terms [m/s, rad/s]."""

PRIVILEGED = ("foot_slip", "heading")
"""Terms only a simulator can measure (a robot env leaves them out)."""


def resolve_weights(reward_weights: dict | None) -> dict:
    """``DEFAULT_WEIGHTS`` with the named overrides; ValueError naming an unknown term."""
    weights = dict(DEFAULT_WEIGHTS)
    for k, v in (reward_weights or {}).items():
        if k not in weights:
            raise ValueError(f"unknown reward term {k!r}: allowed {list(TERMS)}")
        weights[k] = float(v)
    return weights


def resolve_sigma(tracking_sigma: dict | None) -> dict:
    """``DEFAULT_SIGMA`` with the named overrides; ValueError naming a bad one."""
    sigma = dict(DEFAULT_SIGMA)
    for k, v in (tracking_sigma or {}).items():
        if k not in sigma or isinstance(v, bool) or not (isinstance(v, (int, float)) and v > 0):
            raise ValueError(f"tracking_sigma: expected {{lin_vel|yaw_rate: width > 0}}, "
                             f"found {k!r}: {v!r}")
        sigma[k] = float(v)
    return sigma


def weighted_terms(weights: dict, sigma: dict, dt: float, *, lin_vel_body, ang_vel_body,
                   command, gravity_body, action, last_action, fell: bool,
                   height: float | None = None, tau=None, joint_speed=None,
                   foot_slip_speed=None, heading_err: float | None = None) -> dict:
    """Each term times its weight (and ``dt`` [s], except ``fall``), the reward of one
    control step of the simulator and of the robot alike. A quantity given as None (the
    robot has no height, effort, foot slip or true heading) leaves its term out."""
    w = weights
    terms = {
        "lin_vel": w["lin_vel"] * lin_vel_tracking(lin_vel_body, command, sigma["lin_vel"]) * dt,
        "yaw_rate": w["yaw_rate"] * yaw_rate_tracking(ang_vel_body, command,
                                                      sigma["yaw_rate"]) * dt,
        "alive": w["alive"] * alive() * dt,
        "vertical_motion": w["vertical_motion"] * vertical_motion(lin_vel_body,
                                                                  ang_vel_body) * dt,
        "tilt": w["tilt"] * tilt(gravity_body) * dt,
    }
    if height is not None:
        terms["height"] = w["height"] * height_error(height, STANDING_HEIGHT) * dt
    if tau is not None and joint_speed is not None:
        terms["power"] = w["power"] * joint_power(tau, joint_speed) * dt
    terms["action_rate"] = w["action_rate"] * action_rate(action, last_action) * dt
    terms["action_magnitude"] = w["action_magnitude"] * action_magnitude(action) * dt
    if foot_slip_speed is not None:
        terms["foot_slip"] = w["foot_slip"] * foot_slip(foot_slip_speed) * dt
    terms["fall"] = w["fall"] * fall(fell)
    if heading_err is not None:
        terms["heading"] = w["heading"] * heading_error(heading_err) * dt
    return terms
