"""The PyBullet world: one Kraby on flat ground, driven through the DRS-0101 servo model.

One ``KrabyWorld`` owns one PyBullet client (DIRECT by default, GUI on request), so several
worlds can live in one process. All arrays are in the canonical joint order
(``core.joints.JOINT_NAMES``) and SI units; world frame z up.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import pybullet as pb

from kraby_rl.core import joints as J
from kraby_rl.core.servo_model import ServoBank, ServoParams
from kraby_rl.core.urdf import find_urdf
from kraby_rl.sim.faults import FaultSpec
from kraby_rl.sim.terrain import Terrain, TerrainSpec


@dataclass
class RobotState:
    """What the world knows after a control step (ground truth).

    Attributes:
        t: simulated time since reset [s].
        base_pos: (3,) base_link origin in the world [m].
        base_quat: (4,) base_link orientation, quaternion x, y, z, w.
        rot: (3, 3) rotation matrix base_link -> world.
        lin_vel_body: (3,) base linear velocity in base_link [m/s].
        ang_vel_body: (3,) base angular velocity in base_link [rad/s].
        gravity_body: (3,) unit gravity direction in base_link.
        q: (18,) joint angles [rad]. w: (18,) joint speeds [rad/s].
        tau: (18,) motor torques applied in the last physics step [N*m].
        w_tau: (18,) joint speeds at which ``tau`` was computed (start of that step) [rad/s];
            pair ``tau`` with these, not with ``w``, to check the torque-speed envelope.
        foot_contact: (6,) bool, foot touching the ground.
        foot_slip: (6,) horizontal speed of each foot's contact point [m/s] (0 in swing).
        foot_pos: (6, 3) foot centres in the world [m].
        body_contact: True if the body, a coxa or a femur touches anything, or a shin the
            ground plane (a shin against an obstacle is part of climbing).
        ground_z: terrain height under the body's origin [m] (0 on the bare plane); the
            body's height above it is ``height``.
    """

    t: float
    base_pos: np.ndarray
    base_quat: np.ndarray
    rot: np.ndarray
    lin_vel_body: np.ndarray
    ang_vel_body: np.ndarray
    gravity_body: np.ndarray
    q: np.ndarray
    w: np.ndarray
    tau: np.ndarray
    w_tau: np.ndarray
    foot_contact: np.ndarray
    foot_slip: np.ndarray
    foot_pos: np.ndarray
    body_contact: bool
    ground_z: float = 0.0

    @property
    def height(self) -> float:
        """Body height above the ground under it [m]."""
        return float(self.base_pos[2] - self.ground_z)


def quat_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """(3, 3) rotation matrix of a unit quaternion (x, y, z, w)."""
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


class KrabyWorld:
    """PyBullet simulation of Kraby with the servo model in the loop.

    Args:
        physics_dt: physics step [s].
        substeps: physics steps per control step (control period = physics_dt x substeps).
        servo: servo model parameters.
        latency_steps: command latency in control steps (0 = applied at once).
        fixed_base: hang the body in the air (for single-leg tasks).
        friction: foot lateral friction coefficient (against a ground of 1.0).
        gui: open the PyBullet GUI instead of DIRECT.
    """

    def __init__(self, physics_dt: float = 0.004, substeps: int = 5,
                 servo: ServoParams | None = None, latency_steps: int = 0,
                 fixed_base: bool = False, friction: float = 0.8, gui: bool = False):
        if not physics_dt > 0:
            raise ValueError(f"physics_dt must be > 0 s, found {physics_dt!r}")
        if int(substeps) != substeps or substeps < 1:
            raise ValueError(f"substeps must be a whole number >= 1, found {substeps!r}")
        if int(latency_steps) != latency_steps or latency_steps < 0:
            raise ValueError(f"latency_steps must be a whole number >= 0, found {latency_steps!r}")
        self.physics_dt = float(physics_dt)
        self.substeps = int(substeps)
        self.control_dt = self.physics_dt * self.substeps
        self.latency_steps = int(latency_steps)
        self.fixed_base = fixed_base
        self.cid = pb.connect(pb.GUI if gui else pb.DIRECT)
        c = self.cid
        pb.setGravity(0, 0, -9.81, physicsClientId=c)
        pb.setTimeStep(self.physics_dt, physicsClientId=c)
        pb.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=c)
        plane_shape = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=c)
        self.plane = pb.createMultiBody(0, plane_shape, physicsClientId=c)
        self.base_height = J.STANDING_HEIGHT + 0.002
        start = [0, 0, 0.30 if fixed_base else self.base_height]
        self.robot = pb.loadURDF(find_urdf("sim"), start, useFixedBase=fixed_base,
                                 flags=pb.URDF_USE_INERTIA_FROM_FILE, physicsClientId=c)
        by_name = {}
        link_by_name = {}
        for i in range(pb.getNumJoints(self.robot, physicsClientId=c)):
            info = pb.getJointInfo(self.robot, i, physicsClientId=c)
            by_name[info[1].decode()] = i
            link_by_name[info[12].decode()] = i
        self.jidx = [by_name[n] for n in J.JOINT_NAMES]
        self.feet = [link_by_name[f"{p}_foot"] for p in J.LEG_PREFIXES]
        self._foot_slot = {li: k for k, li in enumerate(self.feet)}
        self._shins = {link_by_name[f"{p}_tibia_link"] for p in J.LEG_PREFIXES}
        # Disable PyBullet's default joint motors; the servo model drives the joints.
        pb.setJointMotorControlArray(self.robot, self.jidx, pb.VELOCITY_CONTROL,
                                     forces=[0.0] * J.NUM_JOINTS, physicsClientId=c)
        pb.changeDynamics(self.plane, -1, lateralFriction=1.0, physicsClientId=c)
        n_links = pb.getNumJoints(self.robot, physicsClientId=c)
        info = {i: pb.getDynamicsInfo(self.robot, i, physicsClientId=c)
                for i in range(-1, n_links)}
        self.nominal_masses = {i: d[0] for i, d in info.items()}
        self.nominal_inertia = {i: d[2] for i, d in info.items()}
        self.set_friction(friction)
        self.servo = ServoBank(J.NUM_JOINTS, servo)
        self._queue: deque = deque()
        self.t = 0.0
        self._w_tau = np.zeros(J.NUM_JOINTS)
        self._tau = np.zeros(J.NUM_JOINTS)
        self.terrain = None
        self.faults = FaultSpec()
        self._payload = self._payload_joint = None
        self._shapes = {}       # collision shapes kept for reuse (Terrain: the heightfield)
        self._saved = pb.saveState(physicsClientId=c)

    # --- configuration -------------------------------------------------------------------
    def set_friction(self, mu: float) -> None:
        """Foot lateral friction; rolling and spinning friction stay 0 (no stance chatter)."""
        if not mu > 0:
            raise ValueError(f"friction must be > 0, found {mu!r}")
        for f in self.feet:
            pb.changeDynamics(self.robot, f, lateralFriction=float(mu), rollingFriction=0.0,
                              spinningFriction=0.0, physicsClientId=self.cid)
        self.friction = float(mu)

    def set_mass_scale(self, scales: dict) -> None:
        """Scale link masses: ``{link_index: factor}`` (-1 = base), relative to the URDF.

        The inertia stays the URDF's: PyBullet recomputes it from the collision shape when
        only the mass changes, which would drop the gearbox's reflected rotor inertia (the
        larger part of each leg link's, and what keeps the explicit servo torque stable)."""
        for link, s in scales.items():
            pb.changeDynamics(self.robot, link, mass=self.nominal_masses[link] * float(s),
                              localInertiaDiagonal=self.nominal_inertia[link],
                              physicsClientId=self.cid)

    def push(self, dv) -> None:
        """Add ``dv`` (3,) [m/s] to the body's linear velocity (a shove)."""
        lin, ang = pb.getBaseVelocity(self.robot, physicsClientId=self.cid)
        pb.resetBaseVelocity(self.robot, [lin[i] + float(dv[i]) for i in range(3)], ang,
                             physicsClientId=self.cid)

    # --- episode -------------------------------------------------------------------------
    def reset(self, q0: np.ndarray | None = None, base_xy=(0.0, 0.0), base_yaw: float = 0.0,
              base_height: float | None = None, terrain: TerrainSpec | None = None,
              faults: FaultSpec | None = None) -> RobotState:
        """Put the robot at rest in pose ``q0`` [rad] (default stance), feet on the ground
        (of ``terrain``, built anew: None or flat is the bare plane), with ``faults`` (None:
        every servo healthy, no payload)."""
        c = self.cid
        if self.terrain is not None:       # the saved state knows only the plane and robot
            self.terrain.remove()
            self.terrain = None
        if self._payload is not None:
            pb.removeConstraint(self._payload_joint, physicsClientId=c)
            pb.removeBody(self._payload, physicsClientId=c)
            self._payload = self._payload_joint = None
        pb.restoreState(self._saved, physicsClientId=c)
        if terrain is not None and terrain.kind != "flat":
            self.terrain = Terrain(c, terrain, self._shapes)
        q0 = J.DEFAULT_POSE if q0 is None else np.asarray(q0, dtype=float)
        z = 0.30 if self.fixed_base else (self.base_height if base_height is None else base_height)
        z += self.ground_height(base_xy[0], base_xy[1])
        orn = pb.getQuaternionFromEuler([0, 0, base_yaw])
        pb.resetBasePositionAndOrientation(self.robot, [base_xy[0], base_xy[1], z], orn,
                                           physicsClientId=c)
        pb.resetBaseVelocity(self.robot, [0, 0, 0], [0, 0, 0], physicsClientId=c)
        for k, j in enumerate(self.jidx):
            pb.resetJointState(self.robot, j, float(q0[k]), 0.0, physicsClientId=c)
        self.t = 0.0
        self.servo.reset(q0, 0.0)
        self.faults = faults or FaultSpec()
        limp, stuck, weak = self.faults.masks()
        self.servo.enabled = ~limp
        self.servo.stuck = stuck
        self.servo.weak = weak
        if self.faults.payload_kg > 0:
            self._add_payload(self.faults.payload_kg, self.faults.payload_xy)
        self._queue.clear()
        self._w_tau = np.zeros(J.NUM_JOINTS)
        self._tau = np.zeros(J.NUM_JOINTS)
        return self.state()

    PAYLOAD_HALF_M = (0.03, 0.03, 0.015)
    PAYLOAD_Z_M = 0.04
    """Payload box half-size and its centre's height above base_link [m]."""

    def _add_payload(self, mass: float, xy) -> None:
        """A box of ``mass`` [kg] fixed on top of the body at ``xy`` (base_link) [m]."""
        c, r = self.cid, self.robot
        offset = [float(xy[0]), float(xy[1]), self.PAYLOAD_Z_M]
        pos, orn = pb.getBasePositionAndOrientation(r, physicsClientId=c)
        at, _ = pb.multiplyTransforms(pos, orn, offset, [0, 0, 0, 1])
        shape = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=list(self.PAYLOAD_HALF_M),
                                        physicsClientId=c)
        body = pb.createMultiBody(mass, shape, basePosition=at, baseOrientation=orn,
                                  physicsClientId=c)
        pb.setCollisionFilterPair(body, r, -1, -1, 0, physicsClientId=c)
        joint = pb.createConstraint(r, -1, body, -1, pb.JOINT_FIXED, [0, 0, 0], offset,
                                    [0, 0, 0], physicsClientId=c)
        self._payload, self._payload_joint = body, joint

    def command(self, q_goal: np.ndarray) -> None:
        """Send new servo goals [rad] (18,); they reach the servos after the latency."""
        self._queue.append(np.asarray(q_goal, dtype=float))
        while len(self._queue) > self.latency_steps:
            self.servo.set_goal(self._queue.popleft(), self.t)

    def step(self) -> None:
        """Advance one control period (``substeps`` physics steps)."""
        for _ in range(self.substeps):
            self.substep()

    def substep(self) -> None:
        """One physics step: read joints, run the servo model, apply, integrate."""
        c, r = self.cid, self.robot
        js = pb.getJointStates(r, self.jidx, physicsClientId=c)
        q = np.array([s[0] for s in js])
        w = np.array([s[1] for s in js])
        tau = self.servo.torque(q, w, self.t)
        pb.setJointMotorControlArray(r, self.jidx, pb.TORQUE_CONTROL, forces=tau,
                                     physicsClientId=c)
        pb.stepSimulation(physicsClientId=c)
        self._w_tau = w
        self._tau = tau
        self.t += self.physics_dt

    # --- sensing -------------------------------------------------------------------------
    def ground_height(self, x: float, y: float) -> float:
        """Terrain height [m] at world (x, y) (0 on the bare plane)."""
        return 0.0 if self.terrain is None else self.terrain.height(x, y)

    def joint_states(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q [rad], w [rad/s], tau [N*m]) of the 18 joints, now."""
        js = pb.getJointStates(self.robot, self.jidx, physicsClientId=self.cid)
        # the torques the servo model applied in the last physics step (PyBullet reports
        # none for TORQUE_CONTROL)
        return (np.array([s[0] for s in js]), np.array([s[1] for s in js]),
                self._tau.copy())

    def state(self) -> RobotState:
        """Ground-truth state after the last step."""
        c, r = self.cid, self.robot
        q, w, tau = self.joint_states()
        pos, quat = pb.getBasePositionAndOrientation(r, physicsClientId=c)
        lin, ang = pb.getBaseVelocity(r, physicsClientId=c)
        R = quat_to_matrix(*quat)
        contact = np.zeros(6, dtype=bool)
        slip = np.zeros(6)
        body_contact = False
        links = pb.getLinkStates(r, self.feet, computeLinkVelocity=1, physicsClientId=c)
        foot_pos = np.array([s[0] for s in links])
        for cp in pb.getContactPoints(bodyA=r, physicsClientId=c):
            if cp[2] == r:                  # the robot touching itself
                continue
            k = self._foot_slot.get(cp[3])
            if k is None:
                # a shin against an obstacle is part of climbing; on the plane it is a fall
                if cp[3] not in self._shins or cp[2] == self.plane:
                    body_contact = True
                continue
            if cp[9] <= 0.0:
                continue
            contact[k] = True
            # velocity of the contact point: v_foot + omega x (p_contact - p_foot)
            ls = links[k]
            (vx, vy, _), (ox, oy, oz) = ls[6], ls[7]
            rx, ry, rz = (cp[5][i] - ls[0][i] for i in range(3))
            slip[k] = max(slip[k], math.hypot(vx + oy * rz - oz * ry, vy + oz * rx - ox * rz))
        return RobotState(
            t=self.t, base_pos=np.array(pos), base_quat=np.array(quat), rot=R,
            lin_vel_body=R.T @ np.array(lin), ang_vel_body=R.T @ np.array(ang),
            gravity_body=-R[2, :].copy(), q=q, w=w, tau=tau, w_tau=self._w_tau.copy(),
            foot_contact=contact,
            foot_slip=slip, foot_pos=foot_pos, body_contact=body_contact,
            ground_z=self.ground_height(pos[0], pos[1]))

    def render(self, width: int = 320, height: int = 240) -> np.ndarray:
        """(height, width, 3) uint8 image from a camera following the body (no display)."""
        c = self.cid
        pos, _ = pb.getBasePositionAndOrientation(self.robot, physicsClientId=c)
        view = pb.computeViewMatrixFromYawPitchRoll(pos, 0.7, 30, -25, 0, 2,
                                                    physicsClientId=c)
        proj = pb.computeProjectionMatrixFOV(60, width / height, 0.01, 10, physicsClientId=c)
        img = pb.getCameraImage(width, height, view, proj, renderer=pb.ER_TINY_RENDERER,
                                physicsClientId=c)
        rgba = np.reshape(np.asarray(img[2], dtype=np.uint8), (height, width, 4))
        return rgba[:, :, :3].copy()

    def close(self) -> None:
        """Disconnect the PyBullet client (idempotent)."""
        if self.cid is not None:
            try:
                pb.disconnect(physicsClientId=self.cid)
            except pb.error:
                pass
            self.cid = None
