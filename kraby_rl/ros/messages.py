"""ROS 2 message classes through the facade: the ROS 2 ones under rclpy, generated otherwise.

    from kraby_rl.ros.messages import sensor_msgs, std_msgs
    msg = sensor_msgs.JointState(name=["lf_coxa"], position=[0.1])

`get_message('std_msgs/msg/Bool')` loads any message type by its ROS 2 name.
"""

import importlib

from . import IMPLEMENTATION

PACKAGES = ("std_msgs", "builtin_interfaces", "sensor_msgs", "geometry_msgs", "nav_msgs",
            "tf2_msgs", "diagnostic_msgs", "rosgraph_msgs", "visualization_msgs")

if IMPLEMENTATION == "rclpy":
    from rosidl_runtime_py.utilities import get_message  # noqa: F401

    def _package(name):
        return importlib.import_module(f"{name}.msg")
else:
    from .embedded.messages import get_message  # noqa: F401

    class _Package:
        """`sensor_msgs.JointState`: message classes of one package, loaded on first use."""

        def __init__(self, name):
            self._name = name

        def __getattr__(self, short):
            if short.startswith("_"):
                raise AttributeError(short)
            try:
                return get_message(f"{self._name}/msg/{short}")
            except ValueError as exc:
                raise AttributeError(str(exc)) from None

        def __repr__(self):
            return f"<ROS 2 message package {self._name}>"

    def _package(name):
        return _Package(name)

std_msgs = _package("std_msgs")
builtin_interfaces = _package("builtin_interfaces")
sensor_msgs = _package("sensor_msgs")
geometry_msgs = _package("geometry_msgs")
nav_msgs = _package("nav_msgs")
tf2_msgs = _package("tf2_msgs")
diagnostic_msgs = _package("diagnostic_msgs")
rosgraph_msgs = _package("rosgraph_msgs")
visualization_msgs = _package("visualization_msgs")
