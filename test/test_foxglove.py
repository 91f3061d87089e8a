"""kraby foxglove: a WebSocket client of our own, speaking the Foxglove protocol (subprotocol
foxglove.sdk.v1, the ws-protocol spec), subscribes to joint_states and the latched
robot_description and decodes what the server sends with rosbags' CDR reader."""

import json
import os
import socket
import struct
import sys
import time

from rosbags.typesys import get_typestore, Stores
from websockets.sync.client import connect

from kraby_rl import ros
from kraby_rl.ros.messages import sensor_msgs, std_msgs
from kraby_rl.stack.description import STREAM_TOPICS
from ros_helpers import Process, ros_node, spin_for, spin_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KRABY = [sys.executable, "-m", "kraby_rl.cli"]
STORE = get_typestore(Stores.ROS2_JAZZY)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """The protocol's client side, by hand: JSON ops as text frames, message data binary
    (opcode 0x01, u32 subscription id, u64 receive time [ns], payload)."""

    def __init__(self, ws):
        self.ws = ws
        self.channels = {}
        self.info = None

    def pump(self, timeout):
        """Read frames for up to ``timeout`` s; returns [(subscription id, stamp, payload)]."""
        data = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(frame, str):
                msg = json.loads(frame)
                if msg["op"] == "serverInfo":
                    self.info = msg
                elif msg["op"] == "advertise":
                    for ch in msg["channels"]:
                        self.channels[ch["topic"]] = ch
            elif frame[0] == 0x01:
                sub, stamp = struct.unpack_from("<IQ", frame, 1)
                data.append((sub, stamp, bytes(frame[13:])))
        return data

    def subscribe(self, sub_id, topic):
        self.ws.send(json.dumps({"op": "subscribe", "subscriptions": [
            {"id": sub_id, "channelId": self.channels[topic]["id"]}]}))


def test_a_foxglove_client_receives_joint_states_and_the_latched_description():
    port = free_port()
    with ros_node("foxglove_test") as node:
        desc = node.create_publisher(std_msgs.String, "robot_description",
                                     ros.QoSProfile(depth=1, durability=ros.DurabilityPolicy
                                                    .TRANSIENT_LOCAL))
        text = std_msgs.String()
        text.data = "<robot name='kraby'/>"
        desc.publish(text)
        js = node.create_publisher(sensor_msgs.JointState, "joint_states", 10)
        server = Process(KRABY + ["foxglove", "--port", str(port)])
        try:
            assert spin_until(node, lambda: "serving ws://127.0.0.1" in server.stderr,
                              timeout=30), server.stderr
            msg = sensor_msgs.JointState()
            msg.name = ["lf_coxa", "lf_femur"]
            msg.position = [0.25, -0.5]

            def publish_some(seconds):
                for _ in range(int(seconds / 0.05)):
                    msg.header.stamp.nanosec += 1
                    js.publish(msg)
                    spin_for(node, 0.05)
            publish_some(1.5)               # the server discovers both topics
            with connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"],
                         open_timeout=10) as ws:
                client = Client(ws)
                client.pump(1.0)
                assert client.info is not None and client.info["name"] == "kraby_rl"
                ch = client.channels["/joint_states"]
                assert (ch["encoding"], ch["schemaName"], ch["schemaEncoding"]) == \
                    ("cdr", "sensor_msgs/msg/JointState", "ros2msg")
                assert "float64[] position" in ch["schema"]
                client.subscribe(1, "/joint_states")
                client.subscribe(2, "/robot_description")
                got = []
                for _ in range(20):
                    publish_some(0.1)
                    got += client.pump(0.05)
                got += client.pump(0.5)
        finally:
            server.stop()
    joints = [STORE.deserialize_cdr(p, "sensor_msgs/msg/JointState") for s, _t, p in got
              if s == 1]
    assert len(joints) >= 10
    assert all(list(m.name) == ["lf_coxa", "lf_femur"] and list(m.position) == [0.25, -0.5]
               for m in joints)
    stamps = [m.header.stamp.nanosec for m in joints]
    assert stamps == sorted(stamps)
    descs = [STORE.deserialize_cdr(p, "std_msgs/msg/String") for s, _t, p in got if s == 2]
    assert [d.data for d in descs] == [text.data], "the latched description was not re-sent"


def test_the_sim_stack_with_foxglove_serves_description_tf_and_joint_states():
    port = free_port()
    stack = Process(KRABY + ["launch", "sim", f"foxglove:={port}", "--duration", "60"])
    try:
        deadline = time.monotonic() + 60
        client, got = None, []
        while time.monotonic() < deadline and stack.proc.poll() is None:
            if "serving /joint_states" in stack.stderr and "serving /tf_static" in stack.stderr:
                break
            time.sleep(0.2)
        with connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"],
                     open_timeout=10) as ws:
            client = Client(ws)
            client.pump(1.0)
            wanted = ["/joint_states", "/robot_description", "/tf", "/tf_static", "/odom"]
            assert set(wanted) <= set(client.channels), sorted(client.channels)
            for k, topic in enumerate(wanted):
                client.subscribe(k, topic)
            got = client.pump(3.0)
    finally:
        stack.stop()
    by_sub = {}
    for sub, _t, payload in got:
        by_sub.setdefault(sub, []).append(payload)
    js = STORE.deserialize_cdr(by_sub[0][-1], "sensor_msgs/msg/JointState")
    assert len(js.position) == 18 and js.name[0] == "lf_coxa"
    urdf = STORE.deserialize_cdr(by_sub[1][0], "std_msgs/msg/String").data
    assert urdf.lstrip().startswith("<") and "lf_coxa" in urdf
    tf = STORE.deserialize_cdr(by_sub[2][-1], "tf2_msgs/msg/TFMessage")
    static = STORE.deserialize_cdr(by_sub[3][0], "tf2_msgs/msg/TFMessage")
    assert tf.transforms and static.transforms
    assert len(by_sub[0]) > 50 and len(by_sub[4]) > 50     # 50 Hz streams for 3 s


def test_the_shipped_layout_names_topics_the_stack_has():
    with open(os.path.join(ROOT, "config", "foxglove_layout.json")) as fh:
        layout = json.load(fh)
    found = set()

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and value.startswith("/"):
            found.add(value.split(".")[0].split("{")[0])
    walk(layout["configById"])
    stack = {n if n.startswith("/") else "/" + n for n in STREAM_TOPICS}
    stack |= {"/robot_description", "/tf", "/tf_static", "/safety/state", "/safety/marker",
              "/diagnostics", "/emergency_stop"}
    topics = {t for t in found if t.count("/") <= 2 and not t.startswith("/.")}
    assert topics, "the layout names no topic"
    assert topics <= stack, topics - stack
    assert {"/joint_states", "/odom", "/cmd_vel", "/safety/state"} <= topics


def test_bad_address_is_refused():
    from kraby_rl.ros.foxglove_server import parse_address
    assert parse_address("true") == ("127.0.0.1", 8765)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    for bad in ("yes", "host:", ":80", "127.0.0.1:70000"):
        try:
            parse_address(bad)
        except ValueError as exc:
            assert "expected true, PORT or HOST:PORT" in str(exc) and repr(bad) in str(exc)
        else:
            raise AssertionError(bad)
