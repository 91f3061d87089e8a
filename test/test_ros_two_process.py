"""The embedded ROS 2 implementation between separate processes over loopback DDS."""

import json
import os
import signal
import time

from cyclonedds.core import Qos, Policy
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
import pytest

from kraby_rl import ros
from kraby_rl.ros.embedded.messages import get_message, type_hash
from kraby_rl.ros.topic_tool import Graph
from kraby_rl.ros.messages import std_msgs
from ros_helpers import peer, processes, ros_node, spin_for, spin_until

RELIABLE = ros.QoSProfile(depth=100)
LATCHED = ros.QoSProfile(depth=1, durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)


@pytest.fixture(scope="module")
def node():
    with ros_node("tester") as n:
        yield n


@pytest.fixture
def peers():
    with processes(peer) as start:
        yield start


def collect(node, topic, qos):
    got = []
    sub = node.create_subscription(std_msgs.String, topic, lambda m: got.append(m.data), qos)
    return got, sub


def start_when_matched(node, sub, topic):
    """Discovery is not symmetric: the writer can match this reader before this reader
    knows the writer, and a volatile reader drops what comes from a writer it does not know
    yet. Tell the publisher to start once both sides have matched."""
    assert spin_until(node, lambda: sub.get_publisher_count() > 0)
    go = node.create_publisher(std_msgs.String, topic, LATCHED)
    go.publish(std_msgs.String(data="go"))
    return go


def test_reliable_delivery_is_complete_and_ordered(node, peers):
    got, sub = collect(node, "rel_chatter", RELIABLE)
    p = peers("pub", "--topic", "rel_chatter", "--count", "50", "--period", "0.002",
              "--wait-subscribers", "1", "--start-on", "rel_chatter_go")
    go = start_when_matched(node, sub, "rel_chatter_go")
    p.expect("done")
    assert spin_until(node, lambda: len(got) >= 50)
    assert got == [str(i) for i in range(50)]
    node.destroy_subscription(sub)
    node.destroy_publisher(go)


def test_best_effort_delivery(node, peers):
    got, sub = collect(node, "be_chatter", ros.qos_profile_sensor_data)
    p = peers("pub", "--topic", "be_chatter", "--count", "50", "--period", "0.005",
              "--reliability", "best_effort", "--depth", "5", "--wait-subscribers", "1")
    spin_until(node, lambda: len(got) >= 50, timeout=6.0)  # keep up: the reader keeps 5
    p.expect("done")
    assert len(got) >= 45 and got == sorted(got, key=int)
    node.destroy_subscription(sub)


def test_transient_local_late_joiner_gets_the_last_sample_volatile_does_not(node, peers):
    p = peers("pub", "--topic", "latched", "--count", "3", "--period", "0.01",
              "--durability", "transient_local", "--depth", "1")
    p.expect("done")
    late, sub = collect(node, "latched", LATCHED)
    assert spin_until(node, lambda: late, timeout=5.0)
    spin_for(node, 0.5)
    assert late == ["2"]
    # a volatile late joiner (its own process, so it shares no cache with the one above)
    volatile = peers("sub", "--topic", "latched", "--depth", "1")
    volatile.expect("matched")
    time.sleep(1.0)
    assert not [e for e in list(volatile.events.queue) if e.get("event") == "msg"]
    node.destroy_subscription(sub)


@pytest.mark.parametrize("writer,reader", [
    (("--reliability", "best_effort"), RELIABLE),
    (("--durability", "volatile"), LATCHED),
])
def test_incompatible_qos_does_not_connect(node, peers, writer, reader):
    got, sub = collect(node, "mismatch", reader)
    compatible, sub_ok = collect(node, "mismatch", ros.qos_profile_sensor_data)
    p = peers("pub", "--topic", "mismatch", "--count", "30", "--period", "0.01", *writer,
              "--wait-subscribers", "1")
    p.expect("done")
    spin_for(node, 1.0)
    assert compatible, "the compatible best-effort volatile reader got nothing"
    assert got == [] and sub.get_publisher_count() == 0
    node.destroy_subscription(sub)
    node.destroy_subscription(sub_ok)


