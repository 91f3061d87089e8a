"""The navigator in the sim stack: a goal published on goal_pose from this (separate) process
is reached (ground truth within 0.15 m) and the robot stops; a new goal mid-way redirects
it; emergency_stop stops everything and drops the goal."""

import math
import signal
import sys

import numpy as np

from kraby_rl import ros
from kraby_rl.ros.messages import geometry_msgs, nav_msgs, std_msgs
from ros_helpers import Process, ros_node, spin_for, spin_until

LATCHED = ros.QoSProfile(depth=1, durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)
GROUND_TRUTH_TOL_M = 0.15


def _xy(msg):
    p = msg.pose.pose.position
    return np.array([p.x, p.y])


def test_navigator_walks_to_goals_and_obeys_the_emergency_stop():
    launcher = Process([sys.executable, "-m", "kraby_rl.cli", "launch", "sim"])
    try:
        with ros_node("navigation_user") as node:
            got = {"odom": None, "sim": None}
            states, nav = [], []
            node.create_subscription(nav_msgs.Odometry, "odom",
                                     lambda m: got.__setitem__("odom", m), 10)
            node.create_subscription(nav_msgs.Odometry, "sim/odom",
                                     lambda m: got.__setitem__("sim", m), 10)
            node.create_subscription(std_msgs.String, "safety/state",
                                     lambda m: states.append(m.data), LATCHED)
            node.create_subscription(std_msgs.String, "navigator/status",
                                     lambda m: nav.append(m.data), LATCHED)
            goal_pub = node.create_publisher(geometry_msgs.PoseStamped, "goal_pose", 10)
            estop = node.create_publisher(std_msgs.Bool, "emergency_stop", 10)
            assert spin_until(node, lambda: states and states[-1] == "OK" and nav
                              and got["odom"] and got["sim"], 90), (states, nav,
                                                                    launcher.stderr)
            assert nav[-1] == "idle"
            assert spin_until(node, lambda: goal_pub.get_subscription_count() >= 1, 10)
            # odom starts where the robot stood up; the simulator's world frame need not
            offset = _xy(got["sim"]) - _xy(got["odom"])

            def send(xy):
                msg = geometry_msgs.PoseStamped()
                msg.header.frame_id = "odom"
                msg.pose.position.x, msg.pose.position.y = float(xy[0]), float(xy[1])
                msg.pose.orientation.w = 1.0
                goal_pub.publish(msg)

            def truth_error(goal):
                return float(np.linalg.norm(_xy(got["sim"]) - offset - np.asarray(goal)))

            def arrived_at(goal):
                return lambda: nav and nav[-1].startswith(
                    f"arrived at ({goal[0]:.3f}, {goal[1]:.3f})")

            start = _xy(got["odom"])
            # 1. a goal 1 m away, ahead and to the left: reached, then the robot stops
            goal = start + np.array([0.8, 0.6])
            send(goal)
            assert spin_until(node, lambda: nav[-1].startswith("navigating to"), 5), nav
            assert spin_until(node, arrived_at(goal), 45), (nav, truth_error(goal))
            assert truth_error(goal) < GROUND_TRUTH_TOL_M, truth_error(goal)
            spin_for(node, 1.5)                     # the zero cmd_vel has taken effect
            here = _xy(got["sim"])
            spin_for(node, 2.0)
            assert np.linalg.norm(_xy(got["sim"]) - here) < 0.02      # it stays there
            assert states[-1] == "OK"
            # 2. a goal behind it, replaced half-way by another to the right: it goes there
            first = goal + np.array([-1.2, 0.0])
            send(first)
            spin_for(node, 4.0)
            assert truth_error(first) > 0.4                           # not there yet
            second = goal + np.array([0.0, -0.8])
            send(second)
            assert spin_until(node, arrived_at(second), 45), (nav, truth_error(second))
            assert truth_error(second) < GROUND_TRUTH_TOL_M, truth_error(second)
            assert not any(s.startswith(f"arrived at ({first[0]:.3f}") for s in nav)
            # 3. emergency_stop mid-way: the shield stops, the navigator drops its goal
            third = second + np.array([1.0, 0.0])
            send(third)
            spin_for(node, 2.0)
            assert spin_until(node, lambda: estop.get_subscription_count() >= 2, 5)
            estop.publish(std_msgs.Bool(data=True))
            assert spin_until(node, lambda: states[-1] == "ESTOP", 5), states
            assert spin_until(node, lambda: nav[-1] == "stopped: emergency_stop", 5), nav
            spin_for(node, 1.0)
            here = _xy(got["sim"])
            spin_for(node, 2.0)
            assert np.linalg.norm(_xy(got["sim"]) - here) < 0.02
            assert truth_error(third) > 0.3 and math.isfinite(truth_error(third))
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.wait(timeout=30) == 0
    finally:
        launcher.stop()
