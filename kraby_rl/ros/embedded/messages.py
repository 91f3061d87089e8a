"""ROS 2 message classes generated from the ROS 2 Jazzy definitions that `rosbags` carries.

Each class is a CycloneDDS `IdlStruct` dataclass with ROS 2's field names, default values and
constants, and ROS 2's DDS type name (`sensor_msgs::msg::dds_::JointState_`), so its XCDR1
little-endian serialisation is what rmw_cyclonedds puts on the wire. Nothing is written by
hand: the field list, the constants and the RIHS01 type hash all come from rosbags' typestore.

Like rclpy's message classes, sequence and array fields accept numpy arrays (they are stored
as lists of Python scalars, so the CDR writer sees plain values).
"""

import dataclasses
import functools

from cyclonedds.idl import IdlMeta, IdlStruct
from cyclonedds.idl import types as idl
from rosbags.typesys import get_typestore, Stores
from rosbags.typesys.base import Nodetype

# The ROS 2 primitive types and their IDL equivalents (ROS `char` is IDL uint8, `byte` octet).
_PRIMITIVES = {
    "bool": (bool, False), "byte": (idl.uint8, 0), "char": (idl.uint8, 0),
    "int8": (idl.int8, 0), "uint8": (idl.uint8, 0), "int16": (idl.int16, 0),
    "uint16": (idl.uint16, 0), "int32": (idl.int32, 0), "uint32": (idl.uint32, 0),
    "int64": (idl.int64, 0), "uint64": (idl.uint64, 0),
    "float32": (idl.float32, 0.0), "float64": (idl.float64, 0.0),
}

# The message types the stack uses (the list); any other Jazzy type can be loaded by name.
STACK_TYPES = (
    "std_msgs/msg/Bool", "std_msgs/msg/Empty", "std_msgs/msg/String", "std_msgs/msg/Header",
    "std_msgs/msg/Float64MultiArray", "builtin_interfaces/msg/Time",
    "sensor_msgs/msg/JointState", "sensor_msgs/msg/Imu",
    "geometry_msgs/msg/Twist", "geometry_msgs/msg/Vector3", "geometry_msgs/msg/Quaternion",
    "geometry_msgs/msg/Pose", "geometry_msgs/msg/Transform", "geometry_msgs/msg/TransformStamped",
    "nav_msgs/msg/Odometry", "tf2_msgs/msg/TFMessage",
    "diagnostic_msgs/msg/DiagnosticArray", "diagnostic_msgs/msg/DiagnosticStatus",
    "diagnostic_msgs/msg/KeyValue", "rosgraph_msgs/msg/Clock", "visualization_msgs/msg/Marker",
)


@functools.lru_cache(maxsize=1)
def typestore():
    """The ROS 2 Jazzy typestore of rosbags (definitions, reference CDR serializer, hashes)."""
    return get_typestore(Stores.ROS2_JAZZY)


def split_type_name(type_name):
    """'sensor_msgs/msg/JointState' (or 'sensor_msgs/JointState') -> ('sensor_msgs', 'JointState').

    Raises:
        ValueError: naming the type, when it is not of the form 'package/msg/Type'.
    """
    parts = str(type_name).split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or parts[1] != "msg" or not all(parts):
        raise ValueError(f"message type {type_name!r}: expected 'package/msg/Type', "
                         "for example 'std_msgs/msg/Bool'")
    return parts[0], parts[2]


def dds_type_name(type_name):
    """'sensor_msgs/msg/JointState' -> 'sensor_msgs::msg::dds_::JointState_' (ROS 2 on DDS)."""
    pkg, short = split_type_name(type_name)
    return f"{pkg}::msg::dds_::{short}_"


def ros_type_name(dds_name):
    """Inverse of `dds_type_name`; None when `dds_name` is not a ROS 2 message type."""
    parts = dds_name.split("::")
    if len(parts) != 4 or parts[1:3] != ["msg", "dds_"] or not parts[3].endswith("_"):
        return None
    return f"{parts[0]}/msg/{parts[3][:-1]}"


def _coerce(value):
    """numpy arrays and scalars -> plain Python values, as rclpy's setters accept them."""
    tolist = getattr(value, "tolist", None)
    return tolist() if tolist is not None else value


def _setattr(self, name, value):
    object.__setattr__(self, name, _coerce(value))


