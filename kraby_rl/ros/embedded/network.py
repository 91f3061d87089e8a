"""DDS network settings from ROS 2's environment variables, as rmw_cyclonedds applies them.

ROS_AUTOMATIC_DISCOVERY_RANGE:
- SUBNET (ROS 2's default): CycloneDDS defaults, multicast discovery on the default interface;
- LOCALHOST: bind 127.0.0.1, multicast off, unicast discovery of loopback peers;
- OFF: bind 127.0.0.1, multicast off, no peers (only this process);
- SYSTEM_DEFAULT: leave everything to CYCLONEDDS_URI.
ROS_LOCALHOST_ONLY=1 (the older variable) means LOCALHOST when the range is not set.
ROS_STATIC_PEERS (';'-separated) adds unicast peers for LOCALHOST and SUBNET.
A CYCLONEDDS_URI the user sets is kept; the range's settings are appended to it.
"""

import os

RANGES = ("SUBNET", "LOCALHOST", "OFF", "SYSTEM_DEFAULT")
# Participants per host and domain that loopback discovery reaches (each has its own port).
MAX_PARTICIPANTS = 64


def discovery_range(environ=None):
    """The effective discovery range.

    Raises:
        ValueError: naming the variable, the allowed values and the value found.
    """
    env = os.environ if environ is None else environ
    value = env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").strip().upper()
    if value:
        if value not in RANGES:
            raise ValueError(f"ROS_AUTOMATIC_DISCOVERY_RANGE: expected one of "
                             f"{', '.join(RANGES)}, found {value!r}")
        return value
    return "LOCALHOST" if env.get("ROS_LOCALHOST_ONLY", "") == "1" else "SUBNET"


def domain_id(environ=None):
    """ROS_DOMAIN_ID (0 when unset).

    Raises:
        ValueError: when it is not an integer in 0..232.
    """
    env = os.environ if environ is None else environ
    raw = env.get("ROS_DOMAIN_ID", "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or not 0 <= int(raw) <= 232:
        raise ValueError(f"ROS_DOMAIN_ID: expected an integer in 0..232, found {raw!r}")
    return int(raw)


def cyclonedds_config(environ=None):
    """The CycloneDDS configuration string for the environment (None: CycloneDDS defaults)."""
    env = os.environ if environ is None else environ
    scope = discovery_range(env)
    user = env.get("CYCLONEDDS_URI", "").strip()
    peers = [p.strip() for p in env.get("ROS_STATIC_PEERS", "").split(";") if p.strip()]
    general = discovery = ""
    if scope in ("LOCALHOST", "OFF"):
        if "NetworkInterface" not in user:
            general += ('<Interfaces><NetworkInterface address="127.0.0.1"/>'
                        '</Interfaces>')
        general += "<AllowMulticast>false</AllowMulticast>"
        if scope == "LOCALHOST":
            discovery = (
                f"<ParticipantIndex>auto</ParticipantIndex>"
                f"<MaxAutoParticipantIndex>{MAX_PARTICIPANTS}</MaxAutoParticipantIndex>"
                "<Peers>" + "".join(f'<Peer address="{p}"/>' for p in ["localhost"] + peers)
                + "</Peers>")
        else:  # no well-known ports and no peers: nothing outside this process finds us
            discovery = "<ParticipantIndex>none</ParticipantIndex>"
    elif scope == "SUBNET" and peers:
        discovery = "<Peers>" + "".join(f'<Peer address="{p}"/>' for p in peers) + "</Peers>"
    fragment = ""
    if general or discovery:
        fragment = (f"<CycloneDDS><Domain><General>{general}</General>"
                    f"<Discovery>{discovery}</Discovery></Domain></CycloneDDS>")
    parts = [p for p in (user, fragment) if p]
    return ",".join(parts) or None
