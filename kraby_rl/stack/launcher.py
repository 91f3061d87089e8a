"""``kraby launch STACK [name:=value ...]``: run a stack without ROS 2's launch system.

Starts the same executables with the same arguments as launch/<stack>.launch.py (both read
`kraby_rl.stack.description`), prefixes their output with the node name, stops everything when one
node fails, forwards Ctrl-C/SIGTERM, and stops nodes in reverse start order (the servo
driver last). `port:=virtual` first starts the virtual Herkulex bus, driven by PyBullet.
DDS stays on this machine unless ROS_AUTOMATIC_DISCOVERY_RANGE or ROS_LOCALHOST_ONLY is set.
"""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from kraby_rl.stack import description as launching
from kraby_rl.ros.topic_tool import loopback_by_default

RECORDER_START_S = 30.0


def add_parser(sub):
    p = sub.add_parser("launch", help="run a stack (real, sim, sim_train) without ROS 2")
    p.add_argument("stack", choices=launching.STACKS)
    p.add_argument("arguments", nargs="*", metavar="name:=value",
                   help="launch arguments: " + "; ".join(
                       f"{k} (default {v!r}): {h}" for k, (v, h) in launching.ARGUMENTS.items()))
    p.add_argument("--duration", type=float, help="stop the stack after this many seconds")
    p.set_defaults(func=main)
    return p


READY = "kraby record: ready"
"""What the recorder prints once its readers exist; the stack's nodes start after it."""


def _pump(name, stream, out, ready=None):
    for line in stream:
        out.write(f"[{name}] {line}")
        out.flush()
        if ready is not None and line.startswith(READY):
            ready.set()
    stream.close()


def stop_process(proc, timeout=5.0):
    """SIGINT, then SIGKILL after ``timeout`` s; waits for the exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class RunningStack:
    """The processes of a stack: started in order, stopped in reverse (a context manager).

    Args:
        stack_name: 'real', 'sim' or 'sim_train'.
        values: launch arguments (``launching.parse_launch_arguments``).
        port_url: the driver's bus URL; with port:=virtual and no URL, a virtual bus
            (PyBullet) is started first and closed last.
        out: where node output goes, each line prefixed with the node's name.
    """

    def __init__(self, stack_name, values, port_url=None, out=None):
        self.stack_name, self.values, self.port_url = stack_name, values, port_url
        self.out = out or sys.stderr
        self.bus = None
        self.procs = []
        self.observers = []         # recorder, Foxglove server: first up, last down

    def _start(self, name, cmd, observer=False, ready=None):
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        threading.Thread(target=_pump, args=(name, proc.stdout, self.out, ready),
                         daemon=True).start()
        (self.observers if observer else self.procs).append((name, proc))
        return proc

    def start(self):
        values = self.values
        if self.stack_name == "real" and values["port"] == "virtual" and not self.port_url:
            from kraby_rl.herkulex.virtual.fake_bus import FakeBusProcess
            self.bus = FakeBusProcess(["--pty", "--physics", "pybullet"])
            self.port_url = self.bus.url
            self.out.write(f"kraby launch: virtual Herkulex bus on {self.port_url}\n")
        record = launching.recorder_command(values)
        if record:
            ready = threading.Event()
            proc = self._start("recorder", record, observer=True, ready=ready)
            # the bag must hold the first messages: the nodes start once its readers exist
            deadline = time.monotonic() + RECORDER_START_S
            while not ready.wait(0.05) and proc.poll() is None \
                    and time.monotonic() < deadline:
                pass
        foxglove = launching.foxglove_command(values)
        if foxglove:
            self._start("foxglove", foxglove, observer=True)
        for spec in launching.stack(self.stack_name, values, self.port_url):
            self._start(spec.name, [sys.executable, "-m", spec.module,
                                    *spec.ros_args(values["namespace"])])
        if values["rviz"] == "true":
            if shutil.which("rviz2"):
                self._start("rviz2", ["rviz2", "-d", launching.rviz_config()])
            else:
                self.out.write("kraby launch: rviz:=true but rviz2 is not installed (it "
                               "comes with ROS 2); the stack runs without it\n")
        return self

    def ended(self):
        """(name, exit status) of the first process that has ended, or None."""
        for name, proc in self.observers + self.procs:
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self, timeout=5.0):
        """SIGINT to every node at once (as ros2 launch does), then wait; SIGKILL for any
        still running after ``timeout`` s. One at a time, the shield would see the policy
        go quiet first and report a stale-command fault for a normal Ctrl-C. The observers
        (recorder, Foxglove server) are stopped after the nodes, so a bag ends with the
        nodes' last messages."""
        for group in (self.procs, self.observers):
            for _name, proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            deadline = time.monotonic() + timeout
            for _name, proc in reversed(group):
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs, self.observers = [], []
        if self.bus is not None:
            self.bus.close()
            self.bus = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


def main(args):
    loopback_by_default()
    try:
        values = launching.parse_launch_arguments(args.arguments)
    except ValueError as exc:
        print(f"kraby launch: {exc}", file=sys.stderr)
        return 2
    if values["record"] and os.path.exists(values["record"]):
        print(f"kraby launch: launch argument record: {values['record']!r} exists already; "
              "give a new bag directory", file=sys.stderr)
        return 2
    stopping = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stopping.set())
                for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        with RunningStack(args.stack, values) as running:
            end = None if args.duration is None else time.monotonic() + args.duration
            while not stopping.is_set() and (end is None or time.monotonic() < end):
                ended = running.ended()
                if ended:
                    name, code = ended
                    print(f"kraby launch: {name} exited with status {code}; stopping the "
                          f"stack", file=sys.stderr)
                    status = 1 if code else 0
                    break
                stopping.wait(0.1)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return status
