"""Embedded ROS 2 messages: byte-identical CDR to rosbags' reference serializer, ROS 2 names."""

import dataclasses

from hypothesis import given, HealthCheck, settings, strategies as st
import numpy as np
import pytest
from rosbags.typesys.base import Nodetype

from kraby_rl.ros.embedded import messages as m

ALL_TYPES = m.STACK_TYPES + ("rmw_dds_common/msg/ParticipantEntitiesInfo",
                             "builtin_interfaces/msg/Duration")
INT_RANGES = {"int8": (-2**7, 2**7 - 1), "uint8": (0, 255), "byte": (0, 255), "char": (0, 255),
              "int16": (-2**15, 2**15 - 1), "uint16": (0, 2**16 - 1),
              "int32": (-2**31, 2**31 - 1), "uint32": (0, 2**32 - 1),
              "int64": (-2**63, 2**63 - 1), "uint64": (0, 2**64 - 1)}
NUMPY = {"int8": np.int8, "uint8": np.uint8, "byte": np.uint8, "char": np.uint8,
         "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
         "int64": np.int64, "uint64": np.uint64, "float32": np.float32,
         "float64": np.float64, "bool": np.bool_}
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)


def _base_strategy(base, bound):
    if base == "string":
        return st.text("abcxyz_/ 019", max_size=bound) if bound else TEXT
    if base == "bool":
        return st.booleans()
    if base == "float64":
        return st.floats(allow_nan=False, width=64)
    if base == "float32":
        return st.floats(allow_nan=False, width=32)
    lo, hi = INT_RANGES[base]
    return st.integers(lo, hi)


def values_for(type_name):
    """A strategy of nested dicts (field -> value) for a ROS 2 type, from its definition."""
    _consts, fields = m.typestore().fielddefs[type_name]
    return st.fixed_dictionaries({name: _field_strategy(nt, arg) for name, (nt, arg) in fields})


def _field_strategy(node_type, arg):
    if node_type == Nodetype.BASE:
        return _base_strategy(*arg)
    if node_type == Nodetype.NAME:
        return st.deferred(lambda: values_for(arg))
    (sub_type, sub_arg), length = arg
    inner = _field_strategy(sub_type, sub_arg)
    if node_type == Nodetype.ARRAY:
        return st.lists(inner, min_size=length, max_size=length)
    return st.lists(inner, max_size=min(length, 4) if length else 4)


def to_rosbags(type_name, values):
    """The same values as a rosbags message object (numpy arrays for numeric sequences)."""
    store = m.typestore()
    _consts, fields = store.fielddefs[type_name]
    kwargs = {}
    for name, (nt, arg) in fields:
        value = values[name]
        if nt == Nodetype.NAME:
            value = to_rosbags(arg, value)
        elif nt == Nodetype.BASE and arg[0] == "byte" and value > 127:
            value -= 256  # rosbags holds ROS `byte` (IDL octet) as int8; same byte on the wire
        elif nt in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            (sub_type, sub_arg), _length = arg
            if sub_type == Nodetype.NAME:
                value = [to_rosbags(sub_arg, v) for v in value]
            elif sub_arg[0] != "string":
                value = np.array(value, dtype=NUMPY[sub_arg[0]])
        kwargs[name] = value
    return store.types[type_name](**kwargs)


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_cdr_is_byte_identical_to_rosbags(type_name):
    cls = m.get_message(type_name)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values_for(type_name))
    def check(values):
        ours = m.from_dict(cls, values).serialize()
        reference = bytes(m.typestore().serialize_cdr(to_rosbags(type_name, values), type_name))
        assert ours == reference
        assert ours[:4] == b"\x00\x01\x00\x00"  # XCDR1 (plain CDR), little-endian
        back = cls.deserialize(ours)
        assert m.to_dict(back) == m.to_dict(m.from_dict(cls, values))

    check()


@pytest.mark.parametrize("type_name", ALL_TYPES)
def test_dds_type_name_and_hash_are_ros2s(type_name):
    pkg, _, short = type_name.split("/")
    cls = m.get_message(type_name)
    assert cls.__idl_typename__ == f"{pkg}::msg::dds_::{short}_"
    assert m.ros_type_name(cls.__idl_typename__) == type_name
    assert m.type_hash(type_name).startswith("RIHS01_") and len(m.type_hash(type_name)) == 71


def test_known_hash_and_fields_match_ros2():
    # The JointState hash a Jazzy `ros2 topic info -v` prints.
    assert m.type_hash("sensor_msgs/msg/JointState") == \
        "RIHS01_a13ee3a330e346c9d87b5aa18d24e11690752bd33a0350f11c5882bc9179260e"
    js = m.get_message("sensor_msgs/msg/JointState")()
    assert [f.name for f in dataclasses.fields(js)] == \
        ["header", "name", "position", "velocity", "effort"]
    status = m.get_message("diagnostic_msgs/msg/DiagnosticStatus")
    assert (status.OK, status.WARN, status.ERROR, status.STALE) == (0, 1, 2, 3)
    imu = m.get_message("sensor_msgs/msg/Imu")()
    assert imu.orientation_covariance == [0.0] * 9


def test_numpy_values_are_accepted_like_rclpy():
    js_cls = m.get_message("sensor_msgs/msg/JointState")
    a = js_cls(name=["a", "b"], position=np.array([0.5, -1.0]))
    b = js_cls(name=["a", "b"], position=[0.5, -1.0])
    a.velocity = np.zeros(2)
    b.velocity = [0.0, 0.0]
    assert a.serialize() == b.serialize()


def test_from_dict_errors_name_the_field():
    twist = m.get_message("geometry_msgs/msg/Twist")
    assert m.from_dict(twist, {"linear": {"x": 1}}).linear.x == 1.0
    with pytest.raises(ValueError, match=r"Twist.linear: no field 'q'"):
        m.from_dict(twist, {"linear": {"q": 1}})
    with pytest.raises(ValueError, match=r"Bool.data: expected true or false, found 'yes'"):
        m.from_dict(m.get_message("std_msgs/msg/Bool"), {"data": "yes"})
    with pytest.raises(ValueError, match=r"orientation_covariance: expected 9 values, found 2"):
        m.from_dict(m.get_message("sensor_msgs/msg/Imu"), {"orientation_covariance": [1, 2]})
    with pytest.raises(ValueError, match=r"'std_msgs/msg/Nope': not a ROS 2 Jazzy message"):
        m.get_message("std_msgs/msg/Nope")
    with pytest.raises(ValueError, match=r"expected 'package/msg/Type'"):
        m.get_message("JointState")
