"""Time, Duration and clocks as rclpy has them (rclpy.time, rclpy.duration, rclpy.clock).

A ROS_TIME clock follows the system clock until simulated time is enabled
(`use_sim_time:=true`), then the last /clock message.
"""

import enum
import functools
import time as _time

from .messages import get_message

NS = 1_000_000_000


class ClockType(enum.IntEnum):
    UNINITIALIZED = 0
    ROS_TIME = 1
    SYSTEM_TIME = 2
    STEADY_TIME = 3


@functools.total_ordering
class Duration:
    def __init__(self, *, seconds=0, nanoseconds=0):
        self._ns = int(round(seconds * NS)) + int(nanoseconds)

    @property
    def nanoseconds(self):
        return self._ns

    def to_msg(self):
        sec, nsec = divmod(self._ns, NS)
        return get_message("builtin_interfaces/msg/Duration")(sec=sec, nanosec=nsec)

    def __eq__(self, other):
        return isinstance(other, Duration) and self._ns == other._ns

    def __lt__(self, other):
        return self._ns < other._ns

    def __repr__(self):
        return f"Duration(nanoseconds={self._ns})"


@functools.total_ordering
class Time:
    def __init__(self, *, seconds=0, nanoseconds=0, clock_type=ClockType.SYSTEM_TIME):
        self._ns = int(round(seconds * NS)) + int(nanoseconds)
        if self._ns < 0:
            raise ValueError(f"Time: expected a non-negative time, found {self._ns} ns")
        self.clock_type = ClockType(clock_type)

    @property
    def nanoseconds(self):
        return self._ns

    def seconds_nanoseconds(self):
        return divmod(self._ns, NS)

    def to_msg(self):
        sec, nsec = divmod(self._ns, NS)
        return get_message("builtin_interfaces/msg/Time")(sec=sec, nanosec=nsec)

    @classmethod
    def from_msg(cls, msg, clock_type=ClockType.ROS_TIME):
        return cls(seconds=msg.sec, nanoseconds=msg.nanosec, clock_type=clock_type)

    def __add__(self, other):
        if not isinstance(other, Duration):
            return NotImplemented
        return Time(nanoseconds=self._ns + other.nanoseconds, clock_type=self.clock_type)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, Time):
            if other.clock_type != self.clock_type:
                raise TypeError("cannot subtract times of different clock types "
                                f"({self.clock_type.name} - {other.clock_type.name})")
            return Duration(nanoseconds=self._ns - other._ns)
        if isinstance(other, Duration):
            return Time(nanoseconds=self._ns - other.nanoseconds, clock_type=self.clock_type)
        return NotImplemented

    def __eq__(self, other):
        return isinstance(other, Time) and (self._ns, self.clock_type) == \
            (other._ns, other.clock_type)

    def __lt__(self, other):
        return self._ns < other._ns

    def __hash__(self):
        return hash((self._ns, self.clock_type))

    def __repr__(self):
        return f"Time(nanoseconds={self._ns}, clock_type={self.clock_type.name})"


class Clock:
    def __init__(self, *, clock_type=ClockType.SYSTEM_TIME):
        self.clock_type = ClockType(clock_type)
        self._override_ns = None  # simulated time, when active

    @property
    def ros_time_is_active(self):
        return self._override_ns is not None

    def _set_ros_time_is_active(self, active):
        if self.clock_type != ClockType.ROS_TIME:
            raise RuntimeError("only a ROS_TIME clock can follow simulated time")
        self._override_ns = (self._override_ns or 0) if active else None

    def set_ros_time_override(self, time):
        if self._override_ns is not None:
            self._override_ns = time.nanoseconds

    def now_ns(self):
        if self._override_ns is not None:
            return self._override_ns
        if self.clock_type == ClockType.STEADY_TIME:
            return _time.monotonic_ns()
        return _time.time_ns()

    def now(self):
        return Time(nanoseconds=self.now_ns(), clock_type=self.clock_type)

    def __repr__(self):
        return f"Clock(clock_type={self.clock_type.name})"


class ROSClock(Clock):
    def __init__(self):
        super().__init__(clock_type=ClockType.ROS_TIME)
