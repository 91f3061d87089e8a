"""Helpers for tests that run ROS nodes in separate processes."""

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time

from kraby_rl import ros

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "ros_peer.py")


class Process:
    """A child process whose stdout JSON lines are collected; always stopped by `stop()`."""

    def __init__(self, argv):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=dict(os.environ))
        self.events = queue.Queue()
        self.lines = []
        self.stderr_lines = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def stderr(self):
        return "".join(self.stderr_lines)

    def expect(self, event, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.events.get(timeout=0.05)
            except queue.Empty:
                if self.proc.poll() is not None and self.events.empty():
                    time.sleep(0.1)
                    if self.events.empty():
                        break
                continue
            if item.get("event") == event:
                return item
        raise AssertionError(f"no {event!r} event from {self.argv} within {timeout} s; "
                             f"exit={self.proc.poll()} stderr:\n{self.stderr}")

    def wait(self, timeout=10.0):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def peer(*args):
    return Process([sys.executable, PEER, *args])


def spin_until(node, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        ros.spin_once(node, timeout_sec=0.02)
    return predicate()


def spin_for(node, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ros.spin_once(node, timeout_sec=0.02)


@contextlib.contextmanager
def ros_node(name):
    """A context and one node in this process, shut down afterwards whatever happens."""
    ros.init(args=["test"])
    node = ros.Node(name)
    try:
        yield node
    finally:
        node.destroy_node()
        ros.try_shutdown()


@contextlib.contextmanager
def processes(factory):
    """`start(*args)` -> Process via `factory`; every process started is stopped at the end."""
    started = []

    def start(*args):
        started.append(factory(*args))
        return started[-1]
    try:
        yield start
    finally:
        for p in started:
            p.stop()
