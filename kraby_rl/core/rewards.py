"""Reward terms for the walking task: small named functions, weighted in the training config.

Each term returns a float; the env multiplies it by its weight and by the control period,
sums the results, and reports every weighted term in ``info["reward_terms"]`` so that a
training curve can be explained term by term. Positive terms are rewards, the others
penalties (their weights are negative in the config).
"""

from __future__ import annotations

import math

import numpy as np


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
