"""``kraby launch STACK [name:=value ...]``: run a stack without ROS 2's launch system.

Starts the same executables with the same arguments as launch/<stack>.launch.py (both read
`kraby_rl.launching`), prefixes their output with the node name, stops everything when one
node fails, forwards Ctrl-C/SIGTERM, and stops nodes in reverse start order (the servo
driver last). `port:=virtual` first starts the virtual Herkulex bus, driven by PyBullet.
DDS stays on this machine unless ROS_AUTOMATIC_DISCOVERY_RANGE or ROS_LOCALHOST_ONLY is set.
"""

import shutil
import signal
import subprocess
import sys
import threading
import time

from kraby_rl import launching
from kraby_rl.ros.topic_tool import loopback_by_default


def add_parser(sub):
    p = sub.add_parser("launch", help="run a stack (real, sim, sim_train) without ROS 2")
    p.add_argument("stack", choices=launching.STACKS)
    p.add_argument("arguments", nargs="*", metavar="name:=value",
                   help="launch arguments: " + "; ".join(
                       f"{k} (default {v!r}): {h}" for k, (v, h) in launching.ARGUMENTS.items()))
    p.add_argument("--duration", type=float, help="stop the stack after this many seconds")
    p.set_defaults(func=main)
    return p


def _pump(name, stream):
    for line in stream:
        sys.stderr.write(f"[{name}] {line}")
    stream.close()


def _start(name, cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    threading.Thread(target=_pump, args=(name, proc.stdout), daemon=True).start()
    return proc


def stop_process(proc, timeout=5.0):
    """SIGINT, then SIGKILL after ``timeout`` s; waits for the exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(args):
    loopback_by_default()
    try:
        values = launching.parse_launch_arguments(args.arguments)
    except ValueError as exc:
        print(f"kraby launch: {exc}", file=sys.stderr)
        return 2
    stopping = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stopping.set())
                for s in (signal.SIGINT, signal.SIGTERM)}
    bus = None
    procs = []
    status = 0
    try:
        port_url = None
        if values["port"] == "virtual":
            from kraby_rl.herkulex.fake_bus import FakeBusProcess
            bus = FakeBusProcess(["--pty", "--physics", "pybullet"])
            port_url = bus.url
            print(f"kraby launch: virtual Herkulex bus on {port_url}", file=sys.stderr)
        for spec in launching.stack(args.stack, values, port_url):
            cmd = [sys.executable, "-m", spec.module, *spec.ros_args(values["namespace"])]
            procs.append((spec.name, _start(spec.name, cmd)))
        if values["rviz"] == "true":
            if shutil.which("rviz2"):
                procs.append(("rviz2", _start("rviz2", ["rviz2", "-d", launching.rviz_config()])))
            else:
                print("kraby launch: rviz:=true but rviz2 is not installed (it comes with "
                      "ROS 2); the stack runs without it", file=sys.stderr)
        end = None if args.duration is None else time.monotonic() + args.duration
        while not stopping.is_set() and (end is None or time.monotonic() < end):
            ended = [(n, p.returncode) for n, p in procs if p.poll() is not None]
            if ended:
                name, code = ended[0]
                print(f"kraby launch: {name} exited with status {code}; stopping the stack",
                      file=sys.stderr)
                status = 1 if code else 0
                break
            stopping.wait(0.1)
    finally:
        for _name, proc in reversed(procs):
            stop_process(proc)
        if bus is not None:
            bus.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return status