@functools.lru_cache(maxsize=None)
def get_message(type_name):
    """The message class for a ROS 2 type name such as 'sensor_msgs/msg/JointState'.

    Raises:
        ValueError: naming the type, when Jazzy has no such message.
    """
    pkg, short = split_type_name(type_name)
    full = f"{pkg}/msg/{short}"
    store = typestore()
    if full not in store.fielddefs:
        known = sorted(k.split("/")[-1] for k in store.fielddefs if k.startswith(pkg + "/msg/"))
        raise ValueError(f"message type {type_name!r}: not a ROS 2 Jazzy message "
                         f"(known {pkg} types: {', '.join(known) or 'none'})")
    constants, fields = store.fielddefs[full]
    namespace = IdlMeta.__prepare__(short, (IdlStruct,), typename=dds_type_name(full))
    for field_name, (node_type, arg) in fields:
        annotation, default = _field_type(node_type, arg)
        namespace["__annotations__"][field_name] = annotation
        namespace[field_name] = default
    cls = dataclasses.dataclass(IdlMeta(short, (IdlStruct,), namespace))
    cls.__setattr__ = _setattr
    cls.__module__ = f"{pkg}.msg"
    cls.__qualname__ = short
    for const_name, _const_type, value in constants:
        setattr(cls, const_name, value)
    cls._ros_type = full
    cls._nested = {name: _nested(nt, arg) for name, (nt, arg) in fields}
    return cls


def _field_type(node_type, arg):
    """(IDL annotation, dataclass default) for one rosbags field definition."""
    if node_type == Nodetype.BASE:
        base, bound = arg
        if base == "string":
            return (idl.bounded_str[bound] if bound else str), ""
        annotation, zero = _PRIMITIVES[base]
        return annotation, zero
    if node_type == Nodetype.NAME:
        cls = get_message(arg)
        return cls, dataclasses.field(default_factory=cls)
    (sub_type, sub_arg), length = arg
    annotation, default = _field_type(sub_type, sub_arg)
    if node_type == Nodetype.ARRAY:
        if isinstance(default, dataclasses.Field):
            factory = default.default_factory
            make = functools.partial(lambda f, n: [f() for _ in range(n)], factory, length)
        else:
            make = functools.partial(lambda v, n: [v] * n, default, length)
        return idl.array[annotation, length], dataclasses.field(default_factory=make)
    seq = idl.sequence[annotation, length] if length else idl.sequence[annotation]
    return seq, dataclasses.field(default_factory=list)


def _nested(node_type, arg):
    """(message type of the items or None, fixed length or None) of a list field."""
    if node_type not in (Nodetype.ARRAY, Nodetype.SEQUENCE):
        return None, None
    (sub_type, sub_arg), length = arg
    inner = sub_arg if sub_type == Nodetype.NAME else None
    return inner, (length if node_type == Nodetype.ARRAY else None)


def type_hash(type_name):
    """ROS 2's RIHS01 type hash, as rmw_cyclonedds puts it in each endpoint's USER_DATA."""
    pkg, short = split_type_name(type_name)
    return typestore().hash_rihs01(f"{pkg}/msg/{short}")


def message_type_name(msg_or_cls):
    """'sensor_msgs/msg/JointState' for an embedded message class or instance."""
    return getattr(msg_or_cls, "_ros_type")


def to_dict(msg):
    """A message as nested dicts and lists (field order kept), for echo and YAML."""
    if dataclasses.is_dataclass(msg):
        return {f.name: to_dict(getattr(msg, f.name)) for f in dataclasses.fields(msg)}
    if isinstance(msg, (list, tuple)):
        return [to_dict(v) for v in msg]
    if isinstance(msg, (bytes, bytearray)):  # uint8 arrays come back from CDR as bytes
        return list(msg)
    return msg


def from_dict(cls, values, path=None):
    """Build a message of class `cls` from nested dicts (as `ros2 topic pub` takes YAML).

    Raises:
        ValueError: naming the field, what it expected and what it found.
    """
    path = path or message_type_name(cls)
    msg = cls()
    if values is None:
        return msg
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of field names, found {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, value in values.items():
        if name not in fields:
            raise ValueError(f"{path}: no field {name!r} (fields: {', '.join(fields)})")
        current = getattr(msg, name)
        where = f"{path}.{name}"
        if dataclasses.is_dataclass(current):
            setattr(msg, name, from_dict(type(current), value, where))
        elif isinstance(current, list):
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{where}: expected a list, found {value!r}")
            inner, length = cls._nested[name]
            if inner is not None:
                value = [from_dict(get_message(inner), v, f"{where}[{i}]")
                         for i, v in enumerate(value)]
            if length is not None and len(value) != length:
                raise ValueError(f"{where}: expected {length} values, found {len(value)}")
            setattr(msg, name, list(value))
        else:
            setattr(msg, name, _scalar(where, current, value))
    return msg


def _scalar(where, current, value):
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, found {value!r}")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected an integer, found {value!r}")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected a number, found {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, found {value!r}")
    return value
