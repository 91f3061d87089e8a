"""One observer: policy_node and the robot's topic env see the same observation and send the
same targets for the same messages, and the observer's rules (freshness, IMU -> odometry
fallback, gait clock) hold on the clock it is given."""

import math

import numpy as np
import pytest

from kraby_rl import ros
from kraby_rl.core import joints as J
from kraby_rl.core import spec as S
from kraby_rl.core.contract import DEFAULT
from kraby_rl.core.observer import Observer
from kraby_rl.ros.messages import geometry_msgs, nav_msgs, sensor_msgs, std_msgs

DT = DEFAULT.control_period_s


class FakeClock:
    """A node clock the test sets (as /clock would under use_sim_time)."""

    def __init__(self):
        self.t = 100.0

    def now(self):
        return ros.Time(nanoseconds=int(round(self.t * 1e9)))


def quat(roll, pitch):
    cr, sr, cp, sp = math.cos(roll / 2), math.sin(roll / 2), math.cos(pitch / 2), \
        math.sin(pitch / 2)
    return (sr * cp, cr * sp, -sr * sp, cr * cp)


def messages(k, rng, imu=True):
    """joint_states, imu/data (or None) and odom of step k; IMU and odometry disagree on
    the tilt so that the observation shows which one was used."""
    q = J.DEFAULT_POSE + 0.05 * np.sin(0.3 * k + np.arange(18))
    w = rng.normal(0, 0.5, 18)
    js = sensor_msgs.JointState(name=list(J.JOINT_NAMES), position=[float(v) for v in q],
                                velocity=[float(v) for v in w])
    i = None
    if imu:
        i = sensor_msgs.Imu()
        o = i.orientation
        o.x, o.y, o.z, o.w = quat(0.05, 0.02 * math.sin(k))
        g = i.angular_velocity
        g.x, g.y, g.z = 0.1, -0.05, 0.02 * k
    od = nav_msgs.Odometry()
    o = od.pose.pose.orientation
    o.x, o.y, o.z, o.w = quat(-0.1, 0.0)
    a = od.twist.twist.angular
    a.x, a.y, a.z = 0.0, 0.3, 0.0
    od.twist.twist.linear.x = 0.08
    return js, i, od


@pytest.fixture
def nodes(monkeypatch):
    """policy_node and a node for the topic env, both on simulated time from a clock the
    test sets (``ros.age_clock`` takes the node clock under use_sim_time)."""
    ros.init(args=["test_observer", "--ros-args", "-p", "use_sim_time:=true"])
    from kraby_rl.nodes.policy_node import PolicyNode
    clock = FakeClock()
    monkeypatch.setattr(ros.Node, "get_clock", lambda self: clock)
    made = []
    try:
        policy_node = PolicyNode()
        made.append(policy_node)
        env_node = ros.Node("topic_env_parity")
        made.append(env_node)
        yield policy_node, env_node, clock
    finally:
        for n in made:
            n.destroy_node()
        ros.shutdown()


def test_policy_node_and_topic_env_observe_and_act_alike(nodes):
    from kraby_rl.envs.topic_env import RobotTopicEnv
    policy_node, env_node, clock = nodes
    command = (0.1, 0.0, 0.2)
    env = RobotTopicEnv(env_node, policy_node.contract, command=command, reset_s=DT,
                        wait_s=2.0, spin=False)
    node_targets, env_targets = [], []
    policy_node.pub.publish = lambda msg: node_targets.append(np.array(msg.position))
    env.pub.publish = lambda msg: env_targets.append(np.array(msg.position))
    rng_node, rng_env = np.random.default_rng(7), np.random.default_rng(7)

    def feed(k, imu=True):
        for rng, on_joints, on_imu, on_odom in (
                (rng_node, policy_node.on_joints, policy_node.on_imu, policy_node.on_odom),
                (rng_env, env._on_joints, env._on_imu, env._on_odom)):
            js, i, od = messages(k, rng, imu)
            on_joints(js)
            if i is not None:
                on_imu(i)
            on_odom(od)
        twist = geometry_msgs.Twist()
        twist.linear.x, twist.linear.y, twist.angular.z = command
        policy_node.on_cmd_vel(twist)

    assert policy_node.now() == env._now() == clock.t        # both on the given clock
    feed(0)
    env._on_safety(std_msgs.String(data="OK"))
    obs_env, _ = env.reset()
    env_targets.clear()                       # the walk back to the stance
    policy_node.tick()
    obs_node = policy_node.observer.obs
    assert np.array_equal(obs_env, obs_node)
    gravity_sources = set()
    for k in range(1, 40):
        clock.t += DT
        feed(k, imu=not 10 <= k < 30)         # the IMU goes quiet: odometry takes over
        action = policy_node.policy.act(obs_env)
        obs_env, _r, stopped, _trunc, info = env.step(action)
        assert not stopped, info
        policy_node.tick()
        obs_node = policy_node.observer.obs
        assert np.array_equal(obs_env, obs_node), k
        assert np.array_equal(env_targets[-1], node_targets[-2]), k
        gravity_sources.add(round(float(obs_node[S.OBS_SLICES["gravity"]][1]), 3))
    # both sources were seen (IMU roll +0.05 and odometry roll -0.1): the fallback ran
    assert len(gravity_sources) >= 2
    assert obs_node[S.OBS_SLICES["clock"]] == pytest.approx(
        [math.sin(2 * math.pi * DEFAULT.clock_hz * 39 * DT),
         math.cos(2 * math.pi * DEFAULT.clock_hz * 39 * DT)], abs=1e-5)


