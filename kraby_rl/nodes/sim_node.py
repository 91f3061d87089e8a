"""sim_node: servo_driver's topics and e-stop behaviour, backed by PyBullet in real time.

Each control period (1 / rate_hz of wall time, or faster with real_time_factor) it sends
the latest fresh joint_commands to the simulated servos, steps the physics, and publishes
joint_states, imu/data (orientation, gyro, proper acceleration; optional noise) and the
ground-truth pose and body-frame twist on sim/odom. Like the servo driver it starts braked,
turns torque on with the first fresh joint_commands, brakes (or frees) on emergency_stop
true at once, and turns torque on again only with a command sent after the release.
With publish_clock, it also publishes /clock so nodes with use_sim_time follow the sim.
"""

import time

import numpy as np

from kraby_rl import ros
from kraby_rl.core.realtime import take_priority
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import nav_msgs, rosgraph_msgs, sensor_msgs, std_msgs
from kraby_rl.ros.runner import main_for

ACTIONS = ("brake", "free")
SIM_RT_PRIORITY = 30
"""The simulated robot runs at a real-time priority like the hardware it stands for (the
servo driver's bus thread is at 40, the shield at 35): five nodes starting on two cores
starved it of CPU for 150 ms and the shield rightly stopped on stale joint_states."""
PARAMETERS = [
    ("rate_hz", 50.0, "control rate [Hz]: one servo goal and one joint_states per period"),
    ("physics_dt_s", 0.004, "physics step [s]; 1/rate_hz must be a whole multiple of it"),
    ("real_time_factor", 1.0, "simulated seconds per wall-clock second"),
    ("friction", 0.8, "foot friction coefficient"),
    ("latency_steps", 0, "command latency of the simulated bus [control periods]"),
    ("servo_strength", 1.0, "stall torque of every servo, x nominal (battery voltage)"),
    ("servo_speed", 1.0, "no-load speed of every servo, x nominal (battery voltage)"),
    ("command_timeout_s", 0.2, "joint_commands older than this are not applied [s]"),
    ("estop_action", "brake", "what emergency_stop=true does: brake or free"),
    ("imu_gyro_noise", 0.0, "standard deviation of the gyro noise [rad/s]"),
    ("imu_accel_noise", 0.0, "standard deviation of the accelerometer noise [m/s^2]"),
    ("publish_clock", False, "publish /clock (simulated time) for use_sim_time nodes"),
    ("seed", 0, "random seed of the sensor noise"),
]


