"""E-stop latency: emergency_stop published in one process -> brake packet on the bus.

Processes: the virtual Herkulex bus (pty, 500 kbaud), servo_driver, a publisher of
emergency_stop, and this one (which plays the shield: it sends joint_commands so torque is
on before each trial). The publisher reads the monotonic clock just before `publish()`;
the virtual bus logs when each torque-control write arrived. Latency = arrival - publish,
so it includes DDS, the driver's executor, its bus thread taking the bus between two servo
transactions, and the 10-byte packet's wire time. Trials start at random phases of the
driver's 50 Hz cycle.
"""

import random
import subprocess
import sys
import time

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.herkulex.virtual.fake_bus import FakeBusProcess
from kraby_rl.ros.topic_tool import loopback_by_default

BRAKE = 0x40


def publisher_main():
    """Child: each stdin line 'true'/'false' -> publish it; print the time just before."""
    from kraby_rl.ros.embedded import context as ctx
    from kraby_rl.ros.embedded.messages import get_message
    from kraby_rl.ros.embedded.node import Node
    ctx.init(args=["estop_pub"])
    node = Node("bench_estop_publisher")
    bool_cls = get_message("std_msgs/msg/Bool")
    pub = node.create_publisher(bool_cls, "emergency_stop", 10)
    while pub.get_subscription_count() == 0:
        time.sleep(0.01)
    print("ready", flush=True)
    while True:
        line = sys.stdin.readline()      # not `for line in sys.stdin`: that reads ahead
        if not line:
            break
        msg = bool_cls(data=line.strip() == "true")
        t = time.perf_counter()
        pub.publish(msg)
        print(repr(t), flush=True)
    node.destroy_node()
    ctx.try_shutdown()


def run(trials=30):
    loopback_by_default()
    from kraby_rl.ros.embedded import context as ctx
    from kraby_rl.ros.embedded.executor import spin_once
    from kraby_rl.ros.embedded.messages import get_message
    from kraby_rl.ros.embedded.node import Node
    latencies = []
    with FakeBusProcess(["--pty"]) as bus:
        driver = subprocess.Popen([sys.executable, "-m", "kraby_rl.nodes.servo_driver_node",
                                   "--ros-args", "-p", f"port:={bus.url}"],
                                  stderr=subprocess.DEVNULL)
        # its stderr is dropped: a death is reported from its exit status
        pub = subprocess.Popen([sys.executable, "-m", "kraby_rl.bench.estop", "publisher"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ctx.init(args=["bench_estop"])
        node = Node("bench_estop_shield")
        js_cls = get_message("sensor_msgs/msg/JointState")
        cmd = node.create_publisher(js_cls, "joint_commands", 10)
        command = js_cls(name=list(J.JOINT_NAMES), position=J.DEFAULT_POSE.tolist())

        def spin(seconds, send=True):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                if send:
                    cmd.publish(command)
                spin_once(node, timeout_sec=0.02)

        try:
            assert pub.stdout.readline().strip() == "ready"
            for _ in range(trials):
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    if driver.poll() is not None:
                        raise RuntimeError(f"servo_driver exited with status {driver.returncode}"
                                           f" during the bench")
                    spin(0.1)
                    if set(bus.control(cmd="state")["torque"]) == {0x60}:
                        break
                time.sleep(random.uniform(0.0, 0.02))
                pub.stdin.write("true\n")
                pub.stdin.flush()
                t_pub = float(pub.stdout.readline())
                brake_at = None
                deadline = time.monotonic() + 5
                while brake_at is None and time.monotonic() < deadline:
                    # The bus keeps its last torque writes with their times: ask once the
                    # brake is surely out, not in a tight loop (each answer costs the
                    # real-time virtual bus a JSON snapshot, which delays what is measured).
                    time.sleep(0.03)
                    state = bus.control(cmd="state")
                    for t, _pid, value in state["torque_log"]:
                        if value == BRAKE and t + state["clock_origin"] > t_pub:
                            brake_at = t + state["clock_origin"]
                            break
                if brake_at is not None:
                    latencies.append((brake_at - t_pub) * 1e3)
                pub.stdin.write("false\n")
                pub.stdin.flush()
                pub.stdout.readline()
                spin(0.05, send=False)
        finally:
            node.destroy_node()
            ctx.shutdown()
            pub.stdin.close()           # EOF ends the publisher's loop
            for p in (pub, driver):
                try:
                    p.wait(timeout=5) if p is pub else p.terminate()
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    lat = np.array(latencies)
    return {"trials": trials, "braked": int(lat.size),
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
            "max_ms": round(float(lat.max()), 2) if lat.size else None}


if __name__ == "__main__":
    if sys.argv[1:2] == ["publisher"]:
        publisher_main()
