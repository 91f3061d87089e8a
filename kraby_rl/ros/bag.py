"""``kraby record`` and ``kraby bag info|play``: rosbag2 bags in MCAP storage, without ROS 2.

A bag written here is a rosbag2 bag (``metadata.yaml`` + one ``.mcap`` file, written by the
`rosbags` library): every topic with its ROS 2 type name, message definition, RIHS01 hash and
offered QoS, and each message as the exact CDR bytes that arrived on the wire (the DDS
reader's serialized data, not a re-serialisation). ``ros2 bag info/play``, Foxglove and
`rosbags` open it. Timestamps are receive times (ns since the epoch), as ``ros2 bag record``
writes them.

    kraby record -a -o runs/bags/demo          # every topic, until Ctrl-C
    kraby record joint_states odom -o bag --duration 20
    kraby launch sim record:=runs/bags/sim     # a stack with its recorder
    kraby bag info runs/bags/demo
    kraby bag play runs/bags/demo --topics joint_states imu/data --rate 2

Like ``kraby topic``, the tools stay on this machine unless ROS_AUTOMATIC_DISCOVERY_RANGE or
ROS_LOCALHOST_ONLY says otherwise, and see real ROS 2 nodes on the same ROS_DOMAIN_ID.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from kraby_rl.ros import topic_tool as tt
from kraby_rl.ros.mirror import TopicMirror

DISCOVERY_POLL_S = 0.25     # how often the recorder looks for new topics
STORAGE = "mcap"


def add_parser(sub):
    r = sub.add_parser("record", help="record topics into a rosbag2 bag (MCAP storage)")
    r.add_argument("topics", nargs="*", help="topics to record (default with -a: all)")
    r.add_argument("-a", "--all", action="store_true", help="record every topic on the graph")
    r.add_argument("-o", "--output", required=True, help="bag directory to create")
    r.add_argument("--duration", type=tt_positive, help="stop after this many seconds")
    r.add_argument("--expect", action="append", default=[], metavar="TOPIC:=TYPE",
                   help="subscribe to TOPIC (of TYPE) at once, before it is discovered, so "
                        "its first messages are recorded (repeatable)")
    r.set_defaults(func=cmd_record)

    b = sub.add_parser("bag", help="inspect and replay rosbag2 bags")
    bsub = b.add_subparsers(dest="bag_command", required=True)
    i = bsub.add_parser("info", help="topics, types, counts and duration of a bag")
    i.add_argument("path")
    i.set_defaults(func=cmd_info)
    p = bsub.add_parser("play", help="republish a bag's messages with their recorded timing")
    p.add_argument("path")
    p.add_argument("--topics", nargs="+", help="only these topics (default: all)")
    p.add_argument("--rate", type=tt_positive, default=1.0,
                   help="playback speed factor (default 1)")
    p.add_argument("--delay", type=float, default=1.0,
                   help="seconds to wait after creating the publishers, so subscribers are "
                        "discovered before the first message (default 1)")
    p.add_argument("--wait-for-readers", type=float, default=0.0, metavar="SECONDS",
                   help="before the delay, wait up to SECONDS until every played topic has "
                        "a matched reader (default 0: do not wait)")
    p.set_defaults(func=cmd_play)
    return b


def tt_positive(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, found {text!r}") \
            from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, found {text!r}")
    return value


# --- QoS: the DDS endpoint's, as rosbag2 writes it in the metadata ---------------------
def _offered_qos(endpoints):
    """rosbags Qos tuples for the publishers' DDS QoS (one per publisher, as rosbag2 does)."""
    from cyclonedds.core import Policy
    from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                    QosReliability, QosTime)
    zero = QosTime(0, 0)
    out = []
    for ep in endpoints:
        q = ep.qos
        reliable = q[Policy.Reliability] != Policy.Reliability.BestEffort
        latched = q[Policy.Durability] == Policy.Durability.TransientLocal
        history = q[Policy.History]
        keep_all = history == Policy.History.KeepAll
        out.append(Qos(
            history=QosHistory.KEEP_ALL if keep_all else QosHistory.KEEP_LAST,
            depth=0 if keep_all else int(getattr(history, "depth", 1)),
            reliability=QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
            durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
            deadline=zero, lifespan=zero, liveliness=QosLiveliness.AUTOMATIC,
            liveliness_lease_duration=zero, avoid_ros_namespace_conventions=False))
    return out


