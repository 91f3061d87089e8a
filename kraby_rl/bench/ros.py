"""Middleware benchmarks: pub/sub latency between two processes, and timer accuracy.

pubsub: a publisher process sends an 18-joint JointState (names, position, velocity,
effort) at `rate_hz`, stamped with the system clock just before `publish()`; this process
receives it through an ordinary subscription callback and takes `now - stamp`, so the
figure includes serialisation, DDS over loopback, the executor's wake-up and
deserialisation: what a node sees. Both processes use the embedded implementation.

timer: one node, one timer at `rate_hz` for `seconds`; the period between callbacks is
measured with the monotonic clock.
"""

import subprocess
import sys
import time

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.ros.topic_tool import loopback_by_default

TOPIC = "bench/joint_states"


def _joint_state(js_cls, k):
    q = (J.DEFAULT_POSE + 0.1 * np.sin(np.arange(J.NUM_JOINTS) + 0.01 * k)).tolist()
    return js_cls(name=list(J.JOINT_NAMES), position=q, velocity=[0.0] * J.NUM_JOINTS,
                  effort=[0.0] * J.NUM_JOINTS)


def publisher_main(count, rate_hz):
    """The publisher process: wait for the subscriber, then publish `count` messages."""
    from kraby_rl.ros.embedded import context as ctx
    from kraby_rl.ros.embedded.messages import get_message
    from kraby_rl.ros.embedded.node import Node
    ctx.init(args=["bench_pub"])
    node = Node("bench_publisher")
    js_cls = get_message("sensor_msgs/msg/JointState")
    pub = node.create_publisher(js_cls, TOPIC, 10)
    deadline = time.monotonic() + 20
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    period = 1.0 / rate_hz
    next_at = time.monotonic()
    for k in range(count):
        msg = _joint_state(js_cls, k)
        now = time.time_ns()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 1_000_000_000)
        pub.publish(msg)
        next_at += period
        time.sleep(max(0.0, next_at - time.monotonic()))
    pub.wait_for_acks(2.0)
    node.destroy_node()
    ctx.shutdown()


def run_pubsub(count=2000, rate_hz=200.0):
    loopback_by_default()
    from kraby_rl.ros.embedded import context as ctx
    from kraby_rl.ros.embedded.executor import spin_once
    from kraby_rl.ros.embedded.messages import get_message
    from kraby_rl.ros.embedded.node import Node
    ctx.init(args=["bench_sub"])
    node = Node("bench_subscriber")
    latencies = []

    def received(msg):
        now = time.time_ns()
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        latencies.append((now - stamp) / 1e6)
        assert len(msg.position) == J.NUM_JOINTS

    node.create_subscription(get_message("sensor_msgs/msg/JointState"), TOPIC, received, 10)
    proc = subprocess.Popen([sys.executable, "-m", "kraby_rl.bench.ros", "publisher",
                             str(count), str(rate_hz)])
    try:
        deadline = time.monotonic() + 30 + count / rate_hz
        while proc.poll() is None and time.monotonic() < deadline:
            spin_once(node, timeout_sec=0.05)
        for _ in range(20):
            spin_once(node, timeout_sec=0.01)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=5)
        node.destroy_node()
        ctx.shutdown()
    lat = np.array(latencies)
    return {"messages_sent": count, "messages_received": int(lat.size), "rate_hz": rate_hz,
            "p50_ms": round(float(np.percentile(lat, 50)), 3) if lat.size else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 3) if lat.size else None,
            "max_ms": round(float(lat.max()), 3) if lat.size else None,
            "bytes_per_message": len(_joint_state(
                get_message("sensor_msgs/msg/JointState"), 0).serialize())}


def run_timer(seconds=10.0, rate_hz=50.0):
    loopback_by_default()
    from kraby_rl.ros.embedded import context as ctx
    from kraby_rl.ros.embedded.executor import spin_once
    from kraby_rl.ros.embedded.node import Node
    ctx.init(args=["bench_timer"])
    node = Node("bench_timer")
    calls = []
    node.create_timer(1.0 / rate_hz, lambda: calls.append(time.monotonic()))
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        ctx.shutdown()
    periods = np.diff(np.array(calls)) * 1e3
    nominal = 1e3 / rate_hz
    jitter = np.abs(periods - nominal)
    return {"rate_hz": rate_hz, "seconds": seconds, "calls": len(calls),
            "mean_period_ms": round(float(periods.mean()), 4),
            "mean_period_error_pct": round(float(abs(periods.mean() - nominal) / nominal * 100),
                                           4),
            "p99_jitter_ms": round(float(np.percentile(jitter, 99)), 3),
            "max_jitter_ms": round(float(jitter.max()), 3)}


if __name__ == "__main__":
    if sys.argv[1:2] == ["publisher"]:
        publisher_main(int(sys.argv[2]), float(sys.argv[3]))
