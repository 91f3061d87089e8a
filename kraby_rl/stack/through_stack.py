"""``kraby eval POLICY --through-stack``: the same episodes through the full real stack.

Each episode starts a fresh virtual Herkulex bus (500 kbaud, PyBullet robot standing at the
origin) and the real stack on it (servo_driver over the serial protocol, robot_state_publisher,
state_estimator, safety_shield, policy_node with POLICY, each its own process over loopback
DDS), waits for safety/state OK and for the stack to stand the robot up (the virtual robot,
like the real one, powers up torque-free on its belly), then sends the command on cmd_vel
for ``seconds`` and reads the
body's ground truth from the virtual bus. Figures are computed as in the training env
(``core.gait_metrics``): mean velocity in the initial heading frame, yaw rate, heading
change, falls; plus every shield trip (safety/state leaving OK).
"""

from __future__ import annotations

import math
import os
import tempfile
import time

import numpy as np

from kraby_rl.core import geometry as G
from kraby_rl.core import joints as J
from kraby_rl.ros.topic_tool import loopback_by_default


def _episode(node, ros, msgs, bus_args, values, seconds, command, out):
    from kraby_rl.herkulex.virtual.fake_bus import FakeBusProcess
    from kraby_rl.stack.launcher import RunningStack
    states, diag = [], {}
    latched = ros.LATCHED
    sub = node.create_subscription(msgs.std_msgs.String, "safety/state",
                                   lambda m: states.append(m.data), latched)
    diag_sub = node.create_subscription(msgs.diagnostic_msgs.DiagnosticArray, "diagnostics",
                                        lambda m: _keep_diagnostics(diag, m), 10)
    cmd_pub = node.create_publisher(msgs.geometry_msgs.Twist, "cmd_vel", 10)
    twist = msgs.geometry_msgs.Twist()
    twist.linear.x, twist.linear.y, twist.angular.z = (float(c) for c in command)
    try:
        with FakeBusProcess(bus_args) as bus, \
                RunningStack("real", values, port_url=bus.url, out=out) as stack:
            deadline = time.monotonic() + 60
            while not (states and states[-1] == "OK"):
                if time.monotonic() > deadline or stack.ended():
                    raise RuntimeError(f"the real stack did not reach safety/state OK "
                                       f"(states {states}, ended {stack.ended()})")
                ros.spin_once(node, timeout_sec=0.05)
            # the virtual robot powers up torque-free, lying on its belly, as the real one
            # does; the stack stands it up (cmd_vel zero) before the episode starts
            standing_since, deadline = None, time.monotonic() + 30
            while standing_since is None or time.monotonic() - standing_since < 0.5:
                s = bus.control(cmd="state")
                up = s["base_pos"][2] > J.STANDING_HEIGHT - 0.015 and not s["body_contact"]
                standing_since = (standing_since or time.monotonic()) if up else None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the real stack did not stand the robot up in 30 s "
                                       f"(body height {s['base_pos'][2]:.3f} m)")
                ros.spin_once(node, timeout_sec=0.05)
            ok_from = len(states)
            truth = []
            start = time.monotonic()
            next_cmd = next_sample = start
            fell = False
            while time.monotonic() - start < seconds and not fell:
                now = time.monotonic()
                if now >= next_cmd:
                    cmd_pub.publish(twist)
                    next_cmd = now + 0.1
                if now >= next_sample:
                    s = bus.control(cmd="state")
                    truth.append(s)
                    next_sample = now + 0.1
                    fell = G.fallen(s["base_pos"][2], G.quat_to_gravity(s["base_quat"]),
                                    s["body_contact"])
                ros.spin_once(node, timeout_sec=0.005)
            trips = [st for st in states[ok_from:] if st != "OK"]
            if trips:
                trips = _explained(trips, diag, ros, node)
    finally:
        node.destroy_subscription(sub)
        node.destroy_subscription(diag_sub)
        node.destroy_publisher(cmd_pub)
    return _figures(truth, command, fell, trips)


def _keep_diagnostics(diag, msg):
    for st in msg.status:
        diag[st.name] = (time.monotonic(), st.message, {kv.key: kv.value for kv in st.values})


