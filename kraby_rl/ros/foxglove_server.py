"""``kraby foxglove``: watch a stack live in Foxglove without ROS 2 (the Foxglove SDK's
WebSocket server).

Every topic on the graph (or the ones named) is served as a Foxglove channel with its ROS 2
schema (``ros2msg`` definitions from the Jazzy typestore, the encoding ``ros2 bag`` and
foxglove_bridge use) and its messages as the CDR bytes that arrived, so the Foxglove app
decodes joint_states, odom, tf/tf_static, robot_description (the 3D panel's URDF), the safety
marker and diagnostics like a ROS 2 connection. Latched topics (robot_description, tf_static,
safety/state) are sent again to each client that subscribes later. The server listens on
127.0.0.1 unless ``--host`` says otherwise. A layout for the Foxglove app ships in
``config/foxglove_layout.json`` (3D robot, joint plots, command vs odometry, safety state).

    kraby foxglove                         # ws://127.0.0.1:8765, every topic
    kraby launch sim foxglove:=true        # a stack with its server
    kraby launch real foxglove:=0.0.0.0:8765   # reachable from another machine (asked for)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from kraby_rl.ros import topic_tool as tt
from kraby_rl.ros.mirror import TopicMirror

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765
POLL_S = 0.25


def parse_address(text):
    """'true' | 'HOST:PORT' | 'PORT' -> (host, port).

    Raises:
        ValueError: naming the value and the forms accepted.
    """
    if text == "true":
        return DEFAULT_HOST, DEFAULT_PORT
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = DEFAULT_HOST, text
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 < number < 65536 or (sep and not host):
        raise ValueError(f"foxglove: expected true, PORT or HOST:PORT (for example "
                         f"127.0.0.1:8765), found {text!r}")
    return host, number


def add_parser(sub):
    f = sub.add_parser("foxglove", help="serve the ROS 2 graph to the Foxglove app "
                                        "(WebSocket, Foxglove SDK)")
    f.add_argument("topics", nargs="*", help="topics to serve (default: all)")
    f.add_argument("--host", default=DEFAULT_HOST,
                   help="address to listen on (default %(default)s: this machine only)")
    f.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    f.add_argument("--duration", type=float, help="stop after this many seconds")
    f.set_defaults(func=cmd_foxglove)
    return f


class FoxgloveServer(TopicMirror):
    """The graph's topics as channels of a Foxglove WebSocket server."""

    tool, verb = "kraby foxglove", "serving"

    def __init__(self, node, graph, host=DEFAULT_HOST, port=DEFAULT_PORT, topics=None,
                 expect=None, log=None):
        import foxglove
        self._fox = foxglove
        self.context = foxglove.Context()
        self.channels = {}
        self.latched = {}           # topic -> last message (stamp, data) of a latched topic
        self._resend = set()        # channel ids a client subscribed to since the last poll
        self._resend_lock = threading.Lock()
        owner = self

        class Listener:
            def on_subscribe(self, client, channel):
                with owner._resend_lock:
                    owner._resend.add(channel.id)

        self.server = foxglove.start_server(name="kraby_rl", host=host, port=port,
                                            context=self.context, server_listener=Listener())
        self.port = self.server.port
        super().__init__(node, graph, topics, expect, log)

    def open_topic(self, name, type_name, pubs):
        from cyclonedds.core import Policy
        from .embedded.messages import typestore
        msgdef, _ = typestore().generate_msgdef(type_name, ros_version=2)
        schema = self._fox.Schema(name=type_name, encoding="ros2msg", data=msgdef.encode())
        self.channels[name] = self._fox.Channel(name, schema=schema, message_encoding="cdr",
                                                context=self.context)
        if pubs and all(p.qos[Policy.Durability] == Policy.Durability.TransientLocal
                        for p in pubs):
            self.latched[name] = None

    def emit(self, name, stamp, data):
        self.channels[name].log(data, log_time=stamp)
        if name in self.latched:
            self.latched[name] = (stamp, data)

    def poll(self):
        super().poll()
        with self._resend_lock:
            ids, self._resend = self._resend, set()
        if not ids:
            return
        with self._lock:
            for name, last in self.latched.items():
                if last is not None and self.channels[name].id() in ids:
                    self.channels[name].log(last[1], log_time=last[0])

    def finish(self):
        self.server.stop()


def _interrupt(*_):
    raise KeyboardInterrupt


def cmd_foxglove(args):
    from .embedded.executor import spin_once
    node, graph = tt._session("kraby_foxglove")
    server = None
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        wanted = None if not args.topics else {tt._resolve(node, t) for t in args.topics}
        try:
            server = FoxgloveServer(node, graph, args.host, args.port, wanted)
        except RuntimeError as exc:     # the SDK's error for a port in use, a bad address
            raise tt.ToolError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
        print(f"kraby foxglove: serving ws://{args.host}:{server.port} (open it in the "
              f"Foxglove app; layout: config/foxglove_layout.json)", file=sys.stderr,
              flush=True)
        start = next_poll = time.monotonic()
        while args.duration is None or time.monotonic() - start < args.duration:
            if time.monotonic() >= next_poll:
                server.poll()
                next_poll = time.monotonic() + POLL_S
            spin_once(node, timeout_sec=0.02)
    except (KeyboardInterrupt, tt._shutdown_exc()):
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if server is not None:
            server.close()
        tt._close(node)
    return 0


def layout_path():
    from kraby_rl.resources import SHARE
    return os.path.join(SHARE, "config", "foxglove_layout.json")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="kraby")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    args = parser.parse_args(["foxglove", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except tt.ToolError as exc:
        print(f"kraby foxglove: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
