"""``kraby topic list|echo|pub|hz``: everyday topic tools for machines without ROS 2.

They behave like their `ros2 topic` namesakes and see any ROS 2 graph on the DDS domain
(ROS_DOMAIN_ID), including real ROS 2 nodes. Unless the user set ROS_AUTOMATIC_DISCOVERY_RANGE
or ROS_LOCALHOST_ONLY, they stay on this machine (LOCALHOST), as kraby's launchers do.

    kraby topic list -t
    kraby topic echo joint_states --once
    kraby topic pub --once emergency_stop std_msgs/msg/Bool '{data: true}'
    kraby topic hz joint_states
"""

import argparse
import math
import os
import sys
import time

import yaml


def _shutdown_exc():
    # imported when needed: building the `kraby` parser must not need CycloneDDS (under ROS 2
    # the virtual bus and the servo tools run where only rclpy is installed)
    from .embedded.context import ExternalShutdownException
    return ExternalShutdownException


DISCOVERY_WAIT_S = 1.0


class ToolError(Exception):
    """A tool failed; the message is for the user."""


def loopback_by_default():
    """kraby's tools and launchers keep DDS on this machine unless the user chose otherwise."""
    if "ROS_AUTOMATIC_DISCOVERY_RANGE" not in os.environ and \
            "ROS_LOCALHOST_ONLY" not in os.environ:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


def add_parser(sub):
    t = sub.add_parser("topic", help="list, echo, publish and measure ROS 2 topics")
    tsub = t.add_subparsers(dest="topic_command", required=True)

    ls = tsub.add_parser("list", help="topics on the graph")
    ls.add_argument("-t", "--show-types", action="store_true", help="print each topic's type")
    ls.add_argument("--spin-time", type=float, default=DISCOVERY_WAIT_S,
                    help="seconds to wait for discovery (default %(default)s)")
    ls.set_defaults(func=cmd_list)

    e = tsub.add_parser("echo", help="print the messages of a topic as YAML")
    e.add_argument("topic")
    e.add_argument("type", nargs="?", help="message type (default: from the graph)")
    e.add_argument("--once", action="store_true", help="print one message and exit")
    e.add_argument("-n", "--count", type=int, help="print this many messages and exit")
    e.add_argument("--timeout", type=float,
                   help="exit with status 1 if no message arrived within this many seconds")
    _qos_options(e, reliability=None, durability=None)
    e.set_defaults(func=cmd_echo)

    p = tsub.add_parser("pub", help="publish a message (YAML values)")
    p.add_argument("topic")
    p.add_argument("type", help="message type, e.g. std_msgs/msg/Bool")
    p.add_argument("values", nargs="?", default="{}", help="YAML, e.g. '{data: true}'")
    p.add_argument("-r", "--rate", type=float, default=1.0, help="Hz (default 1)")
    p.add_argument("-1", "--once", action="store_true", help="publish once and exit")
    p.add_argument("-t", "--times", type=int, help="publish this many times and exit")
    p.add_argument("-w", "--wait-matching-subscriptions", type=int, default=None,
                   help="wait for this many subscribers first (default 1 with --once/--times)")
    p.add_argument("--max-wait-time-secs", type=float, default=5.0,
                   help="give up waiting for subscribers after this long (then publish)")
    _qos_options(p, reliability="reliable", durability="volatile")
    p.set_defaults(func=cmd_pub)

    h = tsub.add_parser("hz", help="measure the publishing rate of a topic")
    h.add_argument("topic")
    h.add_argument("type", nargs="?", help="message type (default: from the graph)")
    h.add_argument("--window", type=int, default=10000, help="samples in the window")
    h.add_argument("--duration", type=float, help="stop after this many seconds")
    _qos_options(h, reliability=None, durability=None)
    h.set_defaults(func=cmd_hz)
    return t


def _qos_options(parser, reliability, durability):
    parser.add_argument("--qos-reliability", choices=["reliable", "best_effort"],
                        default=reliability,
                        help="default: " + (reliability or "what the publishers offer"))
    parser.add_argument("--qos-durability", choices=["volatile", "transient_local"],
                        default=durability,
                        help="default: " + (durability or "what the publishers offer"))
    parser.add_argument("--qos-depth", type=int, default=10)


