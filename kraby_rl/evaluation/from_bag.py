"""``kraby eval --from-bag BAG``: the gait figures of a recorded run (the real robot's, or
any stack's), so that a run on the robot is judged like a simulated one.

What a recording has is what the robot knows: ``joint_states`` (positions, velocities, and
efforts when the driver reads them: ``read_effort``) and ``imu/data``. The body's motion is
the state estimator's leg odometry over them (``core.estimation.LegOdometry``, the IMU's
orientation when a sample is fresh), so the figures are:

- velocity and heading change: from the leg odometry;
- foot contact: the estimator's stance feet (the lowest, within its margin);
- slip: the horizontal speed, in ``odom``, of each foot while in stance at both ends of a
  sample interval (feet placed by forward kinematics from the estimated body pose);
- step frequency, duty factor, joint speeds; body height (estimated) and tilt (IMU);
- the torque-speed envelope and power only when efforts were recorded (else None).

A simulator's ground truth is not in a robot's bag; on a recorded sim run the figures can be
compared to it (``test/test_bag.py``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.core import joints as J
from kraby_rl.core import kinematics as K
from kraby_rl.core.estimation import LegOdometry, rot_rp
from kraby_rl.core.gait_metrics import gait_figures

IMU_TIMEOUT_S = 0.1


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def read_streams(path: str, joint_topic="/joint_states", imu_topic="/imu/data"):
    """[(receive time [s], msg)] of joint_states and imu/data, and the mean cmd_vel.

    Raises:
        ValueError: naming the bag and the topics it has, when joint_states is missing.
    """
    from rosbags.highlevel import AnyReader
    joints, imu, cmd = [], [], []
    with AnyReader([Path(path)]) as reader:
        topics = {c.topic for c in reader.connections}
        if joint_topic not in topics:
            raise ValueError(f"bag {path!r}: expected a {joint_topic} topic "
                             f"(sensor_msgs/msg/JointState), found {sorted(topics)}")
        conns = [c for c in reader.connections
                 if c.topic in (joint_topic, imu_topic, "/cmd_vel")]
        for conn, stamp, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            item = (stamp * 1e-9, msg)
            {joint_topic: joints, imu_topic: imu, "/cmd_vel": cmd}[conn.topic].append(item)
    return joints, imu, cmd


def _ordered(msg, what):
    """A JointState's (position, velocity, effort) in JOINT_NAMES order."""
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in J.JOINT_NAMES if n not in index]
    if missing:
        raise ValueError(f"{what}: joint_states lacks {missing}")
    order = [index[n] for n in J.JOINT_NAMES]
    out = []
    for field in (msg.position, msg.velocity, msg.effort):
        arr = np.asarray(field, float)
        out.append(arr[order] if len(arr) == len(msg.name) else None)
    return out


def figures_from_bag(path: str, stall_torque=None, no_load_speed=None) -> dict:
    """Gait figures of a recording (``gait_metrics.gait_figures``'s keys, plus 'samples',
    'effort' (whether efforts were recorded) and 'command' (mean cmd_vel or None))."""
    from kraby_rl.core.servo_model import ServoParams
    params = ServoParams()
    stall = params.stall_torque if stall_torque is None else stall_torque
    w0 = params.no_load_speed if no_load_speed is None else no_load_speed
    joints, imus, cmds = read_streams(path)
    if len(joints) < 10:
        raise ValueError(f"bag {path!r}: expected at least 10 joint_states, found {len(joints)}")
    est = LegOdometry()
    t, pos, yaw, stance, w, tau, height, tilt, feet_w = ([] for _ in range(9))
    k, imu = 0, None
    have_effort, lost = True, 0
    for received, msg in joints:
        while k < len(imus) and imus[k][0] <= received:
            imu = imus[k]
            k += 1
        fresh = imu if imu is not None and received - imu[0] < IMU_TIMEOUT_S else None
        q, v, e = _ordered(msg, f"bag {path!r}")
        if not np.all(np.isfinite(q)):
            lost += 1       # a servo the driver could not read (NaN): the estimator skips it
            continue
        quat = gyro = None
        if fresh is not None:
            o, g = fresh[1].orientation, fresh[1].angular_velocity
            quat, gyro = (o.x, o.y, o.z, o.w), (g.x, g.y, g.z)
        s = est.update(_stamp(msg), q, quat, gyro)
        roll, pitch, yw = G.euler_from_quat(s.orientation)
        t.append(s.t)
        pos.append(s.position)
        yaw.append(yw)
        stance.append(s.stance)
        w.append(v if v is not None else np.zeros(J.NUM_JOINTS))
        have_effort &= e is not None
        tau.append(e if e is not None else np.zeros(J.NUM_JOINTS))
        height.append(s.position[2])
        tilt.append(math.acos(max(-1.0, min(1.0, math.cos(roll) * math.cos(pitch)))))
        cy, sy = math.cos(yw), math.sin(yw)
        rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
        feet_w.append((rz @ rot_rp(roll, pitch) @ K.foot_positions(q).T).T + s.position)
    if len(t) < 10:
        raise ValueError(f"bag {path!r}: expected at least 10 joint_states with 18 finite "
                         f"positions, found {len(t)} ({lost} with a servo not read)")
    t, feet_w, contact = np.array(t), np.array(feet_w), np.array(stance)
    dt = float(np.median(np.diff(t)))
    step = np.diff(feet_w[:, :, :2], axis=0)
    gaps = np.diff(t)[:, None]
    speed = np.linalg.norm(step, axis=2) / np.where(gaps > 0, gaps, np.inf)
    slip = np.vstack([np.zeros((1, J.NUM_LEGS)), speed])
    both = contact.copy()
    both[1:] &= contact[:-1]
    slip = np.where(both, slip, 0.0)
    fig = gait_figures(dt, np.array(pos), np.array(yaw), both, slip, np.array(w),
                       np.array(tau), np.array(height), np.array(tilt), stall, w0)
    fig["duty_factor"] = float(np.mean(contact))
    fig["duration_s"] = float(t[-1] - t[0])
    if not have_effort:
        for key in ("power_peak", "envelope_violations", "envelope_excess_max"):
            fig[key] = None
    fig["samples"] = len(t)
    fig["lost_readings"] = lost
    fig["effort"] = have_effort
    fig["command"] = None if not cmds else [
        float(np.mean([c.linear.x for _t, c in cmds])),
        float(np.mean([c.linear.y for _t, c in cmds])),
        float(np.mean([c.angular.z for _t, c in cmds]))]
    return fig


def report_line(path: str, fig: dict) -> str:
    env = ("no efforts recorded: envelope not checked" if fig["envelope_violations"] is None
           else f"envelope viol. {100 * fig['envelope_violations']:.2f} %")
    lost = (f" ({fig['lost_readings']} left out: a servo not read)"
            if fig.get("lost_readings") else "")
    return (f"bag {path}: {fig['samples']} joint states{lost} over {fig['duration_s']:.1f} s: "
            f"({fig['vx']:+.3f} m/s, {fig['vy']:+.3f} m/s, {fig['yaw_rate']:+.3f} rad/s) "
            f"by leg odometry; slip in stance {fig['slip_mean']:.3f} m/s, steps "
            f"{fig['step_freq_hz']:.2f} Hz, duty factor {fig['duty_factor']:.2f}, peak |w| "
            f"{fig['joint_speed_peak']:.2f} rad/s, height {fig['height_min']:.3f}-"
            f"{fig['height_max']:.3f} m, tilt max {fig['tilt_max_deg']:.1f} deg; {env}")
