"""The stacks, described once: what the ROS 2 launch files and `kraby launch` both start.

A stack is an ordered list of `NodeSpec`s (executable, node name, parameters, remaps). The
launch files in launch/ turn them into `launch_ros.actions.Node`s; `kraby launch` runs the
same executables with the same `--ros-args`, supervises them, forwards Ctrl-C and stops
them in reverse order, so the servo driver (started first) stops last.

So far only the nodes that exist are in the stacks (issue 5 is in progress).
"""

from __future__ import annotations

import dataclasses
import os

SHARE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ARGUMENTS = {
    "port": ("/dev/ttyUSB0", "servo bus URL, or 'virtual' for the PyBullet-driven virtual bus"),
    "config": ("", "a params file applied to every node (on top of config/<node>.yaml)"),
    "use_sim_time": ("false", "follow /clock"),
    "namespace": ("", "namespace of every node"),
}


@dataclasses.dataclass
class NodeSpec:
    executable: str                     # console script == module kraby_rl.nodes.<x>_node
    name: str
    parameters: dict = dataclasses.field(default_factory=dict)
    params_files: list = dataclasses.field(default_factory=list)
    remaps: list = dataclasses.field(default_factory=list)

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
    return values


def config_file(node):
    return os.path.join(SHARE, "config", f"{node}.yaml")


def stack(name, args, port_url=None):
    """The NodeSpecs of a stack, in start order.

    Args:
        name: 'real' (more to come).
        args: launch arguments from `parse_launch_arguments`.
        port_url: the bus URL to give the driver (the virtual bus's, when port:=virtual).
    """
    if name != "real":
        raise ValueError(f"stack {name!r}: expected one of real (sim and sim_train are not "
                         "built yet)")
    common = {"use_sim_time": args["use_sim_time"]}
    extra = [args["config"]] if args["config"] else []
    return [
        NodeSpec("servo_driver", "servo_driver",
                 {**common, "port": port_url or args["port"]},
                 [config_file("servo_driver"), *extra]),
        NodeSpec("safety_shield", "safety_shield", dict(common),
                 [config_file("safety_shield"), *extra]),
    ]
