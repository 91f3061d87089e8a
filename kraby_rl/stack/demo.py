"""``kraby demo``: the sim stack running a policy for a fixed time, and what it did.

Starts ``kraby launch sim policy:=POLICY`` (every node its own process, DDS on loopback),
publishes ``cmd_vel`` at 10 Hz, watches the topics from this separate process like any
ROS 2 tool would, stops the stack with Ctrl-C semantics after ``--seconds`` and prints:
the safety states seen, distance and mean speed (simulator ground truth and the state
estimator's odometry side by side), body height, the joint_states rate, the policy's
inference time and the shield's counters.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import time

import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.stack.launcher import stop_process
from kraby_rl.ros.topic_tool import loopback_by_default


DEFAULT_POLICY = "walk"
DEFAULT_COMMAND = (0.15, 0.0, 0.0)
"""The main job's defaults: the shipped walking policy at 0.15 m/s forward."""


def add_parser(sub):
    p = sub.add_parser("demo", help="run the sim stack with a policy and report what it did")
    from kraby_rl.cli import positive
    p.add_argument("--seconds", type=positive(float, "[s] (time the policy runs)"),
                   default=20.0, help="time the policy runs [s]")
    p.add_argument("--policy", default=DEFAULT_POLICY,
                   help="exported policy (dir or shipped name)")
    p.add_argument("--command", type=float, nargs=3, default=DEFAULT_COMMAND,
                   metavar=("VX", "VY", "WZ"), help="cmd_vel [m/s, m/s, rad/s]")
    p.add_argument("--goal", type=float, nargs=2, metavar=("X", "Y"),
                   help="instead of cmd_vel, send this goal [m, odom frame: the start is "
                        "the origin, x ahead] on goal_pose; the navigator walks there and the "
                        "demo ends on arrival or after --seconds")
    p.add_argument("--record", metavar="BAG",
                   help="record every topic of the run into this rosbag2 bag (MCAP)")
    p.set_defaults(func=main)
    return p


class Watch:
    """What the demo records from the topics."""

    def __init__(self, node, ros, msgs):
        latched = ros.LATCHED
        self.states, self.truth, self.est, self.js = [], [], [], []
        self.diag = {}
        self.nav = []
        node.create_subscription(msgs.std_msgs.String, "navigator/status",
                                 lambda m: self.nav.append((time.monotonic(), m.data)), latched)
        node.create_subscription(msgs.std_msgs.String, "safety/state",
                                 lambda m: self.states.append(m.data), latched)
        node.create_subscription(msgs.nav_msgs.Odometry, "sim/odom",
                                 lambda m: self.truth.append(self._pose(m)), 10)
        node.create_subscription(msgs.nav_msgs.Odometry, "odom",
                                 lambda m: self.est.append(self._pose(m)), 10)
        node.create_subscription(msgs.sensor_msgs.JointState, "joint_states",
                                 lambda m: self.js.append(time.monotonic()), 50)
        node.create_subscription(msgs.diagnostic_msgs.DiagnosticArray, "diagnostics",
                                 self._on_diag, 10)

    @staticmethod
    def _pose(m):
        p, o = m.pose.pose.position, m.pose.pose.orientation
        yaw = G.yaw_from_quat((o.x, o.y, o.z, o.w))
        return time.monotonic(), p.x, p.y, p.z, yaw

    def _on_diag(self, msg):
        for st in msg.status:
            self.diag[st.name] = {"message": st.message,
                                  **{kv.key: kv.value for kv in st.values}}

    def clear(self):
        for series in (self.truth, self.est, self.js):
            series.clear()


def motion(poses, seconds):
    """(distance [m] start->end, mean speed [m/s], mean height [m], heading change [deg])."""
    if len(poses) < 2:
        return float("nan"), float("nan"), float("nan"), float("nan")
    a, b = np.array(poses[0]), np.array(poses[-1])
    dist = float(math.hypot(b[1] - a[1], b[2] - a[2]))
    turn = math.degrees(math.remainder(b[4] - a[4], 2 * math.pi))
    return dist, dist / seconds, float(np.mean([p[3] for p in poses])), turn