def _play_qos(connection):
    """The QoS to republish a recorded connection with (what its publisher offered)."""
    from rosbags.interfaces import QosDurability, QosReliability
    from .embedded.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    offered = list(getattr(connection.ext, "offered_qos_profiles", []) or [])
    best_effort = any(q.reliability == QosReliability.BEST_EFFORT for q in offered)
    latched = bool(offered) and all(q.durability == QosDurability.TRANSIENT_LOCAL
                                    for q in offered)
    depth = max([10] + [q.depth for q in offered])
    return QoSProfile(depth=depth,
                      reliability=(ReliabilityPolicy.BEST_EFFORT if best_effort
                                   else ReliabilityPolicy.RELIABLE),
                      durability=(DurabilityPolicy.TRANSIENT_LOCAL if latched
                                  else DurabilityPolicy.VOLATILE))


# --- recording -------------------------------------------------------------------------
class Recorder(TopicMirror):
    """Writes every message of the wanted topics, as it arrived, to a new bag.

    Args:
        node, graph, topics, expect, log: as `TopicMirror`.
        path: the bag directory to create (it must not exist).

    Raises:
        tt.ToolError: the bag directory exists already.
    """

    tool, verb = "kraby record", "recording"

    def __init__(self, node, graph, path, topics=None, expect=None, log=None):
        from rosbags.rosbag2 import StoragePlugin, Writer
        if os.path.exists(path):
            raise tt.ToolError(f"bag {path!r}: exists already; give a new directory")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self.writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.connections = {}       # topic -> rosbags Connection
        super().__init__(node, graph, topics, expect, log)

    def open_topic(self, name, type_name, pubs):
        from .embedded.messages import typestore
        self.connections[name] = self.writer.add_connection(
            name, type_name, typestore=typestore(), offered_qos_profiles=_offered_qos(pubs))

    def emit(self, name, stamp, data):
        self.writer.write(self.connections[name], stamp, data)

    def finish(self):
        self.writer.close()


def _interrupt(*_):
    raise KeyboardInterrupt


RECORDER_RT_PRIORITY = 20
"""The recorder's real-time priority (below the stack's nodes: policy 25, sim 30, shield 35).
At normal priority, on a loaded machine, it matched a starting sim_node's writers after their
first joint_states were out, and the bag lacked them (3 of 464 once in a CI-like run)."""


def cmd_record(args):
    from kraby_rl.core.realtime import take_priority
    from .embedded.executor import spin_once
    if not args.topics and not args.all:
        raise tt.ToolError("record: name the topics to record, or give -a for every topic")
    # before the middleware starts its threads, which inherit it
    priority = take_priority(RECORDER_RT_PRIORITY)
    node, graph = tt._session("kraby_record")
    recorder = None
    signal.signal(signal.SIGTERM, _interrupt)   # ros2 launch's SIGTERM closes the bag too
    try:
        wanted = None if args.all else {tt._resolve(node, t) for t in args.topics}
        expect = {}
        for item in args.expect:
            name, sep, type_name = item.partition(":=")
            if not sep or not name or not type_name:
                raise tt.ToolError(f"--expect {item!r}: expected TOPIC:=TYPE, for example "
                                   "joint_states:=sensor_msgs/msg/JointState")
            expect[tt._resolve(node, name)] = type_name
        recorder = Recorder(node, graph, args.output, wanted, expect)
        print(f"kraby record: ready ({len(recorder.expected)} topics subscribed ahead; "
              f"{priority})",
              file=sys.stderr, flush=True)
        start = next_poll = time.monotonic()
        while args.duration is None or time.monotonic() - start < args.duration:
            if time.monotonic() >= next_poll:
                recorder.poll()
                next_poll = time.monotonic() + DISCOVERY_POLL_S
            spin_once(node, timeout_sec=0.02)
    except (KeyboardInterrupt, tt._shutdown_exc()):
        pass
    finally:
        # a second Ctrl-C (ros2 launch signals the process and its group) must not cut the
        # bag's closing short: metadata.yaml is written last
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        counts = recorder.close() if recorder is not None else {}
        tt._close(node)
    if recorder is not None:
        total = sum(counts.values())
        print(f"kraby record: {total} messages on {len(counts)} topics in {args.output}",
              file=sys.stderr, flush=True)
    return 0


# --- reading ---------------------------------------------------------------------------
def _open_reader(path):
    from rosbags.rosbag2 import Reader
    from rosbags.rosbag2.errors import ReaderError
    if not os.path.isdir(path):
        raise tt.ToolError(f"bag {path!r}: no such directory (a rosbag2 bag is a directory "
                           "with metadata.yaml)")
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, FileNotFoundError) as exc:     # no metadata.yaml, a bad file
        raise tt.ToolError(f"bag {path!r}: cannot be read ({exc})") from None
    return reader


def _storage_id(path):
    import yaml
    with open(os.path.join(path, "metadata.yaml")) as fh:
        meta = yaml.safe_load(fh)
    return meta["rosbag2_bagfile_information"]["storage_identifier"]


