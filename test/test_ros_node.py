"""Embedded Node behaviour inside one process: parameters, sim time, timers, logger, errors."""

import time

import pytest

from kraby_rl import ros
from kraby_rl.bench.ros import run_pubsub
from kraby_rl.ros.messages import builtin_interfaces, rosgraph_msgs, std_msgs
from ros_helpers import spin_for


@pytest.fixture
def context():
    ros.init(args=["test", "--ros-args", "-p", "gain:=2", "-r", "in:=remapped_in"])
    yield
    ros.shutdown()


def test_parameters_declare_override_describe_and_set(context):
    node = ros.Node("params_node")
    desc = ros.ParameterDescriptor(description="loop rate [Hz]",
                                   floating_point_range=[ros.FloatingPointRange(
                                       from_value=1.0, to_value=200.0)])
    assert node.declare_parameter("rate_hz", 50.0, desc).value == 50.0
    assert node.declare_parameter("gain", 1.0).value == 2.0        # -p gain:=2, int -> float
    assert node.describe_parameter("rate_hz").description == "loop rate [Hz]"
    assert node.get_parameter("use_sim_time").value is False
    ok, bad_type, bad_range = node.set_parameters([
        ros.Parameter("rate_hz", value=100.0), ros.Parameter("rate_hz", value="x"),
        ros.Parameter("rate_hz", value=500.0)])
    assert ok.successful and not bad_type.successful and not bad_range.successful
    assert "expected a value in [1.0, 200.0], found 500.0" in bad_range.reason
    assert node.get_parameter("rate_hz").value == 100.0
    with pytest.raises(ros.ParameterNotDeclaredException, match="'nope'"):
        node.get_parameter("nope")
    with pytest.raises(ros.InvalidParameterValueException, match=r"found 0.0"):
        node.declare_parameter("other_rate", 0.0, ros.ParameterDescriptor(
            floating_point_range=[ros.FloatingPointRange(from_value=1.0, to_value=2.0)]))
    with pytest.raises(ros.ParameterAlreadyDeclaredException):
        node.declare_parameter("rate_hz", 1.0)
    node.destroy_node()


def test_sim_time_follows_clock_and_drives_timers(context):
    node = ros.Node("sim_node", parameter_overrides=[ros.Parameter("use_sim_time", value=True)])
    assert node.get_clock().now().nanoseconds == 0
    source = ros.Node("clock_source")
    pub = source.create_publisher(rosgraph_msgs.Clock, "/clock", 10)
    ticks = []
    node.create_timer(0.1, lambda: ticks.append(node.get_clock().now().nanoseconds))
    for k in range(1, 11):               # 1 s of simulated time, published in 0.1 s steps
        pub.publish(rosgraph_msgs.Clock(clock=builtin_interfaces.Time(sec=0,
                                                                      nanosec=k * 100_000_000)))
        spin_for(node, 0.03)
    assert node.get_clock().now().nanoseconds == 1_000_000_000
    assert 8 <= len(ticks) <= 10          # one per 0.1 s of sim time, not of wall time
    assert ros.age_clock(node)() == 1.0   # ages and gait clocks follow sim time too
    wall = ros.Node("wall")               # without use_sim_time: monotonic, not the wall
    assert ros.age_clock(wall) is time.monotonic
    node.destroy_node()
    source.destroy_node()
    wall.destroy_node()


def test_timer_rate_remaps_and_logger(context, capsys):
    node = ros.Node("timing", namespace="kraby")
    calls = []
    node.create_timer(0.02, lambda: calls.append(time.monotonic()))
    spin_for(node, 1.0)
    assert 45 <= len(calls) <= 51
    sub = node.create_subscription(std_msgs.Bool, "in", lambda m: None, 10)
    assert sub.topic_name == "/kraby/remapped_in"
    for _ in range(3):
        node.get_logger().warning("tilt 0.61 rad over 0.5", throttle_duration_sec=10.0)
    node.get_logger().debug("hidden at INFO")
    err = capsys.readouterr().err
    assert err.count("[WARN]") == 1 and "[kraby.timing]: tilt 0.61 rad over 0.5" in err
    assert "hidden" not in err
    with pytest.raises(TypeError, match=r"publish on /kraby/out: expected a std_msgs/msg/Bool"):
        node.create_publisher(std_msgs.Bool, "out", 10).publish(std_msgs.String(data="x"))
    with pytest.raises(ros.InvalidNameError, match="token '9lives'"):
        node.create_publisher(std_msgs.Bool, "9lives", 10)
    node.destroy_node()


def test_spin_ends_when_the_context_is_shut_down(context):
    node = ros.Node("ending")
    node.create_timer(0.05, ros.try_shutdown)
    executor = ros.SingleThreadedExecutor()
    executor.add_node(node)
    executor.spin()                       # returns: the context was shut down in a callback
    assert not ros.ok()
    with pytest.raises(ros.ExternalShutdownException):
        executor.spin_once(timeout_sec=0.1)
    ros.init(args=["again"])              # the fixture's shutdown needs a live context


@pytest.mark.slow
def test_pubsub_bench_delivers_every_message_between_processes():
    result = run_pubsub(count=100, rate_hz=200.0)
    assert result["messages_received"] == 100
    assert result["bytes_per_message"] > 18 * 8 * 3
    assert 0 < result["p50_ms"] <= result["p99_ms"]
