"""The stacks, described once: what the ROS 2 launch files and `kraby launch` both start.

A stack is an ordered list of `NodeSpec`s (executable, node name, parameters, remaps). The
launch files in launch/ turn them into `launch_ros.actions.Node`s; `kraby launch` runs the
same executables with the same `--ros-args`, supervises them, forwards Ctrl-C and stops
them in reverse order, so the servo driver (started first) stops last.
"""

from __future__ import annotations

import dataclasses
import os
import sys


from kraby_rl.resources import resolve_policy, SHARE  # noqa: F401 (re-exported)


EXECUTABLES = {
    "servo_driver": "kraby_rl.nodes.servo_driver_node",
    "sim_node": "kraby_rl.nodes.sim_node",
    "state_estimator": "kraby_rl.nodes.state_estimator_node",
    "safety_shield": "kraby_rl.nodes.safety_shield_node",
    "policy_node": "kraby_rl.nodes.policy_node",
    "gym_bridge": "kraby_rl.training.bridge",
    "description_publisher": "kraby_rl.nodes.description_publisher_node",
    "navigator": "kraby_rl.nodes.navigator_node",
}
"""Console script (``ros2 run kraby_rl NAME``) -> module; setup.py installs the same."""

STACKS = ("real", "sim", "sim_train")

ARGUMENTS = {
    "port": ("/dev/ttyUSB0", "servo bus URL, or 'virtual' for the PyBullet-driven virtual bus"),
    "policy": ("walk", "exported policy: a directory or the name of one in policies/"),
    "navigator": ("navigate", "navigation policy that walks to goal_pose (RViz's 2D Goal "
                              "Pose): a directory or a name in policies/; 'none' = no "
                              "navigator"),
    "config": ("", "a params file applied to every node (on top of config/<node>.yaml)"),
    "use_sim_time": ("auto", "follow /clock, published by the sim stack's sim_node (auto: "
                             "true in the sim stack, false elsewhere)"),
    "rviz": ("false", "also start rviz2 with config/kraby.rviz (needs ROS 2)"),
    "namespace": ("", "namespace of every node"),
    "train_config": ("", "sim_train: training YAML ('' = config/train_ppo.yaml)"),
    "run_dir": ("runs/sim_train", "sim_train: where checkpoints and logs go"),
    "record": ("", "record every topic into this rosbag2 bag directory (MCAP storage; "
                   "'' = no recording)"),
    "foxglove": ("false", "serve every topic to the Foxglove app: true (ws://127.0.0.1:8765), "
                          "PORT or HOST:PORT (another address only when you give one)"),
}


# The stack's streams, which the recorder subscribes to before their publishers appear so that
# a bag holds their first message (a sensor publishes from its first period on; discovery
# takes longer). test_bag checks this table against the live graph of a recorded stack.
STREAM_TOPICS = {
    "joint_states": "sensor_msgs/msg/JointState", "imu/data": "sensor_msgs/msg/Imu",
    "/clock": "rosgraph_msgs/msg/Clock", "sim/odom": "nav_msgs/msg/Odometry",
    "odom": "nav_msgs/msg/Odometry", "cmd_vel": "geometry_msgs/msg/Twist",
    "policy/joint_targets": "sensor_msgs/msg/JointState",
    "joint_commands": "sensor_msgs/msg/JointState",
    "servo/jog": "sensor_msgs/msg/JointState",
}
REAL_ONLY_TOPICS = {"servo/jog"}
"""Of STREAM_TOPICS, those only the real stack's servo_driver publishes (not sim_node)."""


def foxglove_command(args):
    """The command of the stack's Foxglove server, or None with ``foxglove:=false``."""
    if args["foxglove"].lower() == "false":
        return None
    from kraby_rl.ros.foxglove_server import parse_address
    host, port = parse_address(args["foxglove"].lower())
    return [sys.executable, "-m", "kraby_rl.ros.foxglove_server", "--host", host,
            "--port", str(port)]


def recorder_command(args):
    """The command of the stack's recorder (``kraby record -a``), or None without
    ``record:=PATH``. The same under ROS 2's launch: the recorder uses kraby's embedded DDS
    and sees the rclpy nodes on the same domain."""
    if not args["record"]:
        return None
    ns = args["namespace"].strip("/")
    expect = [f"--expect={name if name.startswith('/') or not ns else f'/{ns}/{name}'}"
              f":={type_name}" for name, type_name in STREAM_TOPICS.items()]
    return [sys.executable, "-m", "kraby_rl.ros.bag", "record", "-a", "-o", args["record"],
            *expect]


@dataclasses.dataclass
class NodeSpec:
    executable: str                     # a key of EXECUTABLES
    name: str
    parameters: dict = dataclasses.field(default_factory=dict)
    params_files: list = dataclasses.field(default_factory=list)
    remaps: list = dataclasses.field(default_factory=list)
    ros_package: str = "kraby_rl"       # with ROS 2, run this package's executable instead
    ros_executable: str = ""

    @property
    def module(self):
        return EXECUTABLES[self.executable]

    def ros_args(self, namespace=""):
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        if namespace:
            args += ["-r", f"__ns:={namespace}"]
        for path in self.params_files:
            args += ["--params-file", path]
        for key, value in self.parameters.items():
            args += ["-p", f"{key}:={value}"]
        for src, dst in self.remaps:
            args += ["-r", f"{src}:={dst}"]
        return args


