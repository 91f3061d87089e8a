"""Leg odometry against PyBullet ground truth, and the URDF transforms against the kinematics."""

import math

import numpy as np
import pytest

from kraby_rl.core import joints as J
from kraby_rl.core import kinematics as K
from kraby_rl.core.estimation import (euler_from_quat, LegOdometry, quat_from_euler,
                                      quat_to_gravity)
from kraby_rl.core.contract import DEFAULT
from kraby_rl.core.urdf import joint_transform, parse_joints, urdf_text


@pytest.fixture(scope="module")
def world():
    from kraby_rl.sim.world import KrabyWorld
    w = KrabyWorld()
    yield w
    w.close()


def walk(world, command, seconds=4.0, imu=False):
    """Estimated and true (vx, vy, wz, height) averaged after 1 s of tripod walking."""
    gait, est = DEFAULT.tripod_gait(), LegOdometry()
    world.reset()
    got, true = [], []
    for k in range(int(seconds / 0.02)):
        world.command(gait.joint_targets(k * 0.02, command))
        world.step()
        s = world.state()
        e = est.update(s.t, s.q, *((s.base_quat, s.ang_vel_body) if imu else (None, None)))
        if s.t > 1.0:
            got.append([*e.lin_vel_body[:2], e.ang_vel_body[2], e.position[2]])
            true.append([*s.lin_vel_body[:2], s.ang_vel_body[2], s.base_pos[2]])
    return np.mean(got, axis=0), np.mean(true, axis=0), e, s


@pytest.mark.parametrize("command,axis", [((0.1, 0.0, 0.0), 0), ((0.0, 0.08, 0.0), 1),
                                          ((0.0, 0.0, 0.4), 2)])
def test_leg_odometry_follows_the_true_body_velocity(world, command, axis):
    got, true, e, s = walk(world, command)
    assert abs(true[axis]) > 0.5 * abs(command[axis])        # the robot really moves
    assert got[axis] == pytest.approx(true[axis], rel=0.10)
    others = [i for i in range(3) if i != axis]
    assert np.all(np.abs(got[others]) < 0.01)
    assert got[3] == pytest.approx(true[3], abs=0.003)       # height [m]
    assert 3 <= e.stance.sum() <= 6


def test_orientation_without_imu_comes_from_the_stance_feet(world):
    _, _, e, s = walk(world, (0.0, 0.0, 0.4), seconds=3.0)
    roll, pitch, yaw = euler_from_quat(e.orientation)
    t_roll, t_pitch, t_yaw = euler_from_quat(s.base_quat)
    assert abs(roll - t_roll) < math.radians(1) and abs(pitch - t_pitch) < math.radians(1)
    assert abs(math.remainder(yaw - t_yaw, 2 * math.pi)) < 0.1 * abs(t_yaw)


def test_with_an_imu_the_orientation_and_gyro_are_the_imus(world):
    _, true, e, s = walk(world, (0.1, 0.0, 0.3), seconds=2.0, imu=True)
    assert np.allclose(e.ang_vel_body, s.ang_vel_body)
    assert e.imu
    # yaw is relative to the first reading, roll and pitch are the IMU's
    r, p, _ = euler_from_quat(e.orientation)
    tr, tp, _ = euler_from_quat(s.base_quat)
    assert (r, p) == pytest.approx((tr, tp), abs=1e-9)


def test_a_tilted_stance_gives_roll_and_pitch():
    est = LegOdometry()
    feet = K.DEFAULT_FEET.copy()
    # lift the left feet (robot tilted: left side down relative to the feet plane)
    roll, pitch = 0.1, -0.05
    from kraby_rl.core.estimation import rot_rp
    R = rot_rp(roll, pitch)
    feet_b = (R.T @ (feet * [1, 1, 1]).T).T       # level ground seen from a tilted body
    e = est.update(0.0, K.leg_inverse(feet_b))
    r, p, _ = euler_from_quat(e.orientation)
    assert (r, p) == pytest.approx((roll, pitch), abs=2e-3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="joint angles: expected 18 finite"):
        LegOdometry().update(0.0, [0.0] * 17)
    with pytest.raises(ValueError, match="stance_margin_m must be > 0"):
        LegOdometry(stance_margin_m=0)
    with pytest.raises(ValueError, match="non-zero quaternion"):
        quat_to_gravity((0, 0, 0, 0))


def test_quaternion_helpers_agree():
    q = quat_from_euler(0.1, -0.2, 2.0)
    assert euler_from_quat(q) == pytest.approx((0.1, -0.2, 2.0))
    g = quat_to_gravity(quat_from_euler(0.0, 0.3, 1.0))     # pitched nose down
    assert g == pytest.approx([math.sin(0.3), 0.0, -math.cos(0.3)])