def test_remapping_namespace_and_node_name_and_discovery_info(node, peers):
    got, sub = collect(node, "/robot/talk", RELIABLE)
    p = peers("pub", "--count", "10", "--period", "0.005", "--wait-subscribers", "1",
              "--ros-args", "-r", "__ns:=/robot", "-r", "__node:=talker", "-r", "chatter:=talk")
    assert p.expect("ready")["node"] == "/robot/talker"
    p.expect("done")
    assert spin_until(node, lambda: len(got) == 10)
    # ros_discovery_info tells a ROS 2 graph which node owns which endpoint
    info_type = get_message("rmw_dds_common/msg/ParticipantEntitiesInfo")
    participant = node.context.participant
    reader = DataReader(participant, Topic(participant, "ros_discovery_info", info_type),
                        Qos(Policy.Reliability.Reliable(0), Policy.Durability.TransientLocal,
                            Policy.History.KeepLast(1)))
    nodes = {}
    deadline = time.monotonic() + 5
    while ("/robot", "talker") not in nodes and time.monotonic() < deadline:
        for sample in reader.take(N=50):
            for info in getattr(sample, "node_entities_info_seq", []):
                nodes[(info.node_namespace, info.node_name)] = info
        time.sleep(0.05)
    assert ("/robot", "talker") in nodes
    assert len(nodes[("/robot", "talker")].writer_gid_seq) == 1
    node.destroy_subscription(sub)


def test_endpoints_carry_ros2_names_type_hash_and_domain(node, peers):
    graph = Graph(node.context.participant)
    p = peers("pub", "--topic", "hashed", "--count", "1000", "--period", "0.05")
    p.expect("ready")
    deadline = time.monotonic() + 5
    while not graph.publishers_of("/hashed") and time.monotonic() < deadline:
        graph.refresh()
        time.sleep(0.05)
    (endpoint,) = graph.publishers_of("/hashed")
    assert endpoint.topic_name == "rt/hashed"
    assert endpoint.type_name == "std_msgs::msg::dds_::String_"
    user_data = endpoint.qos[Policy.Userdata].data
    assert user_data == f"typehash={type_hash('std_msgs/msg/String')};".encode()
    assert node.context.participant.get_domain_id() == int(os.environ["ROS_DOMAIN_ID"])


def test_params_file_namespaces_and_overrides(node, peers, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    rate_hz: 25.0\n    label: from_all\n"
                      "/kraby/peer:\n  ros__parameters:\n    gains: [4.0, 5.0]\n"
                      "    limits:\n      max_tilt_rad: 0.35\n")
    got, sub = collect(node, "/kraby/params_out", LATCHED)
    peers("params", "--topic", "params_out", "--ros-args", "-r", "__ns:=/kraby",
          "--params-file", str(params), "-p", "label:=from_cli", "-p", "enabled:=true")
    assert spin_until(node, lambda: got, timeout=10)
    report = json.loads(got[0])
    assert report["node"] == "/kraby/peer"
    assert report["values"] == {"rate_hz": 25.0, "label": "from_cli", "gains": [4.0, 5.0],
                                "enabled": True, "limits.max_tilt_rad": 0.35,
                                "use_sim_time": False}
    node.destroy_subscription(sub)


def test_wrong_parameter_type_stops_the_node_with_a_clear_error(peers):
    p = peers("params", "--ros-args", "-p", "rate_hz:=fast")
    assert p.wait(timeout=20) == 2
    assert "'rate_hz' is declared as DOUBLE but -p gives 'fast'" in p.stderr
    assert "[FATAL]" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signals_end_a_node_cleanly(peers, signum):
    p = peers("sub", "--topic", "quiet")
    p.expect("ready")
    p.proc.send_signal(signum)
    assert p.wait(timeout=5) == 0
    assert "Traceback" not in p.stderr
