"""The process-wide ROS context: init/shutdown/ok, signals, the DDS participant, graph info.

One context is one DDS DomainParticipant in domain ROS_DOMAIN_ID, configured from ROS 2's
environment (see `network`). It also publishes `ros_discovery_info`
(rmw_dds_common/msg/ParticipantEntitiesInfo), which is how `ros2 node list` on a ROS 2
machine learns the names of the nodes and which endpoints belong to them.

Signals, as rclpy: SIGINT shuts every context down and then raises KeyboardInterrupt in the
main thread; SIGTERM shuts them down, and a spinning executor then raises
ExternalShutdownException.
"""

import signal
import sys
import threading

from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.pub import DataWriter, Publisher
from cyclonedds.sub import Subscriber
from cyclonedds.topic import Topic

from . import network
from .arguments import parse_arguments
from .logging import LoggingSeverity, set_default_level
from .messages import get_message
from .qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, to_dds

DISCOVERY_TOPIC = "ros_discovery_info"


class ExternalShutdownException(Exception):
    """The context was shut down (by a signal or another thread) while spinning."""


class Context:
    def __init__(self):
        self._lock = threading.RLock()
        self._ok = False
        self._on_shutdown = []
        self.args = None
        self.domain_id = None
        self.participant = None
        self._domain = None
        self._topics = {}
        self._nodes = []
        self.graph_version = 0
        self._discovery_writer = None

    def init(self, args=None, domain_id=None):
        with self._lock:
            if self._ok:
                raise RuntimeError("Context.init() must only be called once")
            self.args = parse_arguments(sys.argv if args is None else args)
            for name, level in self.args.log_levels.items():
                severity = LoggingSeverity[level.upper()]
                if name:
                    from .logging import get_logger
                    get_logger(name).set_level(severity)
                else:
                    set_default_level(severity)
            self.domain_id = network.domain_id() if domain_id is None else int(domain_id)
            config = network.cyclonedds_config()
            self._domain = Domain(self.domain_id, config) if config else None
            self.participant = DomainParticipant(self.domain_id)
            self.publisher = Publisher(self.participant)
            self.subscriber = Subscriber(self.participant)
            self._ok = True
            _CONTEXTS.add(self)

    def ok(self):
        return self._ok

    def on_shutdown(self, callback):
        self._on_shutdown.append(callback)

    def shutdown(self):
        with self._lock:
            if not self._ok:
                raise RuntimeError("Context must be initialized before it can be shutdown")
            self._ok = False
        for callback in self._on_shutdown:
            callback()
        _CONTEXTS.discard(self)

    def try_shutdown(self):
        if self._ok:
            self.shutdown()

    def destroy(self):
        """Release the DDS entities (after shutdown, when the process goes on)."""
        with self._lock:
            self._topics.clear()
            self._discovery_writer = None
            self.publisher = self.subscriber = self.participant = self._domain = None

    # --- DDS topics shared by the context's nodes ---------------------------------------
    def topic(self, dds_name, msg_type):
        key = (dds_name, msg_type)
        with self._lock:
            if key not in self._topics:
                self._topics[key] = Topic(self.participant, dds_name, msg_type)
            return self._topics[key]

    # --- graph information (ros_discovery_info) -----------------------------------------
    def add_node(self, node):
        with self._lock:
            self._nodes.append(node)
        self.graph_changed()

    def remove_node(self, node):
        with self._lock:
            if node in self._nodes:
                self._nodes.remove(node)
        self.graph_changed()

    def graph_changed(self):
        """Republish which endpoints belong to which node; wake executors to re-scan."""
        with self._lock:
            self.graph_version += 1
            if not self._ok or self.participant is None:
                return
            info_type = get_message("rmw_dds_common/msg/ParticipantEntitiesInfo")
            if self._discovery_writer is None:
                qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
                self._discovery_writer = DataWriter(
                    self.publisher, self.topic(DISCOVERY_TOPIC, info_type), to_dds(qos))
            gid_type = get_message("rmw_dds_common/msg/Gid")
            node_type = get_message("rmw_dds_common/msg/NodeEntitiesInfo")
            nodes = []
            for node in self._nodes:
                readers, writers = node._endpoint_guids()
                nodes.append(node_type(
                    node_namespace=node.get_namespace(), node_name=node.get_name(),
                    reader_gid_seq=[gid_type(data=list(g)) for g in readers],
                    writer_gid_seq=[gid_type(data=list(g)) for g in writers]))
            self._discovery_writer.write(info_type(
                gid=gid_type(data=list(self.participant.get_guid().bytes)),
                node_entities_info_seq=nodes))


_CONTEXTS = set()
_DEFAULT = [None]
_HANDLERS = {}


def get_default_context():
    if _DEFAULT[0] is None:
        _DEFAULT[0] = Context()
    return _DEFAULT[0]


def _shutdown_all():
    for context in list(_CONTEXTS):
        context.try_shutdown()


def _on_sigint(signum, frame):
    _shutdown_all()
    previous = _HANDLERS.get(signal.SIGINT)
    if callable(previous):
        previous(signum, frame)
    else:
        raise KeyboardInterrupt


def _on_sigterm(signum, frame):
    _shutdown_all()
    previous = _HANDLERS.get(signal.SIGTERM)
    if callable(previous):
        previous(signum, frame)


def install_signal_handlers():
    if threading.current_thread() is not threading.main_thread() or _HANDLERS:
        return
    _HANDLERS[signal.SIGINT] = signal.signal(signal.SIGINT, _on_sigint)
    _HANDLERS[signal.SIGTERM] = signal.signal(signal.SIGTERM, _on_sigterm)


def uninstall_signal_handlers():
    """Restore the previous handlers; from another thread (a worker shutting the context
    down) they stay until the next init, as Python only sets handlers in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, previous in list(_HANDLERS.items()):
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
    _HANDLERS.clear()


def init(*, args=None, context=None, domain_id=None, signal_handler_options=None):
    """rclpy.init: parse ROS arguments, join the DDS domain, install signal handlers."""
    context = context or get_default_context()
    context.init(args=args, domain_id=domain_id)
    if signal_handler_options is None or str(signal_handler_options).upper().endswith("ALL"):
        install_signal_handlers()
    return context


def shutdown(*, context=None, uninstall_handlers=None):
    context = context or get_default_context()
    context.shutdown()
    if context is _DEFAULT[0]:
        context.destroy()
        _DEFAULT[0] = None
    if uninstall_handlers or (uninstall_handlers is None and not _CONTEXTS):
        uninstall_signal_handlers()


def try_shutdown(*, context=None):
    context = context or get_default_context()
    if context.ok():
        shutdown(context=context)


def ok(*, context=None):
    context = context or _DEFAULT[0]
    return context is not None and context.ok()