def bag_summary(path):
    """{'duration_s', 'messages', 'size_bytes', 'storage', 'topics': {name: (type, count)}}."""
    reader = _open_reader(path)
    try:
        size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
        topics = {}
        for conn in reader.connections:
            _type, count = topics.get(conn.topic, (conn.msgtype, 0))
            topics[conn.topic] = (conn.msgtype, count + conn.msgcount)
        return {"duration_s": reader.duration / 1e9 if reader.message_count else 0.0,
                "start_ns": reader.start_time if reader.message_count else None,
                "messages": reader.message_count, "size_bytes": size,
                "storage": _storage_id(path), "topics": topics}
    finally:
        reader.close()


def cmd_info(args):
    s = bag_summary(args.path)
    start = ("-" if s["start_ns"] is None else
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s["start_ns"] / 1e9)))
    print(f"Files:             {args.path}")
    print(f"Bag size:          {s['size_bytes'] / 1024:.1f} KiB")
    print(f"Storage id:        {s['storage']}")
    print(f"Duration:          {s['duration_s']:.3f} s")
    print(f"Start:             {start}")
    print(f"Messages:          {s['messages']}")
    print("Topic information:")
    width = max([len(t) for t in s["topics"]] + [5])
    for name, (type_name, count) in sorted(s["topics"].items()):
        print(f"  Topic: {name:<{width}} | Type: {type_name} | Count: {count} | "
              f"Serialization Format: cdr")
    return 0


def play(node, path, topics=None, rate=1.0, delay_s=1.0, stop=None, log=None,
         wait_readers_s=0.0):
    """Republish a bag's messages (their recorded bytes) with the recorded spacing / rate.

    Returns the number of messages published per topic. ``stop`` (a threading.Event) ends
    playback early. ``wait_readers_s``: first wait up to this long until every topic has a
    matched reader (a reader that joins after the first message misses it, and a delay
    alone cannot know how long discovery takes on a loaded machine).
    """
    from .embedded.executor import spin_once
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    reader = _open_reader(path)
    counts = {}
    try:
        wanted = None if topics is None else {node.resolve_topic_name(t) for t in topics}
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        if wanted is not None:
            missing = wanted - {c.topic for c in conns}
            if missing:
                have = sorted({c.topic for c in reader.connections})
                raise tt.ToolError(f"bag {path!r} has no topic {', '.join(sorted(missing))}; "
                                   f"it has {', '.join(have)}")
        pubs = {}
        for conn in conns:
            if conn.topic not in pubs:
                pubs[conn.topic] = node.create_publisher(tt._message_class(conn.msgtype),
                                                         conn.topic, _play_qos(conn))
                counts[conn.topic] = 0
        deadline = time.monotonic() + max(0.0, wait_readers_s)
        while any(p.get_subscription_count() < 1 for p in pubs.values()) \
                and time.monotonic() < deadline:
            spin_once(node, timeout_sec=0.02)
        alone = sorted(t for t, p in pubs.items() if p.get_subscription_count() < 1)
        if wait_readers_s > 0 and alone:
            log(f"bag play: no reader on {', '.join(alone)} after {wait_readers_s:g} s; "
                f"playing anyway")
        end = time.monotonic() + max(0.0, delay_s)
        while time.monotonic() < end:       # let the subscribers discover the publishers
            spin_once(node, timeout_sec=0.02)
        first, wall0 = None, None
        for conn, stamp, data in reader.messages(connections=conns):
            if stop is not None and stop.is_set():
                break
            if first is None:
                first, wall0 = stamp, time.monotonic()
            due = wall0 + (stamp - first) / 1e9 / rate
            while True:
                left = due - time.monotonic()
                if left <= 0:
                    break
                time.sleep(min(left, 0.05))
            pubs[conn.topic].publish_serialized(data)
            counts[conn.topic] += 1
        for pub in pubs.values():
            pub.wait_for_acks(1.0)
    finally:
        reader.close()
    return counts


def cmd_play(args):
    node, _graph = tt._session("kraby_bag_play")
    counts = {}
    try:
        counts = play(node, args.path, args.topics, args.rate, args.delay,
                      wait_readers_s=args.wait_for_readers)
    except (KeyboardInterrupt, tt._shutdown_exc()):
        pass
    finally:
        tt._close(node)
    print(f"kraby bag play: {sum(counts.values())} messages on {len(counts)} topics",
          file=sys.stderr, flush=True)
    return 0


def run(args):
    try:
        return args.func(args)
    except BrokenPipeError:             # `kraby bag info ... | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except tt.ToolError as exc:
        print(f"kraby {args.command}: {exc}", file=sys.stderr)
        return 2


def main(argv=None):
    parser = argparse.ArgumentParser(prog="kraby")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return run(parser.parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
