"""Servo faults and payloads in the simulator: each does what it says to the robot, is drawn
from the config, and a limp leg turns the hand-written gait (what learning must beat)."""

import math

import gymnasium as gym
import numpy as np
import pytest

import kraby_rl  # noqa: F401  (registers the envs)
from kraby_rl.core import geometry as G
from kraby_rl.core import joints as J
from kraby_rl.sim.faults import NON_ADJACENT_PAIRS, FaultSpec, check_faults, draw_faults
from kraby_rl.training.config import ConfigError, from_dict


@pytest.fixture(scope="module")
def env():
    e = gym.make("kraby_rl/Hexapod-v0", action_mode="gait_residual", command=[0.15, 0, 0],
                 zero_command_prob=0.0, episode_s=8.0).unwrapped
    yield e
    e.close()


def walk(env, faults, steps=None):
    _, info = env.reset(seed=0, options={"faults": faults})
    s0 = env.robot_state
    qs, taus = [], []
    for _ in range(steps or env.max_steps):
        _, _, term, trunc, info = env.step(np.zeros(18))
        s = env.robot_state
        qs.append(s.q)
        taus.append(s.tau)
        if term or trunc:
            break
    s = env.robot_state
    turn = math.degrees(G.yaw_from_quat(s.base_quat) - G.yaw_from_quat(s0.base_quat))
    return {"dx": s.base_pos[0] - s0.base_pos[0], "turn": turn, "fell": bool(term),
            "q": np.array(qs), "tau": np.array(taus), "info": info, "s": s}


def test_a_torque_free_servo_gives_no_torque_and_a_limp_leg_turns_the_gait(env):
    healthy = walk(env, FaultSpec())
    limp = walk(env, FaultSpec.limp_leg("lm"))
    k = [J.JOINT_NAMES.index(f"lm_{s}") for s in ("coxa", "femur", "tibia")]
    assert np.all(limp["tau"][:, k] == 0.0)
    assert limp["info"]["faults"] == "limp leg lm"
    assert abs(healthy["turn"]) < 10 and healthy["dx"] > 1.0
    assert abs(limp["turn"]) > 45            # the gait alone spins about the dead leg


def test_a_ripple_gait_keeps_four_feet_down_and_walks_on_with_a_limp_middle_leg():
    """gait_pattern ripple: each side's legs step back to front a third of a cycle apart;
    at duty 0.75 at least four feet are in stance at every phase (the tripod has three), so
    a limp middle leg that spins the tripod gait round leaves it walking straight on."""
    from kraby_rl.core.gait import PATTERNS
    phases = np.linspace(0.0, 1.0, 241)[:, None]
    in_stance = ((phases + PATTERNS["ripple"]) % 1.0) < 0.75
    assert in_stance.sum(axis=1).min() >= 4
    assert (((phases + PATTERNS["tripod"]) % 1.0) < 0.5).sum(axis=1).min() == 3
    gaits = {p: gym.make("kraby_rl/Hexapod-v0", action_mode="gait_residual",
                         command=[0.15, 0, 0], zero_command_prob=0.0, episode_s=8.0,
                         gait_pattern=p, gait_duty=0.75 if p == "ripple" else 0.5,
                         gait_lift_m=0.05).unwrapped for p in ("tripod", "ripple")}
    try:
        tripod = walk(gaits["tripod"], FaultSpec.limp_leg("lm"))
        ripple = walk(gaits["ripple"], FaultSpec.limp_leg("lm"))
        healthy = walk(gaits["ripple"], FaultSpec())
    finally:
        for e in gaits.values():
            e.close()
    assert abs(tripod["turn"]) > 45                 # the tripod spins about the dead leg
    assert abs(ripple["turn"]) < 15 and ripple["dx"] > 0.8 and not ripple["fell"]
    assert abs(healthy["turn"]) < 15 and healthy["dx"] > 0.8


def test_a_stuck_servo_holds_its_reset_position_and_a_weak_one_is_weaker(env):
    k = J.JOINT_NAMES.index("lm_femur")
    healthy = walk(env, FaultSpec(), steps=100)
    stuck = walk(env, FaultSpec(stuck=("lm_femur",)), steps=100)
    assert np.ptp(healthy["q"][:, k]) > 0.15       # the femur lifts the foot each step
    assert np.ptp(stuck["q"][:, k]) < 0.05
    env.reset(seed=0, options={"faults": {"weak": {"lm_femur": 0.4}}})
    stall, _ = env.world.servo.envelope()
    assert stall[k] == pytest.approx(0.4 * J.SERVO_STALL_TORQUE)
    assert np.all(np.delete(stall, k) == pytest.approx(J.SERVO_STALL_TORQUE))


