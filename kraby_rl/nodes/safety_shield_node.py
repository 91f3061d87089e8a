"""safety_shield: the only writer of joint_commands (core.safety in a ROS node).

Subscribes policy/joint_targets, joint_states, odom and imu/data (tilt), emergency_stop and
safety/reset; publishes joint_commands at rate_hz, safety/state (transient local) on every
change, and diagnostics once a second. Every trip is logged once with value, limit and joint.
"""


from kraby_rl import ros
from kraby_rl.core.safety import SERVO_FAULT_ACTIONS, SafetyShield, ShieldLimits
from kraby_rl.core import geometry as G
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import nav_msgs, sensor_msgs, std_msgs, visualization_msgs
from kraby_rl.ros import runner
from kraby_rl.ros.runner import main_for

SHIELD_RT_PRIORITY = 35

PARAMETERS = [
    ("rate_hz", 50.0, "joint_commands rate [Hz]"),
    ("max_rate_rad_s", 4.0, "largest change of a joint target [rad/s]"),
    ("command_timeout_s", 0.25, "stop when no policy/joint_targets arrived for this long [s]"),
    ("state_timeout_s", 0.15, "stop when no joint_states arrived for this long [s]"),
    ("max_tilt_rad", 0.6, "stop when the body tilts more than this [rad] (odom or imu/data)"),
    ("heartbeat_timeout_s", 0.0,
     "heartbeat mode: emergency_stop=false must arrive every this many s (0 = off)"),
    ("on_servo_fault", "stop",
     "a servo fault on servo/faults: stop (latch FAULT:servo_fault) or continue (report)"),
]


