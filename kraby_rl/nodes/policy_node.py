"""policy_node: runs an exported policy (numpy, never torch) on the robot's topics.

Loads ``policy`` (an export directory, or the name of one shipped in policies/), refuses it
with a clear error when its metadata does not match this robot (spec version, joint order,
default pose, action scale, ...), then every control period of the policy builds the shared
observation (``core.spec``) from joint_states, imu/data (else odom) and cmd_vel, and
publishes the resulting targets on policy/joint_targets. It publishes nothing until
joint_states arrive or while they are stale, so the shield stops the robot. Inference time
is reported on diagnostics.
"""

import time

import numpy as np

from kraby_rl import ros
from kraby_rl.core import geometry as G
from kraby_rl.core import spec as S
from kraby_rl.core.command import CommandLimiter
from kraby_rl.core.estimation import quat_to_gravity
from kraby_rl.core.policy_runtime import check_spec, ExportedPolicy, PolicyError
from kraby_rl.resources import resolve_policy
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import geometry_msgs, nav_msgs, sensor_msgs
from kraby_rl.ros.runner import main_for

PARAMETERS = [
    ("policy", "walk", "exported policy: a directory, or the name of one in policies/"),
    ("control_period_s", 0.0, "expected control period [s]; 0 = the policy's own"),
    ("cmd_vel_timeout_s", 0.5, "cmd_vel older than this counts as zero [s]"),
    ("state_timeout_s", 0.1, "no targets while joint_states are older than this [s]"),
    ("sensor_timeout_s", 0.2, "imu/data older than this is replaced by odom [s]"),
]


class PolicyNode(ros.Node):
    def __init__(self):
        super().__init__("policy_node")
        p = C.declare(self, PARAMETERS)
        for name in ("cmd_vel_timeout_s", "state_timeout_s", "sensor_timeout_s"):
            C.require(p[name] > 0, name, "a positive time [s]", p[name])
        path = resolve_policy(p["policy"])
        try:
            self.policy = ExportedPolicy(path)
            meta = self.policy.metadata
            period = float(meta.get("control_period_s") or 0.0)
            if p["control_period_s"] and abs(p["control_period_s"] - period) > 1e-9:
                raise PolicyError(f"policy {path!r} was trained at a control period of "
                                  f"{period} s, parameter 'control_period_s' asks for "
                                  f"{p['control_period_s']} s")
            check_spec(self.policy, period, float(meta.get("clock_hz") or 0.0))
            try:
                self.decoder = S.ActionDecoder.from_metadata(meta)
            except ValueError as exc:
                raise PolicyError(f"policy {path!r}: {exc}") from None
        except PolicyError as exc:
            raise ValueError(f"parameter 'policy': {exc}") from None
        self.p = p
        self.period = period
        self.builder = S.ObservationBuilder(float(meta["clock_hz"]))
        try:
            self.limiter = CommandLimiter.from_metadata(meta)
        except ValueError as exc:
            raise ValueError(f"parameter 'policy': {path!r}: {exc}") from None
        self.last_action = np.zeros(S.ACTION_SIZE)
        self.q = self.w = None
        self.js_t = self.cmd_t = self.imu_t = self.odom_t = -1.0
        self.cmd = np.zeros(3)
        self.imu = self.odom = None
        self.t0 = None
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
        self.create_timer(period, self.tick)
        self.create_timer(1.0, self.publish_diagnostics)
        self.get_logger().info(f"policy {path} ({meta.get('algorithm', '?')}, "
                               f"{period * 1e3:g} ms period, {self.decoder.mode} actions)")

    def on_joints(self, msg):
        try:
            q, w = C.joint_arrays(msg, velocity=True)
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint_states: {exc}", throttle_duration_sec=1)
            return
        self.q, self.w, self.js_t = q, w, time.monotonic()

    def on_imu(self, msg):
        o, g = msg.orientation, msg.angular_velocity
        if not G.is_unset((o.x, o.y, o.z, o.w)):
            self.imu = ((o.x, o.y, o.z, o.w), (g.x, g.y, g.z))
            self.imu_t = time.monotonic()

    def on_odom(self, msg):
        o, g = msg.pose.pose.orientation, msg.twist.twist.angular
        self.odom = ((o.x, o.y, o.z, o.w), (g.x, g.y, g.z))
        self.odom_t = time.monotonic()

    def on_cmd_vel(self, msg):
        cmd = np.array([msg.linear.x, msg.linear.y, msg.angular.z], float)
        if np.all(np.isfinite(cmd)):
            res = self.limiter(cmd)
            if res.new_excursion:
                self.get_logger().warning(self.limiter.describe(cmd, res.limited))
            self.cmd, self.cmd_t = res.command, time.monotonic()
        else:
            self.get_logger().warning(f"ignored cmd_vel: non-finite {cmd.tolist()}",
                                      throttle_duration_sec=1)

    def body(self, now):
        """(gyro, gravity) from imu/data when fresh, else odom, else a level robot at rest."""
        for sample, t in ((self.imu, self.imu_t), (self.odom, self.odom_t)):
            if sample is not None and now - t < self.p["sensor_timeout_s"]:
                quat, gyro = sample
                return np.array(gyro), quat_to_gravity(quat)
        return np.zeros(3), np.array([0.0, 0.0, -1.0])

    def tick(self):
        now = time.monotonic()
        if self.q is None or now - self.js_t > self.p["state_timeout_s"]:
            self.t0 = None              # the gait clock restarts when the state comes back
            return
        if self.t0 is None:
            self.t0 = now
            self.last_action[:] = 0.0
        cmd = self.cmd if now - self.cmd_t < self.p["cmd_vel_timeout_s"] else np.zeros(3)
        gyro, gravity = self.body(now)
        start = time.perf_counter()
        obs = self.builder.build(gyro, gravity, cmd, self.q, self.w, self.last_action,
                                 now - self.t0)
        action = self.policy.act(obs)
        self.infer_ms.append((time.perf_counter() - start) * 1e3)
        del self.infer_ms[:-500]
        self.last_action = action
        self.pub.publish(C.joint_state(self, self.decoder(action, obs)))
        self.published += 1

    def publish_diagnostics(self):
        ms = np.array(self.infer_ms or [0.0])
        running = self.t0 is not None
        values = {"published": self.published, "policy": self.policy.path,
                  "inference_p50_ms": f"{np.percentile(ms, 50):.3f}",
                  "inference_p99_ms": f"{np.percentile(ms, 99):.3f}",
                  "inference_max_ms": f"{ms.max():.3f}",
                  "cmd_vel_range": self.limiter.range_text(),
                  "cmd_vel_limited": self.limiter.limited_samples,
                  "cmd_vel_excursions": self.limiter.excursions}
        level = C.OK if running else C.WARN
        message = "running" if running else "waiting for joint_states"
        if running and self.limiter.outside:
            level, message = C.WARN, "running; cmd_vel outside the trained range, limited"
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: policy_node", level, message, values)]))


main = main_for(PolicyNode, "policy_node")

if __name__ == "__main__":
    main()