# --- the graph -------------------------------------------------------------------------
class Graph:
    """Endpoints discovered through DDS's built-in topics."""

    def __init__(self, participant):
        from cyclonedds.builtin import (BuiltinDataReader, BuiltinTopicDcpsPublication,
                                        BuiltinTopicDcpsSubscription)
        self._pubs = BuiltinDataReader(participant, BuiltinTopicDcpsPublication)
        self._subs = BuiltinDataReader(participant, BuiltinTopicDcpsSubscription)
        self.publications = {}
        self.subscriptions = {}
        self._own = participant.get_guid()

    def refresh(self):
        for reader, table in ((self._pubs, self.publications), (self._subs, self.subscriptions)):
            for sample in reader.take(N=500):
                if getattr(sample, "participant_key", None) == self._own:
                    continue
                key = getattr(sample, "key", None)
                if getattr(sample, "topic_name", None):
                    table[key] = sample
                else:       # an endpoint gone (its disposal notice has no topic name)
                    table.pop(key, None)

    def topics(self):
        from .embedded.messages import ros_type_name
        from .embedded.names import ros_topic_name
        found = {}
        for ep in list(self.publications.values()) + list(self.subscriptions.values()):
            name, type_name = ros_topic_name(ep.topic_name), ros_type_name(ep.type_name)
            if name and type_name:
                found.setdefault(name, set()).add(type_name)
        return found

    def publishers_of(self, fqn):
        return [ep for ep in self.publications.values() if ep.topic_name == "rt" + fqn]


def _session(name):
    loopback_by_default()
    from . import embedded  # noqa: F401  (the tools always use the embedded implementation)
    from .embedded import context as ctx
    from .embedded.node import Node
    try:
        ctx.init(args=[name])
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    node = Node(name.replace("-", "_") + f"_{os.getpid()}")
    return node, Graph(node.context.participant)


def _close(node):
    from .embedded import context as ctx
    node.destroy_node()
    ctx.try_shutdown()


def _wait_graph(node, graph, seconds, until=None):
    from .embedded.executor import spin_once
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        graph.refresh()
        if until is not None and until():
            return True
        spin_once(node, timeout_sec=0.05)
    graph.refresh()
    return until() if until is not None else True


def _resolve(node, topic):
    try:
        return node.resolve_topic_name(topic)
    except ValueError as exc:
        raise ToolError(str(exc)) from None


def _message_class(type_name):
    from .embedded.messages import get_message
    try:
        return get_message(type_name)
    except ValueError as exc:
        raise ToolError(str(exc)) from None


def _reader_qos(args, graph, fqn):
    """QoS for echo/hz: explicit options, else what every publisher can serve (as ros2 does)."""
    from .embedded.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from cyclonedds.core import Policy
    pubs = graph.publishers_of(fqn)
    reliability, durability = args.qos_reliability, args.qos_durability
    if reliability is None:
        best_effort = any(p.qos[Policy.Reliability] == Policy.Reliability.BestEffort
                          for p in pubs)
        reliability = "best_effort" if best_effort or not pubs else "reliable"
    if durability is None:
        latched = pubs and all(p.qos[Policy.Durability] == Policy.Durability.TransientLocal
                               for p in pubs)
        durability = "transient_local" if latched else "volatile"
    return QoSProfile(depth=args.qos_depth,
                      reliability=ReliabilityPolicy[reliability.upper()],
                      durability=DurabilityPolicy[durability.upper()])


def _topic_type(args, node, graph, fqn):
    if args.type:
        return _message_class(args.type)
    _wait_graph(node, graph, 10.0, until=lambda: fqn in graph.topics())
    types = graph.topics().get(fqn)
    if not types:
        raise ToolError(f"topic {fqn}: no publisher or subscriber seen within 10 s; give the "
                        "message type to wait for it, e.g. "
                        f"'kraby topic echo {args.topic} std_msgs/msg/String'")
    if len(types) > 1:
        raise ToolError(f"topic {fqn} carries several types ({', '.join(sorted(types))}); "
                        "give the one to use")
    return _message_class(next(iter(types)))


# --- commands --------------------------------------------------------------------------
def cmd_list(args):
    node, graph = _session("kraby_topic_list")
    try:
        _wait_graph(node, graph, args.spin_time)
        for name, types in sorted(graph.topics().items()):
            print(f"{name} [{', '.join(sorted(types))}]" if args.show_types else name)
    finally:
        _close(node)
    return 0


