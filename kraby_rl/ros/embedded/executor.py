"""A single-threaded executor on a DDS WaitSet, and rclpy's spin/spin_once helpers.

One wait covers every subscription's read condition and the earliest timer. Waits are cut
into slices of at most WAIT_SLICE_S so a signal (whose Python handler only runs between
calls) is acted on promptly; a message or a due timer ends a wait at once.
"""

import collections
import time

from cyclonedds.core import WaitSet

from . import context as ctx
from .context import ExternalShutdownException

WAIT_SLICE_S = 0.05


class ShutdownException(Exception):
    """The executor was shut down."""


class SingleThreadedExecutor:
    def __init__(self, *, context=None):
        self._context = context or ctx.get_default_context()
        self._nodes = []
        self._pending = collections.deque()
        self._waitset = None
        self._version = None
        self._is_shutdown = False

    @property
    def context(self):
        return self._context

    def add_node(self, node):
        if node not in self._nodes:
            self._nodes.append(node)
            return True
        return False

    def remove_node(self, node):
        if node in self._nodes:
            self._nodes.remove(node)

    def get_nodes(self):
        return list(self._nodes)

    def shutdown(self, timeout_sec=None):
        self._is_shutdown = True
        self._nodes.clear()
        self._waitset = None
        return True

    def wake(self):
        """Nothing to do: waits are sliced, and a new entity is seen on the next slice."""

    def spin(self):
        while self._context.ok() and not self._is_shutdown:
            self.spin_once()

    def spin_once(self, timeout_sec=None):
        """Run at most one ready callback, waiting up to `timeout_sec` (None: forever).

        Raises:
            ExternalShutdownException: when the context is shut down (signal, other thread).
        """
        if not self._pending:
            self._collect(timeout_sec)
        if self._pending:
            kind, entity, payload = self._pending.popleft()
            if kind == "timer":
                entity.callback()
            else:
                entity.callback(payload)

    def spin_until_future_complete(self, future, timeout_sec=None):
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while self._context.ok() and not future.done():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            self.spin_once(timeout_sec=remaining)

    # --- waiting -------------------------------------------------------------------------
    def _entities(self):
        subs, timers = [], []
        for node in self._nodes:
            subs.extend(s for s in node.subscriptions if s.condition is not None)
            timers.extend(node.timers)
        return subs, timers

    def _rebuild(self, subs):
        version = (self._context.graph_version, tuple(id(s) for s in subs))
        if self._waitset is None or self._version != version:
            self._waitset = WaitSet(self._context.participant)
            for sub in subs:
                self._waitset.attach(sub.condition)
            self._version = version

    def _collect(self, timeout_sec):
        deadline = None if timeout_sec is None else time.monotonic() + max(0.0, timeout_sec)
        while True:
            if not self._context.ok():
                raise ExternalShutdownException()
            if self._is_shutdown:
                raise ShutdownException()
            subs, timers = self._entities()
            self._rebuild(subs)
            due = [t for t in timers if t.is_ready()]
            for timer in sorted(due, key=lambda t: t._order):
                timer._fired()
                self._pending.append(("timer", timer, None))
            for sub in subs:
                msg = sub.take()
                if msg is not None:
                    self._pending.append(("sub", sub, msg))
            if self._pending:
                return
            wait_s = WAIT_SLICE_S
            for timer in timers:
                remaining = timer.time_until_next_call()
                if remaining is not None:
                    wait_s = min(wait_s, remaining / 1e9)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait_s = min(wait_s, left)
            if wait_s > 0:
                self._waitset.wait(int(wait_s * 1e9))


_GLOBAL = {}


def get_global_executor():
    context = ctx.get_default_context()
    executor = _GLOBAL.get(id(context))
    if executor is None or executor.context is not context:
        executor = _GLOBAL[id(context)] = SingleThreadedExecutor(context=context)
    return executor


def spin(node, executor=None):
    """Run the node's callbacks until the context is shut down."""
    executor = executor or get_global_executor()
    try:
        executor.add_node(node)
        while executor.context.ok():
            executor.spin_once()
    finally:
        executor.remove_node(node)


def spin_once(node, *, executor=None, timeout_sec=None):
    executor = executor or get_global_executor()
    try:
        executor.add_node(node)
        executor.spin_once(timeout_sec=timeout_sec)
    finally:
        executor.remove_node(node)


def spin_until_future_complete(node, future, executor=None, timeout_sec=None):
    executor = executor or get_global_executor()
    try:
        executor.add_node(node)
        executor.spin_until_future_complete(future, timeout_sec)
    finally:
        executor.remove_node(node)
