"""Control-loop rate of the real stack over the virtual bus.

Runs ``kraby launch real port:=virtual`` (virtual Herkulex bus at 500 kbaud driven by
PyBullet, servo_driver, robot_state_publisher, state_estimator, safety_shield, policy_node
with the shipped ``stand`` policy, each its own process) and, once safety/state is OK,
measures for ``seconds``: the rate of joint_states as a separate process receives them,
their inter-arrival jitter, and the driver's own cycle time (one read of the 18 servos plus
one S_JOG, from its diagnostics: p99 over its last 500 cycles, and overruns).
"""

import subprocess
import sys
import time

import numpy as np

from kraby_rl.stack.launcher import stop_process
from kraby_rl.ros.topic_tool import loopback_by_default


def run(seconds=10.0):
    loopback_by_default()
    from kraby_rl import ros
    from kraby_rl.ros.messages import diagnostic_msgs, sensor_msgs, std_msgs
    latched = ros.LATCHED
    launcher = subprocess.Popen([sys.executable, "-m", "kraby_rl.cli", "launch", "real",
                                 "port:=virtual", "policy:=stand"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    ros.init(args=["bench_loop"])
    node = ros.Node("bench_loop")
    arrivals, state, diag = [], [None], {}
    node.create_subscription(sensor_msgs.JointState, "joint_states",
                             lambda m: arrivals.append(time.perf_counter()), 50)
    node.create_subscription(std_msgs.String, "safety/state",
                             lambda m: state.__setitem__(0, m.data), latched)

    def on_diag(msg):
        for st in msg.status:
            if st.name == "kraby_rl: servo_driver":
                diag.update({kv.key: kv.value for kv in st.values})
    node.create_subscription(diagnostic_msgs.DiagnosticArray, "diagnostics", on_diag, 10)

    def spin(until):
        while time.monotonic() < until:
            ros.spin_once(node, timeout_sec=0.01)
    try:
        deadline = time.monotonic() + 90
        while state[0] != "OK" and time.monotonic() < deadline:
            ros.spin_once(node, timeout_sec=0.05)
        if state[0] != "OK":
            raise RuntimeError(f"the real stack did not reach safety/state OK in 90 s "
                               f"(state {state[0]!r})")
        spin(time.monotonic() + 2.0)                 # settle
        arrivals.clear()
        start = time.perf_counter()
        spin(time.monotonic() + seconds)
        elapsed = time.perf_counter() - start
        window = list(arrivals)
        diag.clear()
        spin(time.monotonic() + 1.5)                 # the next diagnostics covers the window
    finally:
        node.destroy_node()
        ros.try_shutdown()
        stop_process(launcher, timeout=30)
    gaps = np.diff(window) * 1e3
    return {"seconds": round(elapsed, 2), "joint_states": len(window),
            "rate_hz": round(len(window) / elapsed, 2),
            "interval_p50_ms": round(float(np.percentile(gaps, 50)), 2),
            "interval_p99_ms": round(float(np.percentile(gaps, 99)), 2),
            "interval_max_ms": round(float(gaps.max()), 2),
            "driver_cycle_p99_ms": float(diag.get("cycle_p99_ms", "nan")),
            "driver_cycles": int(diag.get("cycles", 0)),
            "driver_overruns": int(diag.get("overruns", -1))}