def test_a_payload_rides_on_the_body_and_is_gone_next_episode(env):
    import pybullet as pb
    w = env.world
    n0 = pb.getNumBodies(physicsClientId=w.cid)

    def carried(faults):
        """Weight on the feet [N] and the payload's place in base_link, standing still."""
        w.reset(faults=faults)
        for _ in range(25):
            w.command(J.DEFAULT_POSE)
            w.step()
        weight = sum(cp[9] for cp in pb.getContactPoints(bodyA=w.robot,
                                                         physicsClientId=w.cid))
        where = None
        if w._payload is not None:
            pos, orn = pb.getBasePositionAndOrientation(w.robot, physicsClientId=w.cid)
            at, _ = pb.getBasePositionAndOrientation(w._payload, physicsClientId=w.cid)
            inv = pb.invertTransform(pos, orn)
            where = pb.multiplyTransforms(inv[0], inv[1], at, [0, 0, 0, 1])[0]
        return weight, where

    bare, _ = carried(FaultSpec())
    loaded, where = carried(FaultSpec(payload_kg=0.5, payload_xy=(0.04, -0.02)))
    assert pb.getNumBodies(physicsClientId=w.cid) == n0 + 1
    assert loaded - bare == pytest.approx(0.5 * 9.81, rel=0.05)
    assert where == pytest.approx((0.04, -0.02, w.PAYLOAD_Z_M), abs=0.003)
    moved = walk(env, FaultSpec(payload_kg=0.5, payload_xy=(0.04, 0.0)), steps=150)
    assert not moved["fell"] and moved["dx"] > 0.2
    walk(env, FaultSpec(), steps=1)
    assert pb.getNumBodies(physicsClientId=w.cid) == n0
    assert w.faults.label() == "none"


def test_faults_are_checked_and_drawn_from_the_config():
    sec = check_faults({"kinds": {"none": 1, "limp_leg": 1, "weak_servo": 1},
                        "weak_strength": [0.4, 0.6], "payload_kg": [0.1, 0.5]})
    rng = np.random.default_rng(0)
    drawn = [draw_faults(sec, rng) for _ in range(300)]
    legs = [d for d in drawn if len(d.limp) == 3]
    weak = [d for d in drawn if d.weak]
    assert 60 < len(legs) < 140 and 60 < len(weak) < 140
    assert all(0.4 <= s <= 0.6 for d in weak for s in d.weak.values())
    assert all(0.1 <= d.payload_kg <= 0.5 and math.hypot(*d.payload_xy) <= 0.05 + 1e-9
               for d in drawn)
    for bad, said in [({"kinds": {"gremlin": 1}}, "faults.kinds: unknown kind 'gremlin'"),
                      ({"weak_strength": [0.0, 0.5]}, "with 0.0 < low <= high <= 1.0"),
                      ({"payload_kg": [0, 5]}, "high <= 2.0, found [0, 5]"),
                      ({"limp": 1}, "unknown key 'limp'")]:
        with pytest.raises(ValueError) as exc:
            check_faults(bad)
        assert said in str(exc.value)
    with pytest.raises(ValueError, match=r"faults.limp: unknown joint\(s\) \['lf_knee'\]"):
        FaultSpec(limp=("lf_knee",))
    with pytest.raises(ValueError, match="faults.weak.lf_femur: expected a stall-torque"):
        FaultSpec(weak={"lf_femur": 1.5})
    with pytest.raises(ConfigError, match="config key 'env': faults.kinds"):
        from_dict({"env": {"faults": {"kinds": {"x": 1}}}})


def test_two_limp_legs_are_never_neighbours_and_every_such_pair_is_drawn():
    assert len(NON_ADJACENT_PAIRS) == 9
    ring = list(J.LEG_PREFIXES)                    # lf, lm, lr, rr, rm, rf: round the body
    sec = check_faults({"kinds": {"limp_legs": 1}})
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        spec = draw_faults(sec, rng)
        legs = sorted({n.split("_")[0] for n in spec.limp}, key=ring.index)
        assert len(spec.limp) == 6 and len(legs) == 2, spec
        gap = ring.index(legs[1]) - ring.index(legs[0])
        assert gap not in (1, 5), legs             # not neighbours
        seen.add(tuple(legs))
    assert len(seen) == 9
    assert FaultSpec.limp_leg("lm", "rr").label() == "limp leg lm, limp leg rr"
    assert FaultSpec.limp_leg("rr", "lm").limp_legs() == ("lm", "rr")
    assert FaultSpec(limp=("lf_coxa",)).limp_legs() == ()
    with pytest.raises(ValueError, match=r"limp leg: expected one or more of .* found \['lx'\]"):
        FaultSpec.limp_leg("lx")
