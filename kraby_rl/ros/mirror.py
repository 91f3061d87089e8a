"""Topics mirrored as they appear on the graph: the raw CDR bytes of every message, with its
receive time, handed to a sink (a bag for ``kraby record``, a Foxglove WebSocket server for
``kraby foxglove``).

Each topic is subscribed to once a publisher of it is discovered, with the QoS its publishers
offer (a latched topic with a transient-local reader, so its last message arrives too). Topics
named in ``expect`` are subscribed to at once, before discovery, so that their first
messages are kept: a sensor publishes from its first period on, and discovery takes up to a
poll. Those readers are best effort and volatile (they match every writer); what arrives
waits until the publisher is seen and its offered QoS known.
"""

from __future__ import annotations

import sys
import threading
import time
import types

from kraby_rl.ros import topic_tool as tt


class TopicMirror:
    """Subscribe to topics as they appear; give each message's wire bytes to the subclass.

    Subclasses set ``tool`` and ``verb`` (for notices) and implement ``open_topic(name,
    type_name, publishers)``, ``emit(name, stamp_ns, data)`` and ``finish()``; the three are
    called under one lock, never after ``close``.

    Args:
        node, graph: an embedded node and its `topic_tool.Graph`.
        topics: fully qualified names to mirror; None mirrors every topic.
        expect: {fully qualified name: type name} of topics to subscribe to before they are
            discovered.
        log: where notices go (a topic started, one skipped).
    """

    tool, verb = "kraby", "mirroring"

    def __init__(self, node, graph, topics=None, expect=None, log=None):
        self.node, self.graph = node, graph
        self.topics = None if topics is None else set(topics)
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.open = set()
        self.counts = {}
        self._closed = False
        self._skipped = set()
        self._lock = threading.Lock()
        self.expected = {}          # topic -> type name, subscribed ahead of discovery
        self._pending = {}          # topic -> [(stamp, data)] until it is open
        for name, type_name in (expect or {}).items():
            if self.topics is None or name in self.topics:
                self._subscribe_ahead(name, type_name)

    # subclasses
    def open_topic(self, name, type_name, pubs):
        raise NotImplementedError

    def emit(self, name, stamp, data):
        raise NotImplementedError

    def finish(self):
        pass

    def _subscribe_ahead(self, name, type_name):
        from .embedded.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        cls = tt._message_class(type_name)
        self.expected[name] = type_name
        self._pending[name] = []
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT,
                         durability=DurabilityPolicy.VOLATILE)

        def keep(data):
            with self._lock:
                if name in self.open:
                    self._emit(name, time.time_ns(), data)
                elif not self._closed:
                    self._pending[name].append((time.time_ns(), data))
        self.node.create_subscription(cls, name, keep, qos, raw=True)

    def poll(self):
        """Start mirroring any wanted topic that now has a publisher."""
        from .embedded.messages import typestore
        self.graph.refresh()
        for name, type_names in sorted(self.graph.topics().items()):
            if name in self.open or name in self._skipped:
                continue
            if self.topics is not None and name not in self.topics:
                continue
            pubs = self.graph.publishers_of(name)
            if not pubs:
                continue
            if len(type_names) != 1:
                self._skip(name, f"it carries several types ({', '.join(sorted(type_names))})")
                continue
            type_name = next(iter(type_names))
            if name in self.expected:
                if type_name != self.expected[name]:
                    self._skip(name, f"expected type {self.expected[name]}, the graph has "
                                     f"{type_name}")
                else:
                    self._open(name, type_name, pubs)
                continue
            if type_name not in typestore().types:
                self._skip(name, f"its type {type_name} has no known definition")
                continue
            cls = tt._message_class(type_name)
            self._open(name, type_name, pubs)
            qos = tt._reader_qos(types.SimpleNamespace(qos_reliability=None,
                                                       qos_durability=None, qos_depth=100),
                                 self.graph, name)
            self.node.create_subscription(cls, name, self._live(name), qos, raw=True)

    def _open(self, name, type_name, pubs):
        with self._lock:
            if self._closed:
                return
            self.open_topic(name, type_name, pubs)
            self.open.add(name)
            self.counts[name] = 0
            for stamp, data in self._pending.pop(name, []):
                self._emit(name, stamp, data)
        self.log(f"{self.tool}: {self.verb} {name} [{type_name}]")

    def _emit(self, name, stamp, data):
        self.emit(name, stamp, data)
        self.counts[name] += 1

    def _skip(self, name, why):
        self._skipped.add(name)
        self.log(f"{self.tool}: not {self.verb} {name}: {why}")

    def _live(self, name):
        def arrived(data):
            with self._lock:
                if not self._closed:
                    self._emit(name, time.time_ns(), data)
        return arrived

    def close(self):
        """Stop; returns the message count per topic."""
        for name, waiting in list(self._pending.items()):
            if waiting:         # data came, but its publisher left before it was seen
                self._open(name, self.expected[name], [])
        with self._lock:
            if not self._closed:
                self._closed = True
                self.finish()
        return dict(self.counts)
