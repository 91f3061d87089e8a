"""The virtual bus as a process: ``kraby fake-bus``
(or ``python -m kraby_rl.herkulex.virtual.fake_bus``).

It prints one JSON line on stdout with the port to open (``url``), then serves until
SIGINT/SIGTERM (or a ``quit`` command). Stdin takes one JSON command per line, each answered by
one JSON line on stdout, so tests and tools can inject faults into a running bus::

    {"cmd": "fault", "fault": "drop", "id": 3, "count": 5}
    {"cmd": "fault", "fault": "mute", "id": 7, "on": true}
    {"cmd": "fault", "fault": "overload", "id": 4, "on": true}
    {"cmd": "fault", "fault": "corrupt", "count": 10}
    {"cmd": "reopen", "down_s": 1.0}      # the port disappears, then comes back
    {"cmd": "state"}                      # ground truth: joint angles, torque, errors
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time

from kraby_rl.herkulex.virtual.transports import PtyTransport, TcpTransport
from kraby_rl.herkulex.virtual.bus import VirtualBus


def _wait_until(clock, t: float, spin_s: float = 0.001) -> None:
    """Sleep, then spin the last ``spin_s``, until ``clock() >= t`` (a sleeping process
    wakes up tens of microseconds late; a servo's UART does not). Only the last ``spin_s``
    spins: a reply is due 0.3-0.6 ms after its request, and spinning all of that (as this
    did when it slept only waits over ``spin_s`` + 0.5 ms) kept 39 % of a CPU busy at
    real-time priority, starving the kernel worker that moves pty bytes to the driver."""
    left = t - clock()
    if left > spin_s:
        time.sleep(left - spin_s)
    while clock() < t:
        pass


class FakeBusServer:
    """Runs a ``VirtualBus`` on a transport in real time, with a JSON control channel."""

    def __init__(self, bus: VirtualBus, transport, control_fd: int | None = None,
                 out=None):
        self.bus = bus
        self.transport = transport
        self.control_fd = control_fd
        self.out = out or sys.stdout
        self._t0 = time.perf_counter()
        self._reopen_at = None
        self._ctrl_buf = b""
        self.running = True
        self.stop_at = None        # a Ctrl-C: serve until then, then stop
        self.hot_poll_s = 0.02
        """Keep polling this long after the last request [s] (0 = always block in select)."""
        self.spin_s = 0.001
        """Spin (instead of sleeping) this long before a reply is due [s]."""

    def realtime(self) -> None:
        """The process has real-time priority: a real-time thread wakes from select or sleep
        within microseconds, and one that spins is throttled by the kernel (50 ms stopped
        in every second, sched_rt_runtime_us) once it has used 95 % of a CPU, which is a
        servo that stops answering for 50 ms. So block instead of polling, spin only
        the last 100 us before a reply."""
        self.hot_poll_s = 0.0
        self.spin_s = 0.0001

    def clock(self) -> float:
        return time.perf_counter() - self._t0

    def _send(self, replies) -> None:
        for due, data in replies:
            _wait_until(self.clock, due, self.spin_s)
            self.transport.write(data)

    def _reply(self, obj) -> None:
        self.out.write(json.dumps(obj) + "\n")
        self.out.flush()

    def control(self, msg: dict) -> dict:
        """Execute one control command; returns the answer."""
        cmd = msg.get("cmd")
        if cmd == "fault":
            self.bus.inject(msg.get("fault"), msg.get("id"), int(msg.get("count", 1)),
                            bool(msg.get("on", True)))
            return {"ok": True}
        if cmd == "reopen":
            self.transport.close()
            self._reopen_at = self.clock() + float(msg.get("down_s", 1.0))
            return {"ok": True}
        if cmd == "state":
            # clock_origin: add it to bus times to get time.perf_counter() (CLOCK_MONOTONIC)
            return {"ok": True, "clock_origin": self._t0, **self.bus.snapshot()}
        if cmd == "quit":
            self.running = False
            return {"ok": True}
        raise ValueError(f"unknown control command {cmd!r}: expected fault, reopen, state "
                         f"or quit")

    def _on_control(self) -> None:
        chunk = os.read(self.control_fd, 4096)
        if not chunk:          # stdin closed (e.g. /dev/null): keep serving, no control
            self.control_fd = None
            return
        self._ctrl_buf += chunk
        while b"\n" in self._ctrl_buf:
            line, self._ctrl_buf = self._ctrl_buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                answer = self.control(json.loads(line))
            except (ValueError, TypeError) as exc:
                answer = {"ok": False, "error": str(exc)}
            self._reply(answer)

    def serve(self) -> None:
        bus, tr = self.bus, self.transport
        hot_until = 0.0
        while self.running:
            now = self.clock()
            if self.stop_at is not None and now >= self.stop_at:
                break
            hot = now < hot_until
            if not hot:     # while the host is talking, physics runs inside receive()
                bus.advance(now)
            self._send(bus.check_garbage(now))
            if self._reopen_at is not None and now >= self._reopen_at:
                tr.open()
                self._reopen_at = None
            fds = tr.fds() + ([self.control_fd] if self.control_fd is not None else [])
            # Right after traffic, poll instead of sleeping in select: a servo's UART is
            # hardware and sees a request at once; a process woken by the kernel would add
            # tens of microseconds to every transaction.
            try:
                ready, _, _ = select.select(fds, [], [], 0.0 if hot else bus.joints.step_s)
            except InterruptedError:
                continue
            for fd in ready:
                if fd == self.control_fd:
                    self._on_control()
                    continue
                data = tr.read(fd)
                if data:
                    self._send(bus.receive(data, self.clock()))
                    hot_until = self.clock() + self.hot_poll_s


class FakeBusProcess:
    """``kraby fake-bus`` in a child process (for tests, benchmarks and launchers).

    Args:
        args: command-line options, e.g. ``["--tcp", "--port", "0"]``.
        start_timeout_s: how long to wait for the port line [s].

    Use as a context manager; ``close()`` stops exactly the process it started.
    """

    def __init__(self, args=(), start_timeout_s: float = 30.0):
        import subprocess
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kraby_rl.herkulex.virtual.fake_bus", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        ready, _, _ = select.select([self.proc.stdout], [], [], start_timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"kraby fake-bus {' '.join(args)} did not start within "
                               f"{start_timeout_s} s")
        self.info = json.loads(line)
        self.url = self.info["url"]
        self.control(cmd="state")     # answered from inside the serve loop: it is running

    def control(self, **msg) -> dict:
        """Send one control command (see the module docstring) and return the answer."""
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if not answer.get("ok"):
            raise RuntimeError(f"fake-bus refused {msg}: {answer.get('error')}")
        return answer

    def close(self) -> None:
        import subprocess
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


HIDDEN = ("servo_strength", "servo_speed", "friction", "command_delay_s")
"""The PyBullet robot's hidden parameters (options --servo-strength ...)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kraby fake-bus",
                                description="Virtual bus of 18 Herkulex DRS-0101 servos.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal "
                       "(default)")
    where.add_argument("--tcp", action="store_true", help="serve on a TCP port (ser2net raw)")
    p.add_argument("--link", help="pty: keep a symbolic link to the device at this path")
    p.add_argument("--host", default="127.0.0.1", help="tcp: address to bind "
                   "(default 127.0.0.1)")
    p.add_argument("--port", type=int, default=2000, help="tcp: port (default 2000, 0 = any)")
    p.add_argument("--baud", type=int, default=500_000, help="wire timing [bit/s]")
    p.add_argument("--latency-us", type=float, default=100.0, help="servo response latency "
                   "[us]")
    p.add_argument("--post-jog-us", type=float, default=0.0,
                   help="time servos need after a JOG before answering [us]")
    p.add_argument("--no-timing", action="store_true", help="answer at once (no wire time)")
    p.add_argument("--physics", choices=["first-order", "pybullet"], default="first-order",
                   help="joint physics: fast first-order model or the PyBullet robot")
    p.add_argument("--gui", action="store_true", help="pybullet: open the GUI")
    robot = p.add_argument_group("pybullet: the robot's hidden parameters (for kraby sysid)")
    robot.add_argument("--servo-strength", type=float, default=1.0,
                       help="stall torque x nominal, every servo (default 1)")
    robot.add_argument("--servo-speed", type=float, default=1.0,
                       help="no-load speed x nominal, every servo (default 1)")
    robot.add_argument("--friction", type=float, default=0.8,
                       help="foot friction coefficient (default 0.8)")
    robot.add_argument("--command-delay-s", type=float, default=0.0,
                       help="each servo acts this late on its commands [s] (default 0)")
    p.add_argument("--linger-s", type=float, default=1.5,
                   help="after Ctrl-C (SIGINT), keep answering this long so the driver can "
                        "leave the servos safe [s] (SIGTERM stops at once)")
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    hidden = {dest: getattr(args, dest) for dest in HIDDEN}
    changed = ["--" + d.replace("_", "-") for d, v in hidden.items()
               if v != parser.get_default(d)]
    if changed and args.physics != "pybullet":
        parser.error(f"{', '.join(changed)}: expected --physics pybullet (the first-order "
                     f"model has no such parameter), found --physics {args.physics}")
    if args.physics == "pybullet":
        from kraby_rl.herkulex.virtual.joints import PyBulletJoints
        try:
            joints = PyBulletJoints(strength=args.servo_strength, speed=args.servo_speed,
                                    command_delay_s=args.command_delay_s,
                                    friction=args.friction, gui=args.gui)
        except ValueError as exc:
            print(f"kraby fake-bus: {exc}", file=sys.stderr)
            return 2
    else:
        joints = None
    bus = VirtualBus(joints, baudrate=args.baud, latency_s=args.latency_us * 1e-6,
                     post_jog_s=args.post_jog_us * 1e-6, timing=not args.no_timing)
    try:
        transport = (TcpTransport(args.host, args.port) if args.tcp
                     else PtyTransport(args.link))
    except OSError as exc:
        print(f"kraby fake-bus: cannot open the {'TCP port' if args.tcp else 'pty'}: {exc}",
              file=sys.stderr)
        return 2
    server = FakeBusServer(bus, transport, control_fd=sys.stdin.fileno())
    # The virtual bus stands in for 18 servos, which are hardware: a busy host does not make
    # a real servo answer late, so the simulator gets the highest priority it may have.
    from kraby_rl.core.realtime import take_priority
    priority = take_priority(50)
    if priority.startswith("SCHED_"):
        server.realtime()

    def _stop(signum, frame):
        # Ctrl-C reaches the whole process group: the servo driver gets it too and brakes the
        # servos on its way out, so the servos keep answering for a moment (a real robot does
        # not vanish on Ctrl-C). SIGTERM stops at once. Either way, a second signal (the
        # terminal's and then ros2 launch's) must not kill the shutdown half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if signum == signal.SIGINT and args.linger_s > 0:
            server.stop_at = server.clock() + args.linger_s
        else:
            server.running = False
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    info = {"url": transport.url, "kind": transport.kind, "baudrate": args.baud,
            "latency_us": args.latency_us, "physics": args.physics, "pid": os.getpid(),
            **(hidden if args.physics == "pybullet" else {}),
            "priority": priority}
    if transport.kind == "pty":
        info["device"] = transport.path
    print(json.dumps(info), flush=True)
    print(f"kraby fake-bus: 18 DRS-0101 servos (IDs 0..17) at {args.baud} baud on "
          f"{transport.url}; open it with --port {transport.url}", file=sys.stderr, flush=True)
    try:
        server.serve()
    finally:
        transport.close()
        if hasattr(joints, "close"):
            joints.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
