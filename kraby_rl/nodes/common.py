"""What every kraby_rl node shares: parameter declaration with descriptions, message helpers,
diagnostics."""

import difflib

from kraby_rl import ros
from kraby_rl.core import geometry as G
from kraby_rl.core import joints as J
from kraby_rl.ros.messages import (diagnostic_msgs, geometry_msgs, nav_msgs, sensor_msgs,
                                   std_msgs, tf2_msgs)

LATCHED = ros.LATCHED
# emergency_stop: reliable, keep a few, so a true is never dropped on a busy link.
ESTOP_QOS = ros.QoSProfile(depth=10)


def declare(node, spec):
    """Declare parameters from [(name, default, description), ...]; returns {name: value}."""
    values = {}
    for name, default, description in spec:
        descriptor = ros.ParameterDescriptor(description=description)
        values[name] = node.declare_parameter(name, default, descriptor).value
    warn_unknown_parameters(node, values)
    return values


# set by ROS itself on every node, never a misspelling
_ROS_OWN_PARAMETERS = ("use_sim_time", "start_type_description_service")


def warn_unknown_parameters(node, declared):
    """A value given for a parameter the node does not have (a misspelling in a params file
    or a ``-p``) is logged as a warning naming the closest valid name; it is ignored."""
    for name in ros.parameter_override_names(node):
        if name in declared or name in _ROS_OWN_PARAMETERS or name.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
        hint = (f"did you mean {close[0]!r}?" if close
                else f"its parameters are: {', '.join(sorted(declared))}")
        node.get_logger().warning(f"parameter {name!r} is not a parameter of "
                                  f"{node.get_name()} and is ignored; {hint}")


def require(condition, name, expected, found):
    """Refuse a parameter value with a sentence naming it, what was expected and found."""
    if not condition:
        raise ValueError(f"parameter {name!r}: expected {expected}, found {found!r}")


def joint_state(node, position, velocity=None, effort=None, names=J.JOINT_NAMES,
                stamp=None):
    """A stamped JointState of the 18 joints in canonical order (NaN = unknown); stamped
    ``stamp`` or now on the node clock."""
    msg = sensor_msgs.JointState()
    msg.header.stamp = stamp or node.get_clock().now().to_msg()
    msg.name = list(names)
    msg.position = [float(v) for v in position]
    if velocity is not None:
        msg.velocity = [float(v) for v in velocity]
    if effort is not None:
        msg.effort = [float(v) for v in effort]
    return msg


joint_arrays = J.from_joint_state
"""(18,) positions (and velocities) of a JointState in canonical order; ValueError if bad."""


def odometry(node, position, quaternion, linear, angular, stamp=None,
             frame="odom", child="base_link"):
    """nav_msgs/Odometry: pose in ``frame``, twist in ``child`` (REP 105)."""
    msg = nav_msgs.Odometry()
    msg.header.stamp = stamp or node.get_clock().now().to_msg()
    msg.header.frame_id, msg.child_frame_id = frame, child
    pose, tw = msg.pose.pose, msg.twist.twist
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in position)
    o = pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quaternion)
    tw.linear.x, tw.linear.y, tw.linear.z = (float(v) for v in linear)
    tw.angular.x, tw.angular.y, tw.angular.z = (float(v) for v in angular)
    return msg


def odometry_tf(odom):
    """tf2_msgs/TFMessage with the frame -> child transform of an Odometry."""
    tf = geometry_msgs.TransformStamped()
    tf.header = odom.header
    tf.child_frame_id = odom.child_frame_id
    p = odom.pose.pose.position
    tr = tf.transform
    tr.translation.x, tr.translation.y, tr.translation.z = p.x, p.y, p.z
    tr.rotation = odom.pose.pose.orientation
    return tf2_msgs.TFMessage(transforms=[tf])


def tilt_from_quaternion(x, y, z, w):
    """Angle [rad] between the body's z axis and the world's (0 = level; inf if unset)."""
    return G.tilt_from_quat((x, y, z, w))


def status(name, level, message, values=None, hardware_id=""):
    st = diagnostic_msgs.DiagnosticStatus(level=level, name=name, message=message,
                                          hardware_id=hardware_id)
    st.values = [diagnostic_msgs.KeyValue(key=str(k), value=str(v))
                 for k, v in (values or {}).items()]
    return st


def diagnostics(node, statuses):
    msg = diagnostic_msgs.DiagnosticArray(status=list(statuses))
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


def string(text):
    return std_msgs.String(data=text)


OK = diagnostic_msgs.DiagnosticStatus.OK
WARN = diagnostic_msgs.DiagnosticStatus.WARN
ERROR = diagnostic_msgs.DiagnosticStatus.ERROR

SERVO_FAULTS = "servo/faults"
"""Topic (diagnostic_msgs/DiagnosticArray, transient local, published on change): one
ERROR status per servo in an error state, ``hardware_id`` its joint name, ``message`` what
is wrong; an empty array when none is."""


def servo_faults_msg(node, faults: dict):
    """``servo/faults`` from {joint: (servo id, description)}."""
    return diagnostics(node, [status(f"servo {joint} (ID {sid})", ERROR, what,
                                     hardware_id=joint)
                              for joint, (sid, what) in sorted(faults.items())])


def servo_faults_from(msg) -> dict:
    """{joint: description} from a ``servo/faults`` message."""
    return {st.hardware_id: st.message for st in msg.status if st.level >= ERROR}
