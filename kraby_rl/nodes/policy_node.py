"""policy_node: runs an exported policy (numpy, never torch) on the robot's topics.

Loads ``policy`` (an export directory, or the name of one shipped in policies/), refuses it
with every mismatch named when its contract (``core.contract``) does not match this robot
or a pinned parameter, then every control period of the policy feeds joint_states,
imu/data, odom and cmd_vel to the shared observer (``core.observer``: freshness, IMU ->
odom fallback, gait clock, action decoding, on the node clock), runs the policy and
publishes the resulting targets on policy/joint_targets. It publishes nothing until
joint_states arrive or while they are stale, so the shield stops the robot. Inference time
is reported on diagnostics.
"""

import time

import numpy as np

from kraby_rl import ros
from kraby_rl.core.command import CommandLimiter
from kraby_rl.core.observer import Observer
from kraby_rl.core.policy_runtime import ExportedPolicy, PolicyError
from kraby_rl.resources import resolve_policy
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import geometry_msgs, nav_msgs, sensor_msgs
from kraby_rl.ros import runner
from kraby_rl.ros.runner import main_for

PARAMETERS = [
    ("policy", "walk", "exported policy: a directory, or the name of one in policies/"),
    ("control_period_s", 0.0, "expected control period [s]; 0 = the policy's own"),
    ("cmd_vel_timeout_s", 0.0, "cmd_vel older than this counts as zero [s]; 0 = the "
                               "policy's contract"),
    ("state_timeout_s", 0.0, "no targets while joint_states are older than this [s]; 0 = "
                             "the policy's contract"),
    ("sensor_timeout_s", 0.0, "imu/data older than this is replaced by odom [s]; 0 = the "
                              "policy's contract"),
]
PINNABLE = ("control_period_s", "cmd_vel_timeout_s", "state_timeout_s", "sensor_timeout_s")
"""Parameters that pin a contract key: a policy with another value is refused."""


class PolicyNode(ros.Node):
    def __init__(self):
        super().__init__("policy_node")
        p = C.declare(self, PARAMETERS)
        for name in PINNABLE:
            C.require(p[name] >= 0, name, "a time [s] > 0, or 0 for the policy's", p[name])
        path = resolve_policy(p["policy"])
        try:
            self.policy = ExportedPolicy(path)
            self.contract = self.policy.contract(pinned={k: p[k] for k in PINNABLE})
            self.limiter = CommandLimiter.from_metadata(self.policy.metadata)
        except (PolicyError, ValueError) as exc:
            raise ValueError(f"parameter 'policy': {exc}") from None
        meta = self.policy.metadata
        self.period = self.contract.control_period_s
        self.observer = Observer(self.contract)
        self.now = ros.age_clock(self)  # [s]: sim time under use_sim_time, else monotonic
        self.infer_ms = []
        self.published = 0
        self.pub = self.create_publisher(sensor_msgs.JointState, "policy/joint_targets", 10)
        self.diag_pub = self.create_publisher(
            C.diagnostic_msgs.DiagnosticArray, "diagnostics", 10)
        self.create_subscription(sensor_msgs.JointState, "joint_states", self.on_joints, 10)
        self.create_subscription(sensor_msgs.Imu, "imu/data", self.on_imu,
                                 ros.qos_profile_sensor_data)
        self.create_subscription(nav_msgs.Odometry, "odom", self.on_odom, 10)
        self.create_subscription(geometry_msgs.Twist, "cmd_vel", self.on_cmd_vel, 10)
        self.create_timer(self.period, self.tick)
        self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(f"policy {path} ({meta.get('algorithm', '?')}, "
                               f"{self.period * 1e3:g} ms period, "
                               f"{self.contract.action_mode} actions, priority "
                               f"{runner.PROCESS_PRIORITY})")

    def on_joints(self, msg):
        try:
            q, w = C.joint_arrays(msg, velocity=True)
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint_states: {exc}", throttle_duration_sec=1)
            return
        self.observer.joint_state(self.now(), q, w)

    def on_imu(self, msg):
        o, g = msg.orientation, msg.angular_velocity
        self.observer.imu(self.now(), (o.x, o.y, o.z, o.w), (g.x, g.y, g.z))

    def on_odom(self, msg):
        o, g = msg.pose.pose.orientation, msg.twist.twist.angular
        self.observer.odometry(self.now(), (o.x, o.y, o.z, o.w), (g.x, g.y, g.z))

    def on_cmd_vel(self, msg):
        cmd = np.array([msg.linear.x, msg.linear.y, msg.angular.z], float)
        if np.all(np.isfinite(cmd)):
            res = self.limiter(cmd)
            if res.new_excursion:
                self.get_logger().warning(self.limiter.describe(cmd, res.limited))
            self.observer.command(self.now(), res.command)
        else:
            self.get_logger().warning(f"ignored cmd_vel: non-finite {cmd.tolist()}",
                                      throttle_duration_sec=1)

    def tick(self):
        start = time.perf_counter()
        obs = self.observer.observe(self.now())
        if obs is None:                 # no fresh joint_states: publish nothing
            return
        action = self.policy.act(obs)
        self.infer_ms.append((time.perf_counter() - start) * 1e3)
        del self.infer_ms[:-500]
        self.pub.publish(C.joint_state(self, self.observer.targets(action)))
        self.published += 1

    def publish_diagnostics(self):
        ms = np.array(self.infer_ms or [0.0])
        running = self.observer.t0 is not None
        values = {"published": self.published, "policy": self.policy.path,
                  "inference_p50_ms": f"{np.percentile(ms, 50):.3f}",
                  "inference_p99_ms": f"{np.percentile(ms, 99):.3f}",
                  "inference_max_ms": f"{ms.max():.3f}",
                  "cmd_vel_range": self.limiter.range_text(),
                  "cmd_vel_limited": self.limiter.limited_samples,
                  "cmd_vel_excursions": self.limiter.excursions,
                  "priority": runner.PROCESS_PRIORITY}
        level = C.OK if running else C.WARN
        message = "running" if running else "waiting for joint_states"
        values["body_source"] = self.observer.body_source(self.now())
        if running and self.limiter.outside:
            level, message = C.WARN, "running; cmd_vel outside the trained range, limited"
        blind = self.observer.feedback_without_imu(self.now()) if running else None
        if blind:
            level, message = C.WARN, f"running; {blind}"
            self.get_logger().warning(blind, throttle_duration_sec=30)
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: policy_node", level, message, values)]))


POLICY_RT_PRIORITY = 25
"""The control loop runs at a real-time priority below the shield's (35) and the servo
path's (40, 45): at normal priority, other work on two cores (a ros2 CLI starting) held it
off for more than the shield's 0.25 s command timeout and the shield stopped the robot."""

main = main_for(PolicyNode, "policy_node", priority=POLICY_RT_PRIORITY)

if __name__ == "__main__":
    main()
