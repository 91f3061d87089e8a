"""navigator: walks the robot to a goal (RViz's "2D Goal Pose") with a navigation policy.

Subscribes ``goal_pose`` (geometry_msgs/PoseStamped, in the odom frame: what RViz's 2D Goal
Pose tool publishes), ``odom`` and ``emergency_stop``; publishes ``cmd_vel`` while it has a
goal, which the walking policy (policy_node) executes, and ``navigator/status``
(std_msgs/String, latched) on every change: ``idle``, ``navigating to (x, y)``,
``arrived at (x, y) ...``, ``stopped: ...``.

Every ``primitive_s`` of the policy (an export of ``Navigate-v0``, run with numpy) it builds
the observation of ``core.navigation`` from odom and the goal and picks a primitive; its
cmd_vel is repeated at ``cmd_rate_hz`` (policy_node counts a cmd_vel older than its timeout
as zero). Within ``arrive_m`` of the goal it sends zero cmd_vel for a second and goes idle
(other cmd_vel sources may take over). A new goal replaces the current one at once.
``emergency_stop`` true drops the goal (the shield stops the robot; the navigator does not
resume after a reset). Stale odom (older than ``odom_timeout_s``) sends zero and keeps the
goal until odom is back.
"""

import numpy as np

from kraby_rl import ros
from kraby_rl.core import geometry as G
from kraby_rl.core import navigation as N
from kraby_rl.core.policy_runtime import ExportedPolicy, PolicyError
from kraby_rl.nodes import common as C
from kraby_rl.resources import resolve_policy
from kraby_rl.ros.messages import geometry_msgs, nav_msgs, std_msgs
from kraby_rl.ros.runner import main_for

PARAMETERS = [
    ("policy", "navigate", "navigation policy: an export of Navigate-v0 (a directory or the "
                           "name of one in policies/)"),
    ("odom_frame", "odom", "frame goals must be given in (REP 105; '' in a goal means this)"),
    ("odom_timeout_s", 0.5, "odom older than this stops the robot until it is back [s]"),
    ("cmd_rate_hz", 10.0, "cmd_vel publishing rate while navigating [Hz]"),
    ("arrive_m", 0.0, "arrival tolerance [m]; 0 = the policy's"),
]
STOP_REPEAT_S = 1.0
"""After arrival or a stop, zero cmd_vel is sent for this long, then nothing."""


