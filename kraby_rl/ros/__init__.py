"""The middleware facade every kraby_rl node imports instead of rclpy.

With a sourced ROS 2 install (`rclpy` importable) this *is* rclpy; otherwise it is the
embedded implementation on CycloneDDS (`kraby_rl.ros.embedded`), which has rclpy's names and
call signatures for the subset the nodes use. Set KRABY_ROS_IMPLEMENTATION=embedded to use
the embedded one even where rclpy is installed.

    from kraby_rl import ros
    from kraby_rl.ros.messages import sensor_msgs

    ros.init(args=argv)
    node = ros.Node("talker")
    pub = node.create_publisher(sensor_msgs.JointState, "joint_states", 10)
    ros.spin(node)

Messages: `kraby_rl.ros.messages` (std_msgs, sensor_msgs, ... and get_message(name)).
"""

import os

IMPLEMENTATION = "embedded"
if os.environ.get("KRABY_ROS_IMPLEMENTATION", "").lower() != "embedded":
    try:
        import rclpy  # noqa: F401
        IMPLEMENTATION = "rclpy"
    except ImportError:
        pass

if IMPLEMENTATION == "rclpy":
    from rcl_interfaces.msg import (FloatingPointRange, IntegerRange,  # noqa: F401
                                    ParameterDescriptor, SetParametersResult)
    from rclpy import init, ok, shutdown, spin, spin_once, try_shutdown  # noqa: F401
    from rclpy.clock import Clock, ClockType  # noqa: F401
    from rclpy.duration import Duration  # noqa: F401
    from rclpy.exceptions import (InvalidParameterTypeException,  # noqa: F401
                                  InvalidParameterValueException,
                                  NameValidationException as InvalidNameError,
                                  ParameterAlreadyDeclaredException,
                                  ParameterNotDeclaredException)
    from rclpy.executors import (ExternalShutdownException,  # noqa: F401
                                 SingleThreadedExecutor)
    from rclpy.logging import get_logger, LoggingSeverity  # noqa: F401
    from rclpy.node import Node  # noqa: F401
    from rclpy.parameter import Parameter  # noqa: F401
    from rclpy.qos import (DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data,  # noqa
                           qos_profile_system_default, QoSPresetProfiles, QoSProfile,
                           ReliabilityPolicy)
    from rclpy.time import Time  # noqa: F401
    from rclpy.utilities import remove_ros_args  # noqa: F401
else:
    from .embedded.arguments import remove_ros_args, RosArgumentError  # noqa: F401
    from .embedded.clock import Clock, ClockType, Duration, Time  # noqa: F401
    from .embedded.context import (ExternalShutdownException, init, ok,  # noqa: F401
                                   shutdown, try_shutdown)
    from .embedded.executor import SingleThreadedExecutor, spin, spin_once  # noqa: F401
    from .embedded.logging import get_logger, LoggingSeverity  # noqa: F401
    from .embedded.names import InvalidNameError  # noqa: F401
    from .embedded.node import Node  # noqa: F401
    from .embedded.parameters import (FloatingPointRange, IntegerRange,  # noqa: F401
                                      InvalidParameterTypeException,
                                      InvalidParameterValueException, Parameter,
                                      ParameterAlreadyDeclaredException, ParameterDescriptor,
                                      ParameterNotDeclaredException, SetParametersResult)
    from .embedded.qos import (DurabilityPolicy, HistoryPolicy,  # noqa: F401
                               qos_profile_sensor_data, qos_profile_system_default,
                               QoSPresetProfiles, QoSProfile, ReliabilityPolicy)


LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Keep the last message for late joiners (robot_description, safety/state)."""


def parameter_override_names(node):
    """Names of every parameter value handed to ``node`` (params files, ``-p``), declared
    or not: rclpy keeps them in ``_parameter_overrides``, the embedded node in
    ``_overrides`` (neither has a public accessor)."""
    overrides = getattr(node, "_parameter_overrides", None)
    if overrides is None:
        overrides = getattr(node, "_overrides", None) or {}
    return sorted(overrides)


def age_clock(node):
    """The clock a node judges ages and runs its clocks on, as a function -> seconds: the
    node clock (simulated time) under ``use_sim_time``, else ``time.monotonic`` (never the
    wall clock, which an NTP step can move back: a safety age must not go negative)."""
    import time
    if node.get_parameter("use_sim_time").value:
        ros_clock = node.get_clock()
        return lambda: ros_clock.now().nanoseconds * 1e-9
    return time.monotonic