class SimNode(ros.Node):
    def __init__(self):
        super().__init__("sim_node")
        p = C.declare(self, PARAMETERS)
        for name in ("rate_hz", "physics_dt_s", "real_time_factor", "friction",
                     "command_timeout_s", "servo_strength", "servo_speed"):
            C.require(p[name] > 0, name, "a positive number", p[name])
        C.require(p["latency_steps"] >= 0, "latency_steps", "a whole number >= 0",
                  p["latency_steps"])
        C.require(p["estop_action"] in ACTIONS, "estop_action", " or ".join(ACTIONS),
                  p["estop_action"])
        for name in ("imu_gyro_noise", "imu_accel_noise"):
            C.require(p[name] >= 0, name, "a standard deviation >= 0", p[name])
        from kraby_rl.envs.hexapod_env import physics_substeps
        from kraby_rl.sim.world import KrabyWorld
        period = 1.0 / p["rate_hz"]
        try:
            substeps = physics_substeps(period, p["physics_dt_s"])
        except ValueError as exc:
            raise ValueError(f"parameters 'rate_hz' and 'physics_dt_s': {exc}") from None
        self.p = p
        self.rng = np.random.default_rng(p["seed"])
        self.world = KrabyWorld(p["physics_dt_s"], substeps, latency_steps=p["latency_steps"],
                                friction=p["friction"])
        self.state = self.world.reset()
        self.world.servo.strength[:] = p["servo_strength"]
        self.world.servo.speed[:] = p["servo_speed"]
        self.prev_vel = np.zeros(3)
        self.torque = None
        self._apply("brake")
        self.command, self.command_t = None, -1.0
        self.estop = False
        self.steps = 0
        self.step_ms = []
        self.js_pub = self.create_publisher(sensor_msgs.JointState, "joint_states", 10)
        self.imu_pub = self.create_publisher(sensor_msgs.Imu, "imu/data",
                                             ros.qos_profile_sensor_data)
        self.odom_pub = self.create_publisher(nav_msgs.Odometry, "sim/odom", 10)
        self.clock_pub = (self.create_publisher(rosgraph_msgs.Clock, "/clock", 10)
                          if p["publish_clock"] else None)
        self.diag_pub = self.create_publisher(
            C.diagnostic_msgs.DiagnosticArray, "diagnostics", 10)
        self.create_subscription(sensor_msgs.JointState, "joint_commands", self.on_command, 10)
        self.create_subscription(std_msgs.Bool, "emergency_stop", self.on_estop, C.ESTOP_QOS)
        self.create_timer(period / p["real_time_factor"], self.tick)
        self.create_timer(1.0, self.publish_diagnostics)
        # faster than real time it would take a whole core at real-time priority: not then
        self.priority = ("normal (faster than real time)" if p["real_time_factor"] > 1
                         else take_priority(SIM_RT_PRIORITY))
        self.get_logger().info(f"PyBullet at {p['rate_hz']:g} Hz x{p['real_time_factor']:g} "
                               f"real time (priority {self.priority}); braked until the "
                               f"first joint_commands")

    def _apply(self, mode):
        """Torque mode of all simulated servos: on, brake (hold where it is) or free."""
        if mode == self.torque:
            return
        servo = self.world.servo
        if mode == "brake":
            servo.reset(self.state.q, self.world.t)
        servo.enabled[:] = mode != "free"
        self.torque = mode

    def on_command(self, msg):
        try:
            q = C.joint_arrays(msg)
        except ValueError as exc:
            self.get_logger().warning(f"ignored joint_commands: {exc}", throttle_duration_sec=1)
            return
        self.command, self.command_t = q, time.monotonic()

    def on_estop(self, msg):
        if msg.data and not self.estop:
            self.estop = True
            self._apply(self.p["estop_action"])
            self.get_logger().error(f"emergency_stop: servos {self.p['estop_action']} now")
        elif not msg.data and self.estop:
            self.estop = False
            self.command = None
            self.get_logger().info("emergency_stop released; waiting for joint_commands")

    def tick(self):
        start = time.perf_counter()
        fresh = time.monotonic() - self.command_t < self.p["command_timeout_s"]
        if self.command is not None and fresh and not self.estop:
            self._apply("on")
            self.world.command(self.command)
        self.world.step()
        s = self.state = self.world.state()
        self.steps += 1
        stamp = self.stamp(s.t)
        if self.clock_pub is not None:
            self.clock_pub.publish(rosgraph_msgs.Clock(clock=stamp))
        self.js_pub.publish(C.joint_state(self, s.q, s.w, s.tau, stamp=stamp))
        self.publish_imu(s, stamp)
        self.publish_odom(s, stamp)
        self.step_ms.append((time.perf_counter() - start) * 1e3)
        del self.step_ms[:-500]

    def stamp(self, sim_t):
        """Header stamps: simulated time when this node publishes /clock (its own timer
        stays on the wall clock: it is what makes simulated time advance), else now."""
        if self.clock_pub is None:
            return self.get_clock().now().to_msg()
        return ros.Time(nanoseconds=int(round(sim_t * 1e9))).to_msg()

    def publish_imu(self, s, stamp):
        msg = sensor_msgs.Imu()
        msg.header.stamp = stamp
        msg.header.frame_id = "base_link"
        o = msg.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in s.base_quat)
        gyro = s.ang_vel_body + self.rng.normal(0, self.p["imu_gyro_noise"], 3)
        vel_w = s.rot @ s.lin_vel_body
        acc_w = (vel_w - self.prev_vel) / self.world.control_dt
        self.prev_vel = vel_w
        acc = s.rot.T @ (acc_w + np.array([0.0, 0.0, 9.81]))
        acc = acc + self.rng.normal(0, self.p["imu_accel_noise"], 3)
        av, la = msg.angular_velocity, msg.linear_acceleration
        av.x, av.y, av.z = (float(v) for v in gyro)
        la.x, la.y, la.z = (float(v) for v in acc)
        self.imu_pub.publish(msg)

    def publish_odom(self, s, stamp):
        self.odom_pub.publish(C.odometry(self, s.base_pos, s.base_quat, s.lin_vel_body,
                                         s.ang_vel_body, stamp))

    def publish_diagnostics(self):
        step = np.array(self.step_ms or [0.0])
        budget_ms = 1e3 / self.p["rate_hz"] / self.p["real_time_factor"]
        p99 = float(np.percentile(step, 99))
        level = C.WARN if p99 > budget_ms else C.OK
        values = {"torque": self.torque, "estop": self.estop, "steps": self.steps,
                  "sim_time_s": f"{self.world.t:.3f}", "step_p99_ms": f"{p99:.2f}",
                  "budget_ms": f"{budget_ms:.2f}", "priority": self.priority}
        message = "OK" if level == C.OK else "physics slower than real time"
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: sim_node", level, message, values, hardware_id="pybullet")]))

    def destroy_node(self):
        self.world.close()
        return super().destroy_node()


main = main_for(SimNode, "sim_node")

if __name__ == "__main__":
    main()