class NavigatorNode(ros.Node):
    def __init__(self):
        super().__init__("navigator")
        p = C.declare(self, PARAMETERS)
        C.require(p["odom_timeout_s"] > 0, "odom_timeout_s", "a time > 0 [s]",
                  p["odom_timeout_s"])
        C.require(p["cmd_rate_hz"] > 0, "cmd_rate_hz", "a rate > 0 [Hz]", p["cmd_rate_hz"])
        C.require(p["arrive_m"] >= 0, "arrive_m", "a distance >= 0 [m]", p["arrive_m"])
        path = resolve_policy(p["policy"])
        try:
            self.policy = ExportedPolicy(path)
            self.spec = N.NavigationSpec.from_metadata(self.policy.metadata,
                                                       what=f"policy {path!r}")
        except (PolicyError, ValueError) as exc:
            raise ValueError(f"parameter 'policy': {exc}") from None
        if not self.policy.discrete or self.policy.obs_size != N.OBS_SIZE \
                or self.policy.action_size != N.N_PRIMITIVES:
            raise ValueError(f"parameter 'policy': {path!r} is not a navigation policy "
                             f"(expected {N.OBS_SIZE} observations -> {N.N_PRIMITIVES} "
                             f"discrete primitives, found {self.policy.obs_size} -> "
                             f"{self.policy.action_size}, action_type "
                             f"{self.policy.metadata.get('action_type')!r})")
        self.p = p
        self.arrive_m = p["arrive_m"] or self.spec.arrive_m
        self.now = ros.age_clock(self)
        self.goal = None
        self.primitive = 0
        self.odom = None                 # (t, xy, yaw, lin_vel_body, yaw_rate)
        self.stop_until = -1.0
        self.decisions = 0
        self.goals = 0
        self.arrivals = 0
        self.rejected = 0
        self.status_text = ""
        self.cmd_pub = self.create_publisher(geometry_msgs.Twist, "cmd_vel", 10)
        self.status_pub = self.create_publisher(std_msgs.String, "navigator/status", C.LATCHED)
        self.diag_pub = self.create_publisher(
            C.diagnostic_msgs.DiagnosticArray, "diagnostics", 10)
        self.create_subscription(geometry_msgs.PoseStamped, "goal_pose", self.on_goal, 10)
        self.create_subscription(nav_msgs.Odometry, "odom", self.on_odom, 10)
        self.create_subscription(std_msgs.Bool, "emergency_stop", self.on_estop, C.ESTOP_QOS)
        self.create_timer(self.spec.primitive_s, self.decide)
        self.create_timer(1.0 / p["cmd_rate_hz"], self.publish_cmd)
        self.create_timer(1.0, self.publish_diagnostics)
        self.set_status("idle")
        algorithm = self.policy.metadata.get("algorithm", "?")
        self.get_logger().info(f"navigation policy {path} ({algorithm}, a primitive every "
                               f"{self.spec.primitive_s:g} s, arrival within "
                               f"{self.arrive_m:g} m); goals on goal_pose in frame "
                               f"{p['odom_frame']!r}")

    # -- inputs ------------------------------------------------------------------------
    def on_goal(self, msg):
        frame = msg.header.frame_id.lstrip("/")
        pos = msg.pose.position
        xy = np.array([pos.x, pos.y], float)
        if frame not in ("", self.p["odom_frame"]) or not np.all(np.isfinite(xy)):
            self.rejected += 1
            self.get_logger().warning(
                f"ignored goal_pose: expected a finite position in frame "
                f"{self.p['odom_frame']!r}, found ({pos.x}, {pos.y}) in {frame!r}")
            return
        self.goal = xy
        self.goals += 1
        self.set_status(f"navigating to ({xy[0]:.3f}, {xy[1]:.3f})")
        self.decide()

    def on_odom(self, msg):
        o, tw = msg.pose.pose.orientation, msg.twist.twist
        pos = msg.pose.pose.position
        self.odom = (self.now(), np.array([pos.x, pos.y]), G.yaw_from_quat((o.x, o.y, o.z, o.w)),
                     np.array([tw.linear.x, tw.linear.y]), tw.angular.z)

    def on_estop(self, msg):
        if msg.data and self.goal is not None:
            self.stop("stopped: emergency_stop")

    # -- decisions ---------------------------------------------------------------------
    def stop(self, why):
        self.goal = None
        self.primitive = 0
        self.stop_until = self.now() + STOP_REPEAT_S
        self.set_status(why)
        self.publish_cmd()

    def decide(self):
        if self.goal is None:
            return
        now = self.now()
        if self.odom is None or now - self.odom[0] > self.p["odom_timeout_s"]:
            self.primitive = 0
            self.get_logger().warning("navigator: no fresh odom; standing until it is back",
                                      throttle_duration_sec=2)
            self.publish_cmd()
            return
        _, xy, yaw, vel, wz = self.odom
        dist, _ = N.goal_in_body(xy, yaw, self.goal)
        if dist < self.arrive_m:
            self.arrivals += 1
            g = self.goal
            self.get_logger().info(f"arrived at ({g[0]:.3f}, {g[1]:.3f}): {dist:.3f} m away")
            self.stop(f"arrived at ({g[0]:.3f}, {g[1]:.3f}) within {dist:.3f} m")
            return
        obs = N.observe(self.spec, xy, yaw, self.goal, vel, wz, self.primitive)
        self.primitive = int(self.policy.act(obs))
        self.decisions += 1
        self.publish_cmd()

    def publish_cmd(self):
        if self.goal is None and self.now() > self.stop_until:
            return
        vx, vy, wz = N.command(self.primitive) if self.goal is not None else np.zeros(3)
        msg = geometry_msgs.Twist()
        msg.linear.x, msg.linear.y, msg.angular.z = float(vx), float(vy), float(wz)
        self.cmd_pub.publish(msg)

    def set_status(self, text):
        if text != self.status_text:
            self.status_text = text
            self.status_pub.publish(C.string(text))

    def publish_diagnostics(self):
        values = {"status": self.status_text, "goals": self.goals, "arrivals": self.arrivals,
                  "decisions": self.decisions, "rejected_goals": self.rejected,
                  "primitive": N.PRIMITIVE_NAMES[self.primitive], "policy": self.policy.path}
        if self.goal is not None and self.odom is not None:
            values["distance_m"] = f"{N.goal_in_body(self.odom[1], 0.0, self.goal)[0]:.3f}"
        self.diag_pub.publish(C.diagnostics(self, [C.status(
            "kraby_rl: navigator", C.OK, self.status_text, values)]))


main = main_for(NavigatorNode, "navigator")

if __name__ == "__main__":
    main()