def cmd_echo(args):
    from .embedded.executor import spin_once
    from .embedded.messages import to_dict
    node, graph = _session("kraby_topic_echo")
    try:
        fqn = _resolve(node, args.topic)
        cls = _topic_type(args, node, graph, fqn)
        _wait_graph(node, graph, 0.3, until=lambda: graph.publishers_of(fqn))
        limit = 1 if args.once else args.count
        printed = [0]

        def show(msg):
            if limit is not None and printed[0] >= limit:
                return
            data = {k: v for k, v in to_dict(msg).items()
                    if k != "structure_needs_at_least_one_member"}
            sys.stdout.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
                             if data else "{}\n")
            sys.stdout.write("---\n")
            sys.stdout.flush()
            printed[0] += 1

        node.create_subscription(cls, fqn, show, _reader_qos(args, graph, fqn))
        start = time.monotonic()
        while limit is None or printed[0] < limit:
            if args.timeout and not printed[0] and time.monotonic() - start > args.timeout:
                print(f"kraby topic echo: no message on {fqn} within {args.timeout} s",
                      file=sys.stderr)
                return 1
            spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, _shutdown_exc()):
        pass
    finally:
        _close(node)
    return 0


def cmd_pub(args):
    from .embedded.messages import from_dict
    from .embedded.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    try:
        values = yaml.safe_load(args.values)
    except yaml.YAMLError as exc:
        raise ToolError(f"values {args.values!r}: not valid YAML ({exc})") from None
    cls = _message_class(args.type)
    try:
        msg = from_dict(cls, values)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    if not args.rate > 0:
        raise ToolError(f"--rate: expected a positive number of Hz, found {args.rate}")
    times = 1 if args.once else args.times
    wait_for = args.wait_matching_subscriptions
    if wait_for is None:
        wait_for = 1 if times else 0
    node, graph = _session("kraby_topic_pub")
    try:
        fqn = _resolve(node, args.topic)
        qos = QoSProfile(depth=args.qos_depth,
                         reliability=ReliabilityPolicy[args.qos_reliability.upper()],
                         durability=DurabilityPolicy[args.qos_durability.upper()])
        pub = node.create_publisher(cls, fqn, qos)
        if wait_for and not _wait_graph(node, graph, args.max_wait_time_secs,
                                        until=lambda: pub.get_subscription_count() >= wait_for):
            print(f"kraby topic pub: {pub.get_subscription_count()} matching subscriber(s) on "
                  f"{fqn} after {args.max_wait_time_secs} s; publishing anyway", file=sys.stderr)
        period = 1.0 / args.rate
        sent = 0
        next_at = time.monotonic()
        while times is None or sent < times:
            pub.publish(msg)
            sent += 1
            print(f"publishing #{sent}: {args.type} on {fqn}", flush=True)
            next_at += period
            if times is not None and sent >= times:
                break
            time.sleep(max(0.0, next_at - time.monotonic()))
        if qos.reliability == ReliabilityPolicy.RELIABLE:
            pub.wait_for_acks(2.0)   # reliable: do not exit before the subscribers have it
        if qos.durability == DurabilityPolicy.TRANSIENT_LOCAL and times is not None:
            time.sleep(0.2)
    except (KeyboardInterrupt, _shutdown_exc()):
        pass
    finally:
        _close(node)
    return 0


def cmd_hz(args):
    from .embedded.executor import spin_once
    node, graph = _session("kraby_topic_hz")
    stamps = []
    try:
        fqn = _resolve(node, args.topic)
        cls = _topic_type(args, node, graph, fqn)
        _wait_graph(node, graph, 0.3, until=lambda: graph.publishers_of(fqn))

        def arrived(_msg):
            stamps.append(time.monotonic())
            del stamps[:-args.window - 1]

        node.create_subscription(cls, fqn, arrived, _reader_qos(args, graph, fqn))
        start = next_print = time.monotonic()
        while args.duration is None or time.monotonic() - start < args.duration:
            spin_once(node, timeout_sec=0.05)
            if time.monotonic() >= next_print + 1.0:
                next_print = time.monotonic()
                print(hz_report(stamps) or "no new messages", flush=True)
        print(hz_report(stamps) or f"no messages on {fqn}", flush=True)
    except (KeyboardInterrupt, _shutdown_exc()):
        pass
    finally:
        _close(node)
    return 0 if len(stamps) > 1 else 1


def hz_report(stamps):
    """`ros2 topic hz`'s lines for arrival times [s] (None with fewer than two)."""
    if len(stamps) < 2:
        return None
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    mean = sum(gaps) / len(gaps)
    std = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
    return (f"average rate: {1.0 / mean:.3f}\n\tmin: {min(gaps):.3f}s max: {max(gaps):.3f}s "
            f"std dev: {std:.5f}s window: {len(stamps)}")


def run(args):
    try:
        return args.func(args)
    except ToolError as exc:
        print(f"kraby topic: {exc}", file=sys.stderr)
        return 2


def main(argv=None):
    parser = argparse.ArgumentParser(prog="kraby")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["topic", *(sys.argv[1:] if argv is None else argv)]))