def _matrix(xyz, q):
    x, y, z, w = q
    T = np.eye(4)
    T[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                 [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                 [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    T[:3, 3] = xyz
    return T


def test_urdf_transforms_chain_to_the_kinematics_feet():
    joints = {j.child: j for j in parse_joints(urdf_text())}
    q = J.DEFAULT_POSE + np.linspace(-0.3, 0.3, 18)
    angle = dict(zip(J.JOINT_NAMES, q))
    for k, leg in enumerate(J.LEG_PREFIXES):
        link, T = f"{leg}_foot", np.eye(4)
        while link in joints:
            j = joints[link]
            T = _matrix(*joint_transform(j, angle.get(j.name, 0.0))) @ T
            link = j.parent
        assert link == "base_link"
        assert T[:3, 3] == pytest.approx(K.foot_positions(q)[k], abs=1e-6)


def test_a_broken_urdf_is_named():
    with pytest.raises(ValueError, match="not valid XML"):
        parse_joints("<robot>")
    with pytest.raises(ValueError, match="URDF joint 'j1'"):
        parse_joints('<robot><joint name="j1" type="fixed"><child link="a"/></joint></robot>')


def test_orientation_helpers_agree_with_each_other():
    import math

    from kraby_rl.core import geometry as G
    rng = np.random.default_rng(3)
    for _ in range(200):
        roll, pitch, yaw = rng.uniform(-1.2, 1.2), rng.uniform(-1.2, 1.2), rng.uniform(-3, 3)
        q = G.quat_from_euler(roll, pitch, yaw)
        assert G.yaw_from_quat(q) == pytest.approx(yaw, abs=1e-9)
        tilt = math.acos(math.cos(roll) * math.cos(pitch))
        assert G.tilt_from_quat(q) == pytest.approx(tilt, abs=1e-7)
        assert G.tilt_from_gravity(G.quat_to_gravity(q)) == pytest.approx(tilt, abs=1e-7)
        assert G.tilt_from_quat(2.0 * q) == pytest.approx(tilt, abs=1e-7)   # not unit
    assert G.tilt_from_quat((0.0, 0.0, 0.0, 0.0)) == math.inf
    assert G.is_unset((0.0, 0.0, 0.0, 0.0)) and not G.is_unset((0.0, 0.0, 0.0, 1.0))


def test_one_fall_test_for_the_env_and_the_stack():
    from kraby_rl.core import geometry as G
    level = G.quat_to_gravity((0.0, 0.0, 0.0, 1.0))
    tipped = G.quat_to_gravity(G.quat_from_euler(1.1, 0.0, 0.0))
    leaning = G.quat_to_gravity(G.quat_from_euler(0.9, 0.0, 0.0))
    assert not G.fallen(0.14, level, False)
    assert G.fallen(0.06, level, False)                  # below FALL_HEIGHT_M
    assert G.fallen(0.14, tipped, False) and not G.fallen(0.14, leaning, False)
    assert G.fallen(0.14, level, True)                   # the body touches the ground
    assert not G.fallen(0.06, level, False, fall_height_m=0.05)


def _pairs(events, timeout=0.1):
    from kraby_rl.core.estimation import ImuPairing
    pairing, out = ImuPairing(timeout), []
    for kind, t in events:
        out += (pairing.add_imu(t, f"imu{t:.2f}") if kind == "imu"
                else pairing.add_joints(t, f"q{t:.2f}"))
    return out


def test_imu_pairing_does_not_depend_on_which_topic_is_read_first():
    """joint_states and imu/data stamped alike pair alike in any arrival order (a replay's
    executor may read them in another order than the live one did)."""
    ts = [round(0.02 * k, 2) for k in range(50)]
    joints_first = [(k, t) for t in ts for k in ("joints", "imu")]
    imu_first = [(k, t) for t in ts for k in ("imu", "joints")]
    rng = np.random.default_rng(0)
    mixed = [(k, t) for t in ts for k in rng.permutation(["joints", "imu"])]
    want = [(t, f"q{t:.2f}", f"imu{t:.2f}") for t in ts]
    for events in (joints_first, imu_first, mixed):
        got = _pairs(events)
        assert got[:-1] == want[:-1] and len(got) >= len(ts) - 1


def test_imu_pairing_picks_the_nearest_sample_and_none_when_it_is_too_old():
    got = _pairs([("imu", 0.0), ("imu", 0.01), ("joints", 0.012), ("imu", 0.02),
                  ("joints", 0.3), ("joints", 0.32)])
    assert got[0] == (0.012, "q0.01", "imu0.01")
    # the IMU fell silent: 0.3 s is past its timeout, released at once and without it
    assert got[1] == (0.3, "q0.30", None) and got[2] == (0.32, "q0.32", None)


def test_imu_pairing_without_an_imu_waits_at_most_one_period_then_not_at_all():
    got = _pairs([("joints", 0.02 * k) for k in range(10)])
    released_after = [len(_pairs([("joints", 0.02 * j) for j in range(k + 1)]))
                      for k in range(10)]
    assert [g[2] for g in got] == [None] * len(got)
    # waits for the next joint_states while an IMU may still come, then releases each one
    assert released_after == [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]
    with pytest.raises(ValueError, match="imu timeout: expected a positive time"):
        _pairs([], timeout=0)