def parse_launch_arguments(items):
    """['port:=virtual', ...] -> {name: value} over the defaults.

    Raises:
        ValueError: naming the argument and the known ones.
    """
    values = {k: v for k, (v, _help) in ARGUMENTS.items()}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or name not in ARGUMENTS:
            raise ValueError(f"launch argument {item!r}: expected name:=value with a name "
                             f"from {', '.join(ARGUMENTS)}")
        values[name] = value
    if values["foxglove"].lower() != "false":
        from kraby_rl.ros.foxglove_server import parse_address
        parse_address(values["foxglove"].lower())     # ValueError naming the value
    for name in ("use_sim_time", "rviz"):
        allowed = ("true", "false", "auto") if name == "use_sim_time" else ("true", "false")
        if values[name].lower() not in allowed:
            raise ValueError(f"launch argument {name}: expected {' or '.join(allowed)}, found "
                             f"{values[name]!r}")
        values[name] = values[name].lower()
    return values


def config_file(node):
    return os.path.join(SHARE, "config", f"{node}.yaml")


def rviz_config():
    return os.path.join(SHARE, "config", "kraby.rviz")


def stack(name, args, port_url=None):
    """The NodeSpecs of a stack, in start order (stopped in reverse: the driver last).

    Args:
        name: 'real', 'sim' or 'sim_train'.
        args: launch arguments from `parse_launch_arguments`.
        port_url: the bus URL to give the driver (the virtual bus's, when port:=virtual).
    """
    if name not in STACKS:
        raise ValueError(f"stack {name!r}: expected one of {', '.join(STACKS)}")
    sim_time = args["use_sim_time"]
    if sim_time == "auto":
        sim_time = "true" if name == "sim" else "false"
    common = {"use_sim_time": sim_time}
    extra = [args["config"]] if args["config"] else []

    def node(executable, node_name=None, **params):
        node_name = node_name or executable
        files = [config_file(node_name)] if os.path.exists(config_file(node_name)) else []
        return NodeSpec(executable, node_name, {**common, **params}, files + extra)

    description = node("description_publisher", "robot_state_publisher")
    description.ros_package = description.ros_executable = "robot_state_publisher"
    if name == "sim_train":
        train = {"mode": "sim", "run_dir": args["run_dir"]}
        if args["train_config"]:
            train["train_config"] = args["train_config"]
        return [description, node("gym_bridge", **train)]
    if name == "real":
        robot = node("servo_driver", port=port_url or args["port"])
    else:
        # the clock's source runs on the wall clock: its own timer makes sim time advance
        robot = node("sim_node", publish_clock=sim_time)
        robot.parameters["use_sim_time"] = "false"
    nodes = [robot, description, node("state_estimator"), node("safety_shield"),
             node("policy_node", policy=args["policy"])]
    if args["navigator"].lower() not in ("", "none"):
        nodes.append(node("navigator", policy=args["navigator"]))
    return nodes


def ros_node_arguments(spec, args):
    """The keyword arguments of ``launch_ros.actions.Node`` for a NodeSpec (ROS 2 path)."""
    import yaml
    params = {k: yaml.safe_load(v) if isinstance(v, str) else v
              for k, v in spec.parameters.items()}
    if spec.ros_package == "robot_state_publisher":
        from kraby_rl.core.urdf import find_urdf
        with open(find_urdf()) as fh:
            params["robot_description"] = fh.read()
    return {"package": spec.ros_package, "executable": spec.ros_executable or spec.executable,
            "name": spec.name, "namespace": args["namespace"],
            "parameters": [*spec.params_files, params], "remappings": list(spec.remaps),
            "output": "screen"}


VIRTUAL_BUS_LINK = "/tmp/kraby_virtual_bus"


def launch_description(stack_name):
    """The ``LaunchDescription`` of launch/<stack_name>.launch.py (needs ROS 2's launch)."""
    from launch import LaunchDescription
    from launch.actions import (DeclareLaunchArgument, ExecuteProcess, OpaqueFunction,
                                TimerAction)
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    def build(context):
        values = parse_launch_arguments(
            f"{k}:={LaunchConfiguration(k).perform(context)}" for k in ARGUMENTS)
        actions, delay = [], 0.0
        port_url = None
        if stack_name == "real" and values["port"] == "virtual":
            link = f"{VIRTUAL_BUS_LINK}_{os.getpid()}"
            actions.append(ExecuteProcess(cmd=[sys.executable, "-m", "kraby_rl.cli", "fake-bus",
                                               "--pty", "--physics", "pybullet", "--link", link],
                                          output="screen"))
            port_url, delay = link, 3.0         # the pty link exists once the bus runs
        for cmd in (recorder_command(values), foxglove_command(values)):
            if cmd:
                actions.append(ExecuteProcess(cmd=cmd, output="screen", sigterm_timeout="10"))
        nodes = [Node(**ros_node_arguments(spec, values))
                 for spec in stack(stack_name, values, port_url)]
        actions += [TimerAction(period=delay, actions=nodes)] if delay else nodes
        return actions

    declared = [DeclareLaunchArgument(k, default_value=v, description=h)
                for k, (v, h) in ARGUMENTS.items()]
    rviz = Node(package="rviz2", executable="rviz2", arguments=["-d", rviz_config()],
                condition=IfCondition(LaunchConfiguration("rviz")), output="screen")
    return LaunchDescription([*declared, OpaqueFunction(function=build), rviz])
