"""QoS profiles as rclpy has them, and their translation to CycloneDDS QoS policies.

Names and values follow rclpy.qos. SYSTEM_DEFAULT resolves to what rmw_cyclonedds gives a
ROS 2 endpoint: reliable, volatile, keep last.
"""

import enum

from cyclonedds.core import Policy, Qos
from cyclonedds.util import duration


class ReliabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2


class DurabilityPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2


class HistoryPolicy(enum.IntEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2


class QoSProfile:
    """rclpy.qos.QoSProfile: history, depth, reliability, durability.

    Raises:
        ValueError: when neither history nor depth is given, as rclpy requires.
    """

    def __init__(self, *, history=None, depth=None, reliability=ReliabilityPolicy.RELIABLE,
                 durability=DurabilityPolicy.VOLATILE, **unsupported):
        if unsupported:
            raise ValueError(f"QoSProfile: unsupported settings {sorted(unsupported)} "
                             "(supported: history, depth, reliability, durability)")
        if history is None and depth is None:
            raise ValueError("QoSProfile needs a 'history' and/or 'depth' setting when "
                             "constructed")
        if history is None:
            history = HistoryPolicy.KEEP_LAST
        if depth is None:
            depth = 0
        if not isinstance(depth, int) or depth < 0:
            raise ValueError(f"QoSProfile depth: expected an integer >= 0, found {depth!r}")
        self.history = HistoryPolicy(history)
        self.depth = depth
        self.reliability = ReliabilityPolicy(reliability)
        self.durability = DurabilityPolicy(durability)

    def __eq__(self, other):
        return isinstance(other, QoSProfile) and vars(self) == vars(other)

    def __repr__(self):
        return (f"QoSProfile(history={self.history.name}, depth={self.depth}, "
                f"reliability={self.reliability.name}, durability={self.durability.name})")


qos_profile_sensor_data = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                                     reliability=ReliabilityPolicy.BEST_EFFORT,
                                     durability=DurabilityPolicy.VOLATILE)
qos_profile_system_default = QoSProfile(history=HistoryPolicy.SYSTEM_DEFAULT, depth=0,
                                        reliability=ReliabilityPolicy.SYSTEM_DEFAULT,
                                        durability=DurabilityPolicy.SYSTEM_DEFAULT)
qos_profile_parameters = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000)


class QoSPresetProfiles(enum.Enum):
    SENSOR_DATA = qos_profile_sensor_data
    SYSTEM_DEFAULT = qos_profile_system_default
    PARAMETERS = qos_profile_parameters

    @classmethod
    def get_from_short_key(cls, name):
        return cls[name.upper()].value


def as_profile(qos):
    """A QoSProfile from what create_publisher/create_subscription accept (profile or depth)."""
    if isinstance(qos, QoSProfile):
        return qos
    if isinstance(qos, int) and not isinstance(qos, bool):
        return QoSProfile(depth=qos)
    raise TypeError(f"qos_profile: expected a QoSProfile or a history depth (int), "
                    f"found {qos!r}")


def to_dds(profile, user_data=None):
    """CycloneDDS Qos for a profile; `user_data` (bytes) goes in USER_DATA (the type hash)."""
    reliable = profile.reliability != ReliabilityPolicy.BEST_EFFORT
    policies = [
        Policy.Reliability.Reliable(duration(milliseconds=100)) if reliable
        else Policy.Reliability.BestEffort,
        Policy.Durability.TransientLocal
        if profile.durability == DurabilityPolicy.TRANSIENT_LOCAL else Policy.Durability.Volatile,
        Policy.History.KeepAll if profile.history == HistoryPolicy.KEEP_ALL
        else Policy.History.KeepLast(max(1, profile.depth)),
        Policy.DataRepresentation(use_cdrv0_representation=True),
    ]
    if user_data:
        policies.append(Policy.Userdata(user_data))
    return Qos(*policies)