def run(seconds=20.0, policy=DEFAULT_POLICY, command=DEFAULT_COMMAND, log=print,
        record=None, goal=None):
    """Run the demo; ``record`` names a bag directory to record every topic into; ``goal``
    (x, y) [m] in the odom frame sends a goal to the navigator instead of a cmd_vel, and
    the run ends on arrival or after ``seconds``.

    Raises:
        RuntimeError: the stack did not come up; ValueError: the bag exists already.
    """
    import os
    loopback_by_default()
    if record and os.path.exists(record):
        raise ValueError(f"--record {record!r}: exists already; give a new bag directory")
    from kraby_rl import ros
    from kraby_rl.ros import messages as msgs
    output = tempfile.TemporaryFile("w+")     # the stack's log, read back on failure
    launcher = subprocess.Popen([sys.executable, "-m", "kraby_rl.cli", "launch", "sim",
                                 f"policy:={policy}",
                                 *([f"record:={record}"] if record else [])],
                                stdout=output, stderr=subprocess.STDOUT, text=True)
    ros.init(args=["kraby_demo"])
    node = ros.Node("kraby_demo")
    watch = Watch(node, ros, msgs)
    cmd_pub = node.create_publisher(msgs.geometry_msgs.Twist, "cmd_vel", 10)
    twist = msgs.geometry_msgs.Twist()
    twist.linear.x, twist.linear.y, twist.angular.z = (float(c) for c in command)
    goal_pub = node.create_publisher(msgs.geometry_msgs.PoseStamped, "goal_pose", 10)
    navigating = [False]

    def arrived():
        return bool(watch.nav) and watch.nav[-1][1].startswith("arrived")

    def spin(until):
        next_cmd = 0.0
        while time.monotonic() < until and launcher.poll() is None:
            if navigating[0] and arrived():
                return
            if goal is None and time.monotonic() >= next_cmd:
                cmd_pub.publish(twist)
                next_cmd = time.monotonic() + 0.1
            ros.spin_once(node, timeout_sec=0.01)

    try:
        log(f"kraby demo: starting the sim stack with policy {policy!r}")
        deadline = time.monotonic() + 90
        while (not watch.states or watch.states[-1] != "OK") and time.monotonic() < deadline \
                and launcher.poll() is None:
            spin(time.monotonic() + 0.1)
        if not watch.states or watch.states[-1] != "OK":
            raise RuntimeError(f"the sim stack did not reach safety/state OK (states seen: "
                               f"{watch.states}); its output:\n" + _output(launcher, output))
        watch.clear()
        if goal is None:
            log(f"kraby demo: safety/state OK; running for {seconds:g} s at cmd_vel "
                f"{tuple(command)}")
        else:
            msg = msgs.geometry_msgs.PoseStamped()
            msg.header.frame_id = "odom"
            msg.pose.position.x, msg.pose.position.y = (float(v) for v in goal)
            msg.pose.orientation.w = 1.0
            spin(time.monotonic() + 0.3)        # a first odom and truth sample
            goal_pub.publish(msg)
            navigating[0] = True
            log(f"kraby demo: safety/state OK; goal ({goal[0]:g}, {goal[1]:g}) m sent on "
                f"goal_pose; up to {seconds:g} s")
        start = time.monotonic()
        spin(start + seconds)
        elapsed = time.monotonic() - start
        navigating[0] = False
        truth, est, js_count = list(watch.truth), list(watch.est), len(watch.js)
        spin(time.monotonic() + 1.2)        # one more round of diagnostics
    finally:
        node.destroy_node()
        ros.try_shutdown()
        stop_process(launcher, timeout=30)
    truth, est = motion(truth, elapsed), motion(est, elapsed)
    policy_diag = watch.diag.get("kraby_rl: policy_node", {})
    shield = watch.diag.get("kraby_rl: safety_shield", {})
    report = {
        "policy": policy, "seconds": round(elapsed, 2),
        "command": list(command) if goal is None else None,
        "safety_states": watch.states,
        "distance_m": round(truth[0], 4), "speed_m_s": round(truth[1], 4),
        "height_m": round(truth[2], 4), "turn_deg": round(truth[3], 2),
        "estimated_distance_m": round(est[0], 4), "estimated_speed_m_s": round(est[1], 4),
        "estimated_height_m": round(est[2], 4),
        "joint_states_hz": round(js_count / elapsed, 1),
        "targets_published": int(policy_diag.get("published", 0)),
        "inference_p99_ms": float(policy_diag.get("inference_p99_ms", "nan")),
        "shield": {k: v for k, v in shield.items() if k.startswith(("rejected", "clamped"))},
        "stack_exit_status": launcher.returncode,
    }
    if goal is not None:
        report["goal"] = list(goal)
        report["navigator_status"] = [text for _, text in watch.nav]
        report["arrived"] = arrived()
        end_truth, end_est = (watch.truth or [None])[-1], (watch.est or [None])[-1]
        report["goal_error_m"] = None if end_truth is None else round(
            math.hypot(end_truth[1] - goal[0], end_truth[2] - goal[1]), 4)
        report["estimated_goal_error_m"] = None if end_est is None else round(
            math.hypot(end_est[1] - goal[0], end_est[2] - goal[1]), 4)
        log(f"kraby demo: goal ({goal[0]:g}, {goal[1]:g}) "
            f"{'reached' if report['arrived'] else 'NOT reached'} after {elapsed:.1f} s: "
            f"{report['goal_error_m']} m from it (ground truth), "
            f"{report['estimated_goal_error_m']} m (odometry)")
    if record:
        from kraby_rl.ros.bag import bag_summary
        bag = bag_summary(record)
        report["bag"] = {"path": record, "messages": bag["messages"],
                         "size_bytes": bag["size_bytes"],
                         "duration_s": round(bag["duration_s"], 2),
                         "topics": {t: n for t, (_type, n) in sorted(bag["topics"].items())}}
        log(f"kraby demo: recorded {bag['messages']} messages on {len(bag['topics'])} topics "
            f"({bag['size_bytes'] / 1e6:.2f} MB, {bag['duration_s']:.1f} s) in {record}")
    log(f"kraby demo: {elapsed:.1f} s of policy {policy!r}: moved {report['distance_m']:.3f} m "
        f"(mean {report['speed_m_s']:.3f} m/s, turned {report['turn_deg']:.1f} deg), body "
        f"height {report['height_m']:.3f} m; the state estimator says "
        f"{report['estimated_distance_m']:.3f} m, {report['estimated_height_m']:.3f} m")
    log(f"kraby demo: safety states {' -> '.join(watch.states)}; joint_states "
        f"{report['joint_states_hz']} Hz; {report['targets_published']} targets, inference "
        f"p99 {report['inference_p99_ms']} ms; shield {report['shield'] or 'no rejections'}; "
        f"stack stopped with status {launcher.returncode}")
    return report


def _output(proc, output):
    stop_process(proc, timeout=20)
    output.seek(0)
    return output.read()[-4000:]


def main(args):
    import json
    try:
        report = run(args.seconds, args.policy, args.command,
                     log=lambda m: print(m, file=sys.stderr), record=args.record,
                     goal=args.goal)
    except (RuntimeError, ValueError) as exc:
        print(f"kraby demo: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0 if report["stack_exit_status"] == 0 else 1
