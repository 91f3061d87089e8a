"""Recording and replay: rosbag2 bags (MCAP) read back by `rosbags`, an independent reader,
hold exactly the bytes that were on the wire; `kraby bag play` republishes them; a recorded
demo replayed into a fresh state estimator gives the same odometry."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from kraby_rl import ros
from kraby_rl.evaluation.from_bag import figures_from_bag
from kraby_rl.ros.messages import nav_msgs, sensor_msgs, std_msgs
from kraby_rl.stack.description import REAL_ONLY_TOPICS, STREAM_TOPICS
from ros_helpers import Process, ros_node, spin_for, spin_until

KRABY = [sys.executable, "-m", "kraby_rl.cli"]


def read_bag(path):
    """{topic: [(timestamp, raw bytes, decoded)]} and {topic: connection} via rosbags."""
    out, conns = {}, {}
    with AnyReader([Path(path)]) as reader:
        for conn in reader.connections:
            conns[conn.topic] = conn
        for conn, stamp, raw in reader.messages():
            out.setdefault(conn.topic, []).append(
                (stamp, bytes(raw), reader.deserialize(raw, conn.msgtype)))
    return out, conns


def stop(proc, timeout=20):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def joint_state(i):
    msg = sensor_msgs.JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + i, 1000 * i
    msg.header.frame_id = "base_link"
    msg.name = [f"j{k}" for k in range(3)]
    msg.position = [0.1 * i, -0.2, 0.3 + i]
    msg.velocity = [float(i), 0.0, -1.5]
    return msg


def test_record_info_and_play_keep_the_wire_bytes(tmp_path):
    bag = str(tmp_path / "bag")
    with ros_node("bag_test") as node:
        live = []
        node.create_subscription(sensor_msgs.JointState, "rec/joints", live.append, 50,
                                 raw=True)
        js = node.create_publisher(sensor_msgs.JointState, "rec/joints", 50)
        latched = node.create_publisher(std_msgs.String, "rec/latched",
                                        ros.QoSProfile(depth=1,
                                                       durability=ros.DurabilityPolicy
                                                       .TRANSIENT_LOCAL))
        hello = std_msgs.String()
        hello.data = "published before the recorder started"
        latched.publish(hello)
        rec = Process(KRABY + ["record", "rec/joints", "rec/latched", "-o", bag])
        try:
            # the recorder says so once it has subscribed to both
            assert spin_until(node, lambda: rec.stderr.count("kraby record: recording") == 2,
                              timeout=30), rec.stderr
            spin_for(node, 0.5)
            for i in range(30):
                js.publish(joint_state(i))
                spin_for(node, 0.02)
            assert spin_until(node, lambda: len(live) == 30, timeout=10)
            spin_for(node, 0.5)
        finally:
            stop(rec.proc)          # SIGINT, as Ctrl-C: the bag is closed properly
            rec.stop()
        time.sleep(0.2)
        err = rec.stderr
        assert rec.proc.returncode == 0, err
        assert "recording /rec/joints [sensor_msgs/msg/JointState]" in err
        assert "messages on 2 topics" in err

        sent = [bytes(b) for b in live]     # (live sees the replay below too)
        data, conns = read_bag(bag)
        assert [raw for _t, raw, _m in data["/rec/joints"]] == sent
        for i, (_t, _raw, m) in enumerate(data["/rec/joints"]):
            want = joint_state(i)
            assert (m.header.stamp.sec, m.header.stamp.nanosec, m.header.frame_id) == \
                (want.header.stamp.sec, want.header.stamp.nanosec, "base_link")
            assert list(m.name) == want.name
            np.testing.assert_array_equal(m.position, want.position)
            np.testing.assert_array_equal(m.velocity, want.velocity)
        assert [m.data for _t, _r, m in data["/rec/latched"]] == [hello.data]
        joints = conns["/rec/joints"]
        assert joints.msgtype == "sensor_msgs/msg/JointState"
        assert joints.digest.startswith("RIHS01_") and "float64[] position" in \
            joints.msgdef.data
        qos = conns["/rec/latched"].ext.offered_qos_profiles
        assert [q.durability.name for q in qos] == ["TRANSIENT_LOCAL"]
        stamps = [t for t, _r, _m in data["/rec/joints"]]
        assert stamps == sorted(stamps) and stamps[-1] - stamps[0] > 0.4e9

        info = subprocess.run(KRABY + ["bag", "info", bag], capture_output=True, text=True,
                              timeout=60)
        assert info.returncode == 0, info.stderr
        assert "Storage id:        mcap" in info.stdout
        assert "Messages:          31" in info.stdout
        assert "Topic: /rec/joints  | Type: sensor_msgs/msg/JointState | Count: 30" in \
            info.stdout

        # play: the same bytes again, in order, with the recorded spacing (rate 2: half)
        replayed = []
        node.create_subscription(sensor_msgs.JointState, "rec/joints", replayed.append, 50,
                                 raw=True)
        play = Process(KRABY + ["bag", "play", bag, "--topics", "rec/joints", "--rate", "2"])
        try:
            assert spin_until(node, lambda: play.proc.poll() is not None and len(replayed) >= 30,
                              timeout=60), play.stderr
        finally:
            play.stop()
        assert play.proc.returncode == 0, play.stderr
        assert [bytes(b) for b in replayed] == sent
        assert "30 messages on 1 topics" in play.stderr
    p = subprocess.run(KRABY + ["eval", "--from-bag", bag], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and "expected a /joint_states topic" in p.stderr, p.stderr


def test_bad_bag_input_is_refused_with_the_thing_named(tmp_path):
    missing = str(tmp_path / "nope")
    p = subprocess.run(KRABY + ["bag", "info", missing], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2 and f"bag {missing!r}: no such directory" in p.stderr
    (tmp_path / "taken").mkdir()
    p = subprocess.run(KRABY + ["record", "-a", "-o", str(tmp_path / "taken"), "--duration",
                                "1"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "exists already" in p.stderr
    p = subprocess.run(KRABY + ["record", "-o", str(tmp_path / "b")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "name the topics to record, or give -a" in p.stderr
    p = subprocess.run(KRABY + ["record", "-a", "-o", str(tmp_path / "c"), "--expect",
                                "joint_states"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "expected TOPIC:=TYPE" in p.stderr
    p = subprocess.run(KRABY + ["bag", "play", str(tmp_path / "taken")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and "cannot be read" in p.stderr
    p = subprocess.run(KRABY + ["launch", "sim", f"record:={tmp_path / 'taken'}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "exists already" in p.stderr


def _odometry(messages):
    """{header stamp: (x, y)} of odometry messages."""
    return {(m.header.stamp.sec, m.header.stamp.nanosec):
            (m.pose.pose.position.x, m.pose.pose.position.y) for m in messages}


def test_a_recorded_demo_replays_into_a_fresh_estimator(tmp_path):
    """kraby demo --record: the bag holds every joint_states message a live subscriber saw,
    byte for byte; the stack's streams have the types STREAM_TOPICS gives; played back into
    a fresh state_estimator, the recorded joint_states, imu/data and /clock give the
    recorded odometry (final position within 1 % of the distance walked)."""
    bag = str(tmp_path / "demo")
    with ros_node("bag_demo_watch") as node:
        live = []
        node.create_subscription(sensor_msgs.JointState, "joint_states", live.append, 100,
                                 raw=True)
        demo = subprocess.Popen(KRABY + ["demo", "--seconds", "8", "--record", bag],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while demo.poll() is None:
                ros.spin_once(node, timeout_sec=0.02)
        finally:
            stop(demo, timeout=60)
        out, err = demo.communicate()
        assert demo.returncode == 0, err[-3000:]
    report = json.loads(out.strip().splitlines()[-1])
    assert report["distance_m"] > 0.8
    data, conns = read_bag(bag)
    assert report["bag"]["messages"] == sum(len(v) for v in data.values())
    for name, type_name in STREAM_TOPICS.items():
        if name in REAL_ONLY_TOPICS:        # servo_driver's: the demo runs the sim stack
            continue
        fqn = name if name.startswith("/") else "/" + name
        assert conns[fqn].msgtype == type_name, fqn
        assert data[fqn], f"nothing recorded on {fqn}"
    assert {"/robot_description", "/tf_static", "/safety/state", "/diagnostics"} <= set(data)
    recorded = {raw for _t, raw, _m in data["/joint_states"]}
    missing = [i for i, b in enumerate(live) if bytes(b) not in recorded]
    assert live and not missing, (len(live), len(recorded), missing[:10], missing[-10:])
    first = data["/joint_states"][0][2].header.stamp
    assert (first.sec, first.nanosec) <= (0, 20_000_000), "the bag misses the first states"

    # the robot's own figures from the recording, against the simulator's ground truth
    fig = figures_from_bag(bag)
    assert fig["samples"] == len(data["/joint_states"]) and fig["effort"]
    assert abs(fig["vx"] - report["speed_m_s"]) < 0.1 * report["speed_m_s"], fig["vx"]
    assert abs(fig["heading_change_deg"] - report["turn_deg"]) < 3.0
    assert abs(fig["step_freq_hz"] - 2.0) < 0.2 and 0.4 < fig["duty_factor"] < 0.65
    assert fig["slip_mean"] < 0.03 and fig["command"] == pytest.approx([0.15, 0, 0])

    est = Process([sys.executable, "-m", "kraby_rl.nodes.state_estimator_node", "--ros-args",
                   "-r", "__node:=replay_estimator", "-p", "use_sim_time:=true",
                   "-r", "odom:=replay/odom", "-r", "tf:=replay/tf"])
    try:
        with ros_node("bag_replay_watch") as node:
            replayed = []
            node.create_subscription(nav_msgs.Odometry, "replay/odom", replayed.append, 100)
            # the estimator is up once its joint_states reader is on the graph
            probe = node.create_publisher(sensor_msgs.JointState, "joint_states", 10)
            assert spin_until(node, lambda: probe.get_subscription_count() >= 1, timeout=60), \
                est.stderr
            node.destroy_publisher(probe)
            play = Process(KRABY + ["bag", "play", bag, "--topics", "joint_states",
                                    "imu/data", "/clock", "--wait-for-readers", "60",
                                    "--delay", "2"])
            try:
                assert spin_until(node, lambda: play.proc.poll() is not None, timeout=120), \
                    play.stderr
                spin_for(node, 1.0)
            finally:
                play.stop()
            assert play.proc.returncode == 0, play.stderr
    finally:
        est.stop()
    want = _odometry(m for _t, _r, m in data["/odom"])
    got = _odometry(replayed)
    common = sorted(set(want) & set(got))
    assert len(common) >= 0.99 * len(data["/joint_states"]), (len(common), len(want))
    start, end = np.array(want[common[0]]), np.array(want[common[-1]])
    walked = np.linalg.norm(end - start)
    assert walked > 0.8
    assert np.linalg.norm(np.array(got[common[-1]]) - end) < 0.01 * walked
    assert np.allclose(got[common[0]], want[common[0]], atol=1e-6)