def _explained(trips, diag, ros, node):
    """Each trip with the shield's own words for it (value and limit) and what the servo
    driver reported then: a failed check says why the robot was stopped. The shield reports
    its cause in its once-a-second diagnostics; this waits for the next one."""
    asked, deadline = time.monotonic(), time.monotonic() + 2.5
    while time.monotonic() < deadline:
        shield = diag.get("kraby_rl: safety_shield")
        if shield and shield[0] > asked and shield[2].get("cause"):
            break
        ros.spin_once(node, timeout_sec=0.05)
    shield = diag.get("kraby_rl: safety_shield")
    cause = shield[2].get("cause") if shield else None
    driver = diag.get("kraby_rl: servo_driver")
    bus = (f"; servo_driver: {driver[1]}, " + ", ".join(
        f"{k}={v}" for k, v in driver[2].items()
        if k in ("rate_hz", "overruns", "cycle_p99_ms") or k.startswith(("servo_", "bus_"))))\
        if driver else ""
    return [f"{t} ({cause or 'cause not reported'}{bus})" if i == 0 else t
            for i, t in enumerate(trips)]


def _figures(truth, command, fell, trips):
    t = np.array([s["sim_t"] for s in truth])
    pos = np.array([s["base_pos"] for s in truth])
    yaw = np.unwrap([G.yaw_from_quat(s["base_quat"]) for s in truth])
    dur = max(t[-1] - t[0], 1e-9)
    d = pos[-1, :2] - pos[0, :2]
    c, s = math.cos(yaw[0]), math.sin(yaw[0])
    return {"command": [float(x) for x in command], "duration_s": float(dur),
            "vx": float((c * d[0] + s * d[1]) / dur), "vy": float((-s * d[0] + c * d[1]) / dur),
            "yaw_rate": float((yaw[-1] - yaw[0]) / dur),
            "heading_change_deg": float(math.degrees(yaw[-1] - yaw[0])),
            "height_min": float(pos[:, 2].min()), "fell": bool(fell), "trips": trips}


def evaluate_through_stack(policy: str, episodes: int = 1, seconds: float = 20.0,
                           command=(0.15, 0.0, 0.0), log=print) -> dict:
    """Run ``episodes`` episodes of ``policy`` (an export dir or shipped name) through the
    real stack over the virtual bus; returns a summary like ``evaluate``'s."""
    loopback_by_default()
    from kraby_rl import ros
    from kraby_rl.stack import description as launching
    from kraby_rl.ros import messages as msgs
    values = launching.parse_launch_arguments([f"policy:={os.path.abspath(policy)}"
                                               if os.path.isdir(policy) else
                                               f"policy:={policy}", "port:=virtual"])
    ros.init(args=["kraby_eval"])
    node = ros.Node("kraby_eval_through_stack")
    results = []
    with tempfile.NamedTemporaryFile("w+", prefix="kraby_eval_stack_", suffix=".log",
                                     delete=False) as out:
        try:
            for i in range(episodes):
                res = _episode(node, ros, msgs, ["--pty", "--physics", "pybullet"], values,
                               seconds, command, out)
                results.append(res)
                log(f"stack episode {i}: cmd ({command[0]:+.2f} m/s, {command[1]:+.2f} m/s, "
                    f"{command[2]:+.2f} rad/s) -> ({res['vx']:+.3f} m/s, {res['vy']:+.3f} m/s, "
                    f"{res['yaw_rate']:+.3f} rad/s)  {'FELL' if res['fell'] else 'ok  '}  "
                    f"heading {res['heading_change_deg']:+.1f} deg  trips "
                    f"{res['trips'] or 'none'}")
        finally:
            node.destroy_node()
            ros.try_shutdown()
    log(f"(node output of the stack runs: {out.name})")
    keys = ("vx", "vy", "yaw_rate", "heading_change_deg")
    return {"policy": policy, "episodes": episodes, "seconds": seconds,
            "falls": sum(r["fell"] for r in results),
            "trips": [t for r in results for t in r["trips"]],
            "mean": {k: float(np.mean([r[k] for r in results])) for k in keys},
            "episodes_detail": results, "log": out.name}


def side_by_side(env_summary: dict, stack_summary: dict) -> str:
    """A table of the training env's and the stack's figures, with the stack/env ratio."""
    rows = [f"{'figure':<22}{'training env':>14}{'through stack':>15}{'stack/env':>11}"]
    for key, unit in (("vx", "m/s"), ("vy", "m/s"), ("yaw_rate", "rad/s"),
                      ("heading_change_deg", "deg")):
        a, b = env_summary["mean"][key], stack_summary["mean"][key]
        ratio = f"{b / a:.2f}" if abs(a) > 1e-3 else "-"
        rows.append(f"{key + ' [' + unit + ']':<22}{a:>14.3f}{b:>15.3f}{ratio:>11}")
    rows.append(f"{'falls':<22}{env_summary['falls']:>14}{stack_summary['falls']:>15}")
    rows.append(f"{'shield trips':<22}{'-':>14}{len(stack_summary['trips']):>15}")
    return "\n".join(rows)
