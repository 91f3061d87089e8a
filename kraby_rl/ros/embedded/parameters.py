"""Parameters as rclpy has them: Parameter (with Parameter.Type), descriptors, ranges, errors.

Names and fields follow rclpy.parameter.Parameter and rcl_interfaces/msg
(ParameterDescriptor, FloatingPointRange, IntegerRange, SetParametersResult). One
deliberate leniency: an integer given for a DOUBLE parameter is taken as a float
(`-p rate_hz:=50`), which rclpy refuses.
"""

import dataclasses
import enum
import math


class ParameterException(Exception):
    """Base of the parameter errors (rclpy.exceptions names)."""


class ParameterNotDeclaredException(ParameterException):
    def __init__(self, name):
        super().__init__(f"parameter {name!r} has not been declared")


class ParameterAlreadyDeclaredException(ParameterException):
    def __init__(self, name):
        super().__init__(f"parameter {name!r} has already been declared")


class InvalidParameterTypeException(ParameterException, TypeError):
    """A value whose type is not the parameter's declared type."""


class InvalidParameterValueException(ParameterException, ValueError):
    """A value outside the declared range or refused by a set-parameters callback."""


class Parameter:
    """rclpy.parameter.Parameter: a name, a type and a value."""

    class Type(enum.IntEnum):
        NOT_SET = 0
        BOOL = 1
        INTEGER = 2
        DOUBLE = 3
        STRING = 4
        BYTE_ARRAY = 5
        BOOL_ARRAY = 6
        INTEGER_ARRAY = 7
        DOUBLE_ARRAY = 8
        STRING_ARRAY = 9

        @classmethod
        def from_parameter_value(cls, value):
            """The type of a Python value, as rclpy infers it.

            Raises:
                TypeError: for values a parameter cannot hold.
            """
            if value is None:
                return cls.NOT_SET
            if isinstance(value, bool):
                return cls.BOOL
            if isinstance(value, int):
                return cls.INTEGER
            if isinstance(value, float):
                return cls.DOUBLE
            if isinstance(value, str):
                return cls.STRING
            if isinstance(value, (bytes, bytearray)):
                return cls.BYTE_ARRAY
            if isinstance(value, (list, tuple)):
                if value and all(isinstance(v, bool) for v in value):
                    return cls.BOOL_ARRAY
                if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
                    return cls.INTEGER_ARRAY
                if value and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 for v in value):
                    return cls.DOUBLE_ARRAY
                if value and all(isinstance(v, str) for v in value):
                    return cls.STRING_ARRAY
                if not value:
                    return cls.NOT_SET  # an empty list fits any array type
            raise TypeError(f"the value {value!r} cannot be a parameter (expected bool, int, "
                            "float, str, bytes or a list of one of them)")

    ARRAY_TYPES = None  # filled below

    def __init__(self, name, type_=None, value=None):
        if type_ is None:
            type_ = Parameter.Type.from_parameter_value(value)
        self._name = name
        self._type = Parameter.Type(type_)
        self._value = value

    @property
    def name(self):
        return self._name

    @property
    def type_(self):
        return self._type

    @property
    def value(self):
        return self._value

    def __repr__(self):
        return f"Parameter({self._name!r}, {self._type.name}, {self._value!r})"


Parameter.ARRAY_TYPES = {Parameter.Type.BYTE_ARRAY, Parameter.Type.BOOL_ARRAY,
                         Parameter.Type.INTEGER_ARRAY, Parameter.Type.DOUBLE_ARRAY,
                         Parameter.Type.STRING_ARRAY}


@dataclasses.dataclass
class FloatingPointRange:
    from_value: float = 0.0
    to_value: float = 0.0
    step: float = 0.0


@dataclasses.dataclass
class IntegerRange:
    from_value: int = 0
    to_value: int = 0
    step: int = 0


@dataclasses.dataclass
class ParameterDescriptor:
    """rcl_interfaces/msg/ParameterDescriptor (the fields the nodes use)."""

    name: str = ""
    type: int = 0
    description: str = ""
    additional_constraints: str = ""
    read_only: bool = False
    dynamic_typing: bool = False
    floating_point_range: list = dataclasses.field(default_factory=list)
    integer_range: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SetParametersResult:
    successful: bool = False
    reason: str = ""


def coerce(name, declared_type, value, source, dynamic_typing=False):
    """`value` checked against a parameter's declared type (int -> float for DOUBLE).

    Raises:
        InvalidParameterTypeException: naming the parameter, its declared type, the value
            and where the value came from.
    """
    if dynamic_typing or declared_type == Parameter.Type.NOT_SET:
        return value
    if declared_type == Parameter.Type.DOUBLE and isinstance(value, int) \
            and not isinstance(value, bool):
        return float(value)
    if declared_type == Parameter.Type.DOUBLE_ARRAY and isinstance(value, (list, tuple)) \
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [float(v) for v in value]
    try:
        found = Parameter.Type.from_parameter_value(value)
    except TypeError:
        found = None
    if found == declared_type or (found == Parameter.Type.NOT_SET
                                  and declared_type in Parameter.ARRAY_TYPES):
        return list(value) if isinstance(value, tuple) else value
    found_text = found.name if found is not None else type(value).__name__
    raise InvalidParameterTypeException(
        f"parameter {name!r} is declared as {declared_type.name} but {source} gives "
        f"{value!r} ({found_text}); give a {declared_type.name.lower().replace('_', ' ')} "
        "value")


def check_range(name, value, descriptor):
    """Raise InvalidParameterValueException when `value` is outside the descriptor's range."""
    for ranges in (descriptor.floating_point_range, descriptor.integer_range):
        for rng in ranges or []:
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise InvalidParameterValueException(
                        f"parameter {name!r}: expected a finite value in "
                        f"[{rng.from_value}, {rng.to_value}], found {v!r}")
                if not rng.from_value <= v <= rng.to_value:
                    raise InvalidParameterValueException(
                        f"parameter {name!r}: expected a value in [{rng.from_value}, "
                        f"{rng.to_value}], found {v!r}")