def test_freshness_fallback_and_gait_clock_follow_the_given_clock():
    c = DEFAULT.replace(state_timeout_s=0.1, sensor_timeout_s=0.2, cmd_vel_timeout_s=0.5)
    o = Observer(c)
    assert o.observe(0.0) is None                                   # nothing yet
    o.joint_state(0.0, J.DEFAULT_POSE, np.zeros(18))
    level_imu, tilted_odom = (0, 0, 0, 1), quat(0.3, 0.0)
    assert o.imu(0.0, level_imu, (0.1, 0, 0))
    assert not o.imu(0.0, (0, 0, 0, 0), (9, 9, 9))                  # no orientation: ignored
    o.odometry(0.0, tilted_odom, (0, 0.2, 0))
    o.command(0.0, (0.1, 0.0, 0.0))
    obs = o.observe(0.05)
    assert obs[S.OBS_SLICES["base_ang_vel"]] == pytest.approx([0.1, 0, 0])
    assert obs[S.OBS_SLICES["gravity"]] == pytest.approx([0, 0, -1])
    assert obs[S.OBS_SLICES["command"]] == pytest.approx([0.1, 0, 0])
    assert obs[S.OBS_SLICES["clock"]] == pytest.approx([0, 1])      # the clock starts here
    o.joint_state(0.3, J.DEFAULT_POSE, np.zeros(18))
    o.odometry(0.3, tilted_odom, (0, 0.2, 0))
    obs = o.observe(0.3)                                            # IMU 0.3 s old: odometry
    assert obs[S.OBS_SLICES["base_ang_vel"]] == pytest.approx([0, 0.2, 0])
    assert obs[S.OBS_SLICES["gravity"]][1] == pytest.approx(-math.sin(0.3), abs=1e-6)
    t = 0.3 - 0.05
    assert obs[S.OBS_SLICES["clock"]] == pytest.approx(
        [math.sin(2 * math.pi * c.clock_hz * t), math.cos(2 * math.pi * c.clock_hz * t)],
        abs=1e-6)
    o.targets(np.full(18, 2.0))
    assert np.all(o.last_action == 1.0)                             # clipped
    obs = o.observe(0.6)                                            # joints 0.3 s old
    assert obs is None and o.t0 is None
    o.joint_state(0.7, J.DEFAULT_POSE, np.zeros(18))
    obs = o.observe(0.7)                                            # a new run
    assert obs[S.OBS_SLICES["clock"]] == pytest.approx([0, 1])
    assert np.all(obs[S.OBS_SLICES["last_action"]] == 0)
    assert obs[S.OBS_SLICES["command"]] == pytest.approx([0, 0, 0])  # cmd 0.7 s old: zero
    assert obs[S.OBS_SLICES["gravity"]] == pytest.approx([0, 0, -1])  # nothing fresh: level
    with pytest.raises(RuntimeError, match="before a first observation"):
        Observer(c).targets(np.zeros(18))


