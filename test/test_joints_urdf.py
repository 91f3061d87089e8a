"""The joint table, the URDF and the kinematics agree."""

import math
import os
import xml.etree.ElementTree as ET

import numpy as np
import pybullet as pb
import pytest

from kraby_rl.core import joints as J
from kraby_rl.core import kinematics as K
from kraby_rl.core.urdf import urdf_text

ROOT = os.path.join(os.path.dirname(__file__), "..")
URDF = os.path.join(ROOT, "urdf", "kraby.urdf")
SIM_URDF = os.path.join(ROOT, "urdf", "kraby_sim.urdf")


@pytest.mark.parametrize("variant,path", [("ros", URDF), ("sim", SIM_URDF)])
def test_committed_urdf_is_generated_from_table(variant, path):
    with open(path) as fh:
        assert fh.read() == urdf_text(variant), \
            f"run: python -m kraby_rl.core.urdf {variant} > {os.path.relpath(path, ROOT)}"


def test_urdf_is_valid_for_ros_tools():
    """urdfdom knows no capsule; KDL (robot_state_publisher) wants an inertia-free root."""
    for path in (URDF, SIM_URDF):
        root = ET.parse(path).getroot()
        shapes = {el.tag for el in root.iter() if el.tag in
                  ("box", "cylinder", "sphere", "mesh", "capsule")}
        assert shapes <= {"box", "cylinder", "sphere"}, f"{path}: {shapes}"
    ros = ET.parse(URDF).getroot()
    children = {j.find("child").get("link") for j in ros.iter("joint")}
    roots = [link for link in ros.findall("link") if link.get("name") not in children]
    assert [r.get("name") for r in roots] == ["base_link"]
    assert roots[0].find("inertial") is None


def test_both_variants_carry_the_same_mass():
    def mass(path):
        return sum(float(m.get("value")) for m in ET.parse(path).getroot().iter("mass"))
    assert mass(URDF) == pytest.approx(mass(SIM_URDF)) == pytest.approx(1.64, abs=0.01)


def test_urdf_joints_match_table():
    root = ET.parse(URDF).getroot()
    revolute = {j.get("name"): j for j in root.findall("joint") if j.get("type") == "revolute"}
    assert sorted(revolute) == sorted(J.JOINT_NAMES)
    for row in J.JOINTS:
        lim = revolute[row.name].find("limit")
        assert float(lim.get("lower")) == pytest.approx(row.lower)
        assert float(lim.get("upper")) == pytest.approx(row.upper)
        assert float(lim.get("velocity")) == pytest.approx(6.31)
        assert float(lim.get("effort")) == pytest.approx(1.18)
    for link in root.findall("link"):
        for col in link.findall("collision"):
            assert col.find("geometry/mesh") is None, f"{link.get('name')} uses a mesh collision"


def test_table_facts():
    assert J.JOINT_NAMES[:3] == ("lf_coxa", "lf_femur", "lf_tibia")
    assert [j.servo_id for j in J.JOINTS] == list(range(18))
    for j in J.JOINTS:
        assert j.servo_id == 3 * j.leg + J.JOINT_KINDS.index(j.kind)
        assert j.lower < j.soft_lower <= j.default <= j.soft_upper < j.upper
    assert J.UPPER[0] == pytest.approx(0.46) and J.UPPER[1] == pytest.approx(1.57)


def test_index_map_and_unknown_names():
    rev = list(reversed(J.JOINT_NAMES))
    m = J.index_map(rev)
    assert [rev[i] for i in m] == list(J.JOINT_NAMES)
    with pytest.raises(ValueError, match=r"unknown \['lf_knee'\].*missing \['lf_tibia'\]"):
        J.index_map([n if n != "lf_tibia" else "lf_knee" for n in J.JOINT_NAMES])
    with pytest.raises(ValueError, match="unknown joint name 'xx'"):
        J.joint_index("xx")


def test_pybullet_feet_match_core_kinematics():
    c = pb.connect(pb.DIRECT)
    try:
        r = pb.loadURDF(URDF, useFixedBase=True, physicsClientId=c)
        n = pb.getNumJoints(r, physicsClientId=c)
        info = [pb.getJointInfo(r, i, physicsClientId=c) for i in range(n)]
        jidx = {i[1].decode(): i[0] for i in info}
        lidx = {i[12].decode(): i[0] for i in info}
        rng = np.random.default_rng(3)
        for _ in range(5):
            q = rng.uniform(J.SOFT_LOWER, J.SOFT_UPPER)
            for k, n in enumerate(J.JOINT_NAMES):
                pb.resetJointState(r, jidx[n], q[k], physicsClientId=c)
            feet = [lidx[f"{p}_foot"] for p in J.LEG_PREFIXES]
            got = np.array([s[4] for s in pb.getLinkStates(r, feet, physicsClientId=c)])
            np.testing.assert_allclose(got, K.foot_positions(q), atol=1e-5)
    finally:
        pb.disconnect(c)


def test_inverse_kinematics_round_trip_and_stance_height():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.uniform(J.SOFT_LOWER, J.SOFT_UPPER)
        np.testing.assert_allclose(K.leg_inverse(K.foot_positions(q)), q, atol=1e-9)
    # default pose: feet at the standing height below the body, REP 103 left legs at +y
    feet = K.DEFAULT_FEET
    assert feet[:, 2] - J.FOOT_RADIUS == pytest.approx(np.full(6, -J.STANDING_HEIGHT), abs=1e-4)
    assert (feet[:3, 1] > 0).all() and (feet[3:, 1] < 0).all()
    assert feet[0, 0] > 0 and feet[5, 0] > 0 and feet[2, 0] < 0
    assert math.isclose(np.linalg.norm(feet[1, :2] - np.array(J.HIP_XY[1])), 0.122, abs_tol=2e-3)
