"""state_estimator: odom and the odom->base_link transform from joint_states (+ imu/data).

Leg odometry (``core.estimation.LegOdometry``): stance detection from foot heights,
orientation from the IMU sample nearest in stamp time to each joint_states (within
``imu_timeout_s``; ``core.estimation.ImuPairing``), else from the stance feet. One odom
message and one tf per joint_states message. Pairing by stamps, not by which message came
first, makes the odometry the same live and in a replay of a recording.
"""


from kraby_rl import ros
from kraby_rl.core.estimation import ImuPairing, LegOdometry
from kraby_rl.core import geometry as G
from kraby_rl.nodes import common as C
from kraby_rl.ros.messages import nav_msgs, sensor_msgs, tf2_msgs
from kraby_rl.ros.runner import main_for

PARAMETERS = [
    ("stance_margin_m", 0.003, "a foot within this height of the lowest one is in stance [m]"),
    ("velocity_tau_s", 0.1, "time constant of the velocity low-pass filter [s]"),
    ("imu_timeout_s", 0.1, "an imu/data sample stamped further than this from a joint_states "
     "is not used with it; no sample for this long means no IMU [s]"),
    ("odom_frame", "odom", "frame of the odometry (REP 105)"),
    ("base_frame", "base_link", "body frame (REP 105)"),
    ("publish_tf", True, "publish odom->base_link on tf"),
]


def stamp_seconds(stamp):
    return stamp.sec + stamp.nanosec * 1e-9


class StateEstimatorNode(ros.Node):
    def __init__(self):
        super().__init__("state_estimator")
        p = C.declare(self, PARAMETERS)
        for name in ("odom_frame", "base_frame"):
            C.require(bool(p[name]), name, "a frame name", p[name])
        C.require(p["imu_timeout_s"] > 0, "imu_timeout_s", "a positive time [s]",
                  p["imu_timeout_s"])
        try:
            self.est = LegOdometry(p["stance_margin_m"], p["velocity_tau_s"])
        except ValueError as exc:
            raise ValueError(f"parameter {exc}") from None
        self.p = p
        self.pairing = ImuPairing(p["imu_timeout_s"])
        self.count = 0
        self.imu_count = 0
        self.errors = 0
        self.last = None
        self.odom_pub = self.create_publisher(nav_msgs.Odometry, "odom", 10)
        self.tf_pub = self.create_publisher(tf2_msgs.TFMessage, "tf", 10) \
            if p["publish_tf"] else None
        self.diag_pub = self.create_publisher(
            C.diagnostic_msgs.DiagnosticArray, "diagnostics", 10)
        self.create_subscription(sensor_msgs.JointState, "joint_states", self.on_joints, 10)
        self.create_subscription(sensor_msgs.Imu, "imu/data", self.on_imu,
                                 ros.qos_profile_sensor_data)
        self.create_timer(1.0, self.publish_diagnostics)

    def on_imu(self, msg):
        o, g = msg.orientation, msg.angular_velocity
        if G.is_unset((o.x, o.y, o.z, o.w)):
            return                      # no orientation in this IMU's messages
        for pair in self.pairing.add_imu(stamp_seconds(msg.header.stamp),
                                         ((o.x, o.y, o.z, o.w), (g.x, g.y, g.z))):
            self.update(*pair)

    def on_joints(self, msg):
        try:
            q = C.joint_arrays(msg)
        except ValueError as exc:
            self.reject(exc)
            return
        for pair in self.pairing.add_joints(stamp_seconds(msg.header.stamp),
                                            (q, msg.header.stamp)):
            self.update(*pair)

    def reject(self, exc):
        self.errors += 1
        self.get_logger().warning(f"ignored joint_states: {exc}", throttle_duration_sec=1)

    def update(self, t, joints, imu):
        q, stamp = joints
        try:
            e = self.est.update(t, q, *(imu if imu else (None, None)))
        except ValueError as exc:
            self.reject(exc)
            return
        self.count += 1
        self.imu_count += bool(imu)
        self.last = e
        odom = C.odometry(self, e.position, e.orientation, e.lin_vel_body, e.ang_vel_body,
                          stamp, self.p["odom_frame"], self.p["base_frame"])
        self.odom_pub.publish(odom)
        if self.tf_pub is not None:
            self.tf_pub.publish(C.odometry_tf(odom))

    def publish_diagnostics(self):
        e = self.last
        level = C.OK if e is not None else C.WARN
        values = {"updates": self.count, "with_imu": self.imu_count, "rejected": self.errors}
        if e is not None:
            values.update(stance=int(e.stance.sum()), height_m=f"{e.position[2]:.3f}",
                          vx=f"{e.lin_vel_body[0]:.3f}", vy=f"{e.lin_vel_body[1]:.3f}")
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: state_estimator", level,
            "OK" if e is not None else "no joint_states yet", values)]))


ESTIMATOR_RT_PRIORITY = 22
"""The odometry the policy falls back on runs at a real-time priority below the policy's
(25): at normal priority, with two CPU hogs, a freshly started estimator matched a reader
of its odometry seconds late, and the first 7 odometry messages of a bag replay into it were
never delivered (``test_bag``)."""

main = main_for(StateEstimatorNode, "state_estimator", priority=ESTIMATOR_RT_PRIORITY)

if __name__ == "__main__":
    main()