class SafetyShieldNode(ros.Node):
    def __init__(self):
        super().__init__("safety_shield")
        self.now = ros.age_clock(self)  # [s]: sim time under use_sim_time, else monotonic
        p = C.declare(self, PARAMETERS)
        C.require(p["rate_hz"] > 0, "rate_hz", "a positive rate [Hz]", p["rate_hz"])
        try:
            limits = ShieldLimits(max_rate_rad_s=p["max_rate_rad_s"],
                                  command_timeout_s=p["command_timeout_s"],
                                  state_timeout_s=p["state_timeout_s"],
                                  max_tilt_rad=p["max_tilt_rad"],
                                  heartbeat_timeout_s=p["heartbeat_timeout_s"])
        except ValueError as exc:
            raise ValueError(f"parameter {exc}") from None
        C.require(p["on_servo_fault"] in SERVO_FAULT_ACTIONS, "on_servo_fault",
                  " or ".join(SERVO_FAULT_ACTIONS), p["on_servo_fault"])
        self.shield = SafetyShield(limits, on_servo_fault=p["on_servo_fault"])
        self.cmd_pub = self.create_publisher(sensor_msgs.JointState, "joint_commands", 10)
        self.state_pub = self.create_publisher(std_msgs.String, "safety/state", C.LATCHED)
        self.marker_pub = self.create_publisher(visualization_msgs.Marker, "safety/marker",
                                                C.LATCHED)
        self.diag_pub = self.create_publisher(
            C.diagnostic_msgs.DiagnosticArray, "diagnostics", 10)
        self.create_subscription(sensor_msgs.JointState, "policy/joint_targets",
                                 self.on_target, 10)
        self.create_subscription(sensor_msgs.JointState, "joint_states", self.on_state, 10)
        self.create_subscription(std_msgs.Bool, "emergency_stop", self.on_estop, C.ESTOP_QOS)
        self.create_subscription(std_msgs.Empty, "safety/reset", self.on_reset, 10)
        self.create_subscription(C.diagnostic_msgs.DiagnosticArray, C.SERVO_FAULTS,
                                 self.on_servo_faults, C.LATCHED)
        self.create_subscription(nav_msgs.Odometry, "odom", self.on_odom, 10)
        self.create_subscription(sensor_msgs.Imu, "imu/data", self.on_imu,
                                 ros.qos_profile_sensor_data)
        self.published_state = None
        self.clamps = {}
        self.period = 1.0 / p["rate_hz"]
        self._last_tick, self._skipped_ages, self.late_ticks = None, False, 0
        self.create_timer(self.period, self.tick)
        self.create_timer(1.0, self.publish_diagnostics)
        self.publish_state()

    def on_target(self, msg):
        reason = self.shield.on_target(msg.name, msg.position, self.now())
        if reason:
            self.get_logger().warning(f"rejected policy/joint_targets: {reason}",
                                      throttle_duration_sec=1.0)

    def on_state(self, msg):
        self.shield.on_joint_state(msg.name, msg.position, self.now())

    def on_servo_faults(self, msg):
        faults = C.servo_faults_from(msg)
        new = sorted(set(faults) - set(self.shield.servo_faults))
        self.shield.on_servo_faults(faults, self.now())
        if new and self.shield.on_servo_fault == "continue":
            self.get_logger().warning(
                "servo fault (on_servo_fault=continue, walking on): " + ", ".join(
                    f"{j} ({faults[j]})" for j in new))
        self.tick()                     # a stop acts at once, not at the next tick

    def on_estop(self, msg):
        self.shield.on_estop(msg.data, self.now())
        if msg.data:
            self.tick()                 # stop commanding at once, not at the next tick

    def on_reset(self, _msg):
        why = self.shield.reset(self.now())
        if why:
            self.get_logger().warning(f"safety/reset refused: {why}")
        else:
            self.get_logger().info("safety/reset: resuming from the measured pose")
        self.publish_state()

    def on_odom(self, msg):
        q = msg.pose.pose.orientation
        self.shield.on_tilt(C.tilt_from_quaternion(q.x, q.y, q.z, q.w), self.now())

    def on_imu(self, msg):
        q = msg.orientation
        if not G.is_unset((q.x, q.y, q.z, q.w)):
            self.shield.on_tilt(C.tilt_from_quaternion(q.x, q.y, q.z, q.w), self.now())

    def tick(self):
        # A tick that comes more than two periods after the last one means this process was
        # not running: joint_states may sit queued behind this timer (executors run due
        # timers first), so the ages are judged on the next tick, after they are taken.
        # Never two ticks in a row: a shield starved for good still trips.
        now = self.now()
        late = self._last_tick is not None and now - self._last_tick > 2.0 * self.period
        judge = not late or self._skipped_ages
        self._skipped_ages = not judge
        self._last_tick = now
        if not judge:
            self.late_ticks += 1
        out = self.shield.update(now, judge_ages=judge)
        for trip in out.trips:
            self.get_logger().error(f"STOP ({out.state}): {trip.describe()}")
        for name in out.clamped:
            self.clamps[name] = self.clamps.get(name, 0) + 1
        if out.command is not None:
            self.cmd_pub.publish(C.joint_state(self, out.command))
        self.publish_state()

    def publish_state(self):
        if self.shield.state != self.published_state:
            self.published_state = self.shield.state
            self.state_pub.publish(C.string(self.shield.state))
            self.marker_pub.publish(self.marker(self.shield.state))

    def marker(self, state):
        """The safety state as text above the robot in RViz: green OK, amber WAITING, red."""
        m = visualization_msgs.Marker(type=visualization_msgs.Marker.TEXT_VIEW_FACING,
                                      action=visualization_msgs.Marker.ADD, ns="safety", id=0,
                                      text=state, frame_locked=True)
        m.header.frame_id = "base_link"
        m.header.stamp = self.get_clock().now().to_msg()
        m.pose.position.z = 0.15
        m.pose.orientation.w = 1.0
        m.scale.z = 0.04
        m.color.a = 1.0
        m.color.r, m.color.g, m.color.b = {"OK": (0.1, 0.8, 0.1), "WAITING": (0.9, 0.7, 0.1)}.get(
            state, (0.9, 0.1, 0.1))
        return m

    def publish_diagnostics(self):
        state = self.shield.state
        level = C.OK if state == "OK" else (C.WARN if state == "WAITING" else C.ERROR)
        cause = self.shield.cause.describe() if self.shield.cause else ""
        faults = ", ".join(f"{j} ({d})" for j, d in sorted(self.shield.servo_faults.items()))
        if faults and level == C.OK:      # on_servo_fault=continue: walking on, said so
            level, cause = C.WARN, f"walking on with a servo fault: {faults}"
        values = {"state": state, "cause": cause, "servo_faults": faults or "none",
                  "on_servo_fault": self.shield.on_servo_fault,
                  **{f"rejected_{k}": v for k, v in sorted(self.shield.rejected.items())},
                  "late_ticks": self.late_ticks, "priority": runner.PROCESS_PRIORITY,
                  **{f"clamped_{k}": v for k, v in sorted(self.clamps.items())}}
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: safety_shield", level, cause or state, values)]))


# the safety path outranks the policy and the estimator (and any other load): a starved
# shield would see joint_states late and stop the robot for nothing
main = main_for(SafetyShieldNode, "safety_shield", priority=SHIELD_RT_PRIORITY)

if __name__ == "__main__":
    main()