def _walk_copy(tmp_path, **changes):
    import json
    import shutil

    from kraby_rl.resources import resolve_policy
    dst = tmp_path / "walk"
    shutil.copytree(resolve_policy("walk"), dst)
    meta = json.loads((dst / "policy.json").read_text())
    for key, change in changes.items():
        meta[key] = change(meta[key])
    (dst / "policy.json").write_text(json.dumps(meta))
    return str(dst)


@pytest.mark.parametrize("changes,params,named", [
    ({"residual_scale": lambda v: [2 * x for x in v]}, [], "residual_scale: policy has"),
    # the policy chooses its foot lift (adopted, not named); the history is the package's
    ({"gait_lift_m": lambda v: 0.03, "obs_history": lambda v: 2}, [],
     "obs_history: policy has 2, robot expects 1$"),
    ({}, ["-p", "control_period_s:=0.03"], "control_period_s: policy has 0.02, robot "
                                           "expects 0.03"),
    ({}, ["-p", "sensor_timeout_s:=0.3"], "sensor_timeout_s: policy has 0.2, robot "
                                          "expects 0.3"),
])
def test_policy_node_refuses_a_contract_mismatch_naming_it(tmp_path, changes, params, named):
    from kraby_rl.nodes.policy_node import PolicyNode
    path = _walk_copy(tmp_path, **changes)
    ros.init(args=["test", "--ros-args", "-p", f"policy:={path}", *params])
    try:
        with pytest.raises(ValueError, match=f"parameter 'policy': policy '{path}' does not "
                                             f"match this robot: .*{named}"):
            PolicyNode()
    finally:
        ros.shutdown()


def test_fine_tuning_refuses_a_run_trained_under_another_contract(tmp_path):
    import json

    from kraby_rl.core.contract import Contract
    from kraby_rl.training.bridge import run_contract
    meta = {"env_id": "kraby_rl/Hexapod-v0", "env": {},
            **Contract(action_mode="gait_residual").metadata()}
    (tmp_path / "spec.json").write_text(json.dumps(meta))
    assert run_contract(str(tmp_path), {}).action_mode == "gait_residual"
    meta["action_upper"][0] += 0.2
    (tmp_path / "spec.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"parameter 'fine_tune_run': run .* does not match "
                                         r"this robot: action_upper: policy has"):
        run_contract(str(tmp_path), {})


def test_policy_node_warns_when_a_feedback_policy_has_no_imu(monkeypatch):
    """ripple_limp's heading hold and levelling were trained with an IMU; fed from odometry
    (the real stack without an IMU) policy_node says so in its diagnostics and log, and stops
    saying so once imu/data is fresh. A policy without feedback gains (walk) is not warned."""
    ros.init(args=["test_observer_imu", "--ros-args", "-p", "use_sim_time:=true",
                   "-p", "policy:=ripple_limp"])
    from kraby_rl.nodes import common as C
    from kraby_rl.nodes.policy_node import PolicyNode
    clock = FakeClock()
    monkeypatch.setattr(ros.Node, "get_clock", lambda self: clock)
    node = PolicyNode()
    try:
        diags = []
        node.diag_pub.publish = lambda msg: diags.append(msg.status[0])
        node.pub.publish = lambda msg: None
        rng = np.random.default_rng(0)
        for k in range(5):                                    # joint states and odometry
            clock.t += DT
            js, _i, od = messages(k, rng, imu=False)
            node.on_joints(js)
            node.on_odom(od)
            node.tick()
        node.publish_diagnostics()
        values = {kv.key: kv.value for kv in diags[-1].values}
        assert diags[-1].level == C.WARN and values["body_source"] == "odometry"
        assert "gait_heading_gain and gait_level_gain act on gyro and gravity from " \
               "odometry, not an IMU" in diags[-1].message, diags[-1].message
        clock.t += DT
        js, imu, od = messages(5, rng, imu=True)
        node.on_joints(js)
        node.on_imu(imu)
        node.tick()
        node.publish_diagnostics()
        assert diags[-1].level == C.OK and diags[-1].message == "running"
    finally:
        node.destroy_node()
        ros.shutdown()
    walk = Observer(DEFAULT.replace(action_mode="gait_residual"))
    walk.odometry(0.0, (0, 0, 0, 1), (0, 0, 0))
    assert walk.body_source(0.01) == "odometry" and walk.feedback_without_imu(0.01) is None
    assert walk.body_source(10.0) == "level"
