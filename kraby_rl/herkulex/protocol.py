"""Herkulex DRS-0101 packet codec: bytes in, bytes out, no I/O.

Facts from docs/herkulex-drs0101.md (sections 2, 3, 6 and 8). A packet is::

    FF FF | size | pID | CMD | checksum1 | checksum2 | data...

with ``size`` the whole packet length (7 + data), ``checksum1 = (size ^ pID ^ CMD ^ data...)
& 0xFE`` and ``checksum2 = ~checksum1 & 0xFE``. Both masks drop bit 0, so a flipped bit 0 in
the size, ID, command or data bytes is not detected by the checksums (the driver also checks
ID, command, size and register address of every ACK). An ACK has CMD = request CMD | 0x40 and ends
with the status error and status detail bytes.

Every error this module raises is a ``ProtocolError``; the streaming parser never raises on
bad bytes at all, it reports them as ``BadFrame`` items and resynchronises.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

HEADER = b"\xff\xff"
MIN_SIZE = 7
"""Smallest packet (no data) [bytes]."""
MAX_SIZE = 223
"""Largest packet the servo accepts [bytes] (manual p.19)."""
MAX_DATA = MAX_SIZE - MIN_SIZE
BROADCAST_ID = 0xFE
MAX_ID = 0xFD
ACK_FLAG = 0x40


class ProtocolError(ValueError):
    """Anything wrong with a Herkulex packet or a request to build one."""


class Cmd(enum.IntEnum):
    """Request command codes; the ACK's code is ``cmd | 0x40``."""

    EEP_WRITE = 0x01
    EEP_READ = 0x02
    RAM_WRITE = 0x03
    RAM_READ = 0x04
    I_JOG = 0x05
    S_JOG = 0x06
    STAT = 0x07
    ROLLBACK = 0x08
    REBOOT = 0x09


class Ram(enum.IntEnum):
    """RAM register addresses used by the package (section 4)."""

    ID = 0
    ACK_POLICY = 1
    ALARM_LED_POLICY = 2
    TORQUE_POLICY = 3
    MAX_TEMPERATURE = 5
    MIN_VOLTAGE = 6
    MAX_VOLTAGE = 7
    ACCEL_RATIO = 8
    MAX_ACCEL_TIME = 9
    DEAD_ZONE = 10
    MAX_PWM = 16
    OVERLOAD_PWM_THRESHOLD = 18
    MIN_POSITION = 20
    MAX_POSITION = 22
    LED_BLINK_PERIOD = 38
    ADC_FAULT_CHECK_PERIOD = 39
    PACKET_GARBAGE_CHECK_PERIOD = 40
    STOP_DETECTION_PERIOD = 41
    OVERLOAD_DETECTION_PERIOD = 42
    STOP_THRESHOLD = 43
    INPOSITION_MARGIN = 44
    CALIBRATION_DIFFERENCE = 47
    STATUS_ERROR = 48
    STATUS_DETAIL = 49
    TORQUE_CONTROL = 52
    LED_CONTROL = 53
    VOLTAGE = 54
    TEMPERATURE = 55
    CONTROL_MODE = 56
    TICK = 57
    CALIBRATED_POSITION = 58
    ABSOLUTE_POSITION = 60
    DIFFERENTIAL_POSITION = 62
    PWM = 64
    ABSOLUTE_GOAL_POSITION = 68
    DESIRED_TRAJECTORY_POSITION = 70
    DESIRED_VELOCITY = 72


class Eep(enum.IntEnum):
    """EEPROM addresses that are not a RAM copy, plus the ones the tools write."""

    MODEL_NO1 = 0
    MODEL_NO2 = 1
    VERSION1 = 2
    VERSION2 = 3
    BAUD_RATE = 4
    ID = 6
    ACK_POLICY = 7
    MAX_ACCEL_TIME = 15
    CALIBRATION_DIFFERENCE = 53


EEP_SIZE = 54
RAM_SIZE = 74
EEP_TO_RAM = 6
"""EEPROM 6..53 is copied to RAM 0..47 at boot (RAM = EEP - 6)."""


class Torque(enum.IntEnum):
    """Values of RAM 52 (torque control)."""

    FREE = 0x00
    BRAKE = 0x40
    ON = 0x60


STATUS_ERROR_BITS = {
    0x01: "input voltage out of range",
    0x02: "position limit exceeded",
    0x04: "temperature above limit",
    0x08: "invalid packet",
    0x10: "overload",
    0x20: "driver fault",
    0x40: "EEPROM registers distorted",
}
STATUS_DETAIL_BITS = {
    0x01: "moving",
    0x02: "in position",
    0x04: "checksum error",
    0x08: "unknown command",
    0x10: "register range exceeded",
    0x20: "garbage detected",
    0x40: "motor on",
}
SE_VOLTAGE, SE_POT_LIMIT, SE_TEMPERATURE, SE_INVALID_PACKET = 0x01, 0x02, 0x04, 0x08
SE_OVERLOAD, SE_DRIVER_FAULT, SE_EEP_DISTORTED = 0x10, 0x20, 0x40
SD_MOVING, SD_INPOSITION, SD_CHECKSUM, SD_UNKNOWN_CMD = 0x01, 0x02, 0x04, 0x08
SD_RANGE, SD_GARBAGE, SD_MOTOR_ON = 0x10, 0x20, 0x40

# JOG SET byte
SET_STOP = 0x01
SET_TURN = 0x02
SET_LED_SHIFT = 2
SET_INVALID = 0x20
TURN_SIGN = 0x4000
POSITION_MASK = 0x03FF
"""Position registers are 10 bits; real servos set unexplained high bits (section 4)."""


def _byte(name: str, value, lo: int = 0, hi: int = 0xFF) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ProtocolError(f"{name} must be an integer in {lo}..{hi}, found {value!r}")
    return value


def _as_bytes(name: str, data) -> bytes:
    try:
        out = bytes(data)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{name} must be bytes (values 0..255), found {data!r}") from exc
    return out


def checksums(size: int, pid: int, cmd: int, data: bytes) -> tuple[int, int]:
    """(checksum1, checksum2) of a packet with these fields."""
    x = size ^ pid ^ cmd
    for b in data:
        x ^= b
    c1 = x & 0xFE
    return c1, (~c1) & 0xFE


@dataclass(frozen=True)
class Packet:
    """One frame, request or ACK.

    Attributes:
        pid: servo ID (0..253) or 0xFE (broadcast).
        cmd: command code as on the wire (ACKs have bit 0x40 set).
        data: the data bytes (without header, size or checksums).
    """

    pid: int
    cmd: int
    data: bytes = b""

    @property
    def is_ack(self) -> bool:
        return bool(self.cmd & ACK_FLAG)

    @property
    def size(self) -> int:
        return MIN_SIZE + len(self.data)

    def encode(self) -> bytes:
        """The packet's bytes, header and checksums included."""
        return encode(self.pid, self.cmd, self.data)


def encode(pid: int, cmd: int, data=b"") -> bytes:
    """Frame ``data`` for servo ``pid`` with command ``cmd``.

    Raises:
        ProtocolError: ID, command or data out of range, or packet larger than 223 bytes.
    """
    _byte("servo ID", pid, 0, BROADCAST_ID)
    _byte("command", cmd, 0, 0xFF)
    data = _as_bytes("packet data", data)
    if len(data) > MAX_DATA:
        raise ProtocolError(
            f"packet data is {len(data)} bytes; at most {MAX_DATA} fit in a "
            f"{MAX_SIZE}-byte Herkulex packet")
    size = MIN_SIZE + len(data)
    c1, c2 = checksums(size, pid, cmd, data)
    return bytes((0xFF, 0xFF, size, pid, cmd, c1, c2)) + data


def decode(raw) -> Packet:
    """Decode exactly one whole packet.

    Raises:
        ProtocolError: missing header, wrong size byte, bad checksums.
    """
    raw = _as_bytes("packet", raw)
    if len(raw) < MIN_SIZE:
        raise ProtocolError(f"packet too short: {len(raw)} bytes, at least {MIN_SIZE} expected")
    if raw[:2] != HEADER:
        raise ProtocolError(f"packet header must be FF FF, found {raw[:2].hex(' ').upper()}")
    size, pid, cmd, c1, c2 = raw[2:7]
    if size != len(raw):
        raise ProtocolError(f"packet size byte says {size} bytes, found {len(raw)}")
    data = raw[7:]
    e1, e2 = checksums(size, pid, cmd, data)
    if (c1, c2) != (e1, e2):
        raise ProtocolError(
            f"bad checksum from ID {pid}: found {c1:02X} {c2:02X}, expected {e1:02X} {e2:02X}")
    return Packet(pid, cmd, data)


# --- requests ---------------------------------------------------------------------------
def _read(cmd: Cmd, pid: int, addr: int, length: int, size: int) -> bytes:
    _byte("register address", addr, 0, size - 1)
    _byte("read length", length, 1, min(size - addr, MAX_DATA - 4))
    return encode(pid, cmd, bytes((addr, length)))


def _write(cmd: Cmd, pid: int, addr: int, values, size: int) -> bytes:
    values = _as_bytes("register values", values)
    _byte("register address", addr, 0, size - 1)
    if not 1 <= len(values) <= size - addr:
        raise ProtocolError(
            f"register write at {addr} must carry 1..{size - addr} bytes, found {len(values)}")
    return encode(pid, cmd, bytes((addr, len(values))) + values)


def eep_write(pid: int, addr: int, values) -> bytes:
    """EEP_WRITE ``values`` (bytes, little-endian for 2-byte registers) at ``addr``."""
    return _write(Cmd.EEP_WRITE, pid, addr, values, EEP_SIZE)


def eep_read(pid: int, addr: int, length: int) -> bytes:
    """EEP_READ ``length`` bytes from ``addr``."""
    return _read(Cmd.EEP_READ, pid, addr, length, EEP_SIZE)


def ram_write(pid: int, addr: int, values) -> bytes:
    """RAM_WRITE ``values`` at ``addr``."""
    return _write(Cmd.RAM_WRITE, pid, addr, values, RAM_SIZE)


def ram_read(pid: int, addr: int, length: int) -> bytes:
    """RAM_READ ``length`` bytes from ``addr``."""
    return _read(Cmd.RAM_READ, pid, addr, length, RAM_SIZE)


def stat(pid: int) -> bytes:
    """STAT: always answered with the status error and detail."""
    return encode(pid, Cmd.STAT)


def rollback(pid: int, keep_id: bool = True, keep_baud: bool = True) -> bytes:
    """ROLLBACK to factory EEPROM, keeping ID and/or baud rate."""
    return encode(pid, Cmd.ROLLBACK, bytes((int(keep_id), int(keep_baud))))


def reboot(pid: int) -> bytes:
    """REBOOT: RAM reloads from EEPROM, torque free."""
    return encode(pid, Cmd.REBOOT)


@dataclass(frozen=True)
class Jog:
    """One servo's entry in an I_JOG or S_JOG.

    Attributes:
        servo_id: target servo 0..253.
        value: goal in calibrated counts 0..1023 (position mode) or signed PWM -1023..1023
            (turn mode).
        turn: continuous-rotation mode instead of position.
        stop: stop and hold where it is.
        led: LED bits (bit0 green, bit1 blue, bit2 red).
        invalid: the servo ignores this entry.
        playtime: ticks of 11.2 ms (I_JOG only; S_JOG has one shared playtime).
    """

    servo_id: int
    value: int
    turn: bool = False
    stop: bool = False
    led: int = 0
    invalid: bool = False
    playtime: int = 0

    def set_byte(self) -> int:
        _byte("JOG LED bits", self.led, 0, 7)
        return ((SET_STOP if self.stop else 0) | (SET_TURN if self.turn else 0)
                | (self.led << SET_LED_SHIFT) | (SET_INVALID if self.invalid else 0))

    def jog_word(self) -> int:
        if self.turn:
            _byte("turn-mode PWM", self.value, -1023, 1023)
            return abs(self.value) | (TURN_SIGN if self.value < 0 else 0)
        return _byte("JOG goal position [counts]", self.value, 0, 1023)

    def encode4(self) -> bytes:
        w = self.jog_word()
        sid = _byte("JOG servo ID", self.servo_id, 0, MAX_ID)
        return bytes((w & 0xFF, w >> 8, self.set_byte(), sid))

    @classmethod
    def decode4(cls, b: bytes, playtime: int = 0) -> "Jog":
        w = b[0] | (b[1] << 8)
        s = b[2]
        turn = bool(s & SET_TURN)
        if turn:
            value = -(w & 0x3FF) if w & TURN_SIGN else (w & 0x3FF)
        else:
            value = w & 0x7FFF
        return cls(servo_id=b[3], value=value, turn=turn, stop=bool(s & SET_STOP),
                   led=(s >> SET_LED_SHIFT) & 7, invalid=bool(s & SET_INVALID),
                   playtime=playtime)


def i_jog(entries, pid: int = BROADCAST_ID) -> bytes:
    """I_JOG: one playtime per servo (5 bytes per entry)."""
    data = b"".join(e.encode4() + bytes((_byte("playtime [ticks]", e.playtime),))
                    for e in entries)
    if not data:
        raise ProtocolError("I_JOG needs at least one servo entry, found none")
    return encode(pid, Cmd.I_JOG, data)


def s_jog(playtime: int, entries, pid: int = BROADCAST_ID) -> bytes:
    """S_JOG: one shared ``playtime`` [ticks of 11.2 ms], 4 bytes per entry."""
    body = b"".join(e.encode4() for e in entries)
    if not body:
        raise ProtocolError("S_JOG needs at least one servo entry, found none")
    return encode(pid, Cmd.S_JOG, bytes((_byte("playtime [ticks]", playtime),)) + body)


def s_jog_positions(playtime: int, ids, counts, led: int = 0,
                    pid: int = BROADCAST_ID) -> bytes:
    """S_JOG of position goals, the control loop's packet of every cycle: the same bytes
    as ``s_jog(playtime, [Jog(i, c, led=led) for i, c in zip(ids, counts)])``, built in
    one go (one entry object per servo cost more than the rest of the cycle).

    Args:
        playtime: shared playtime [ticks of 11.2 ms].
        ids: servo IDs 0..253.
        counts: goal positions [counts] 0..1023, one per ID.
        led: LED bits for every servo.
    """
    c = np.asarray(counts)
    i = np.asarray(ids)
    if not i.size or c.shape != i.shape or i.ndim != 1:
        raise ProtocolError(f"S_JOG needs one goal per servo ID, found {c.size} goals for "
                            f"{i.size} IDs")
    if not np.issubdtype(c.dtype, np.integer) or c.min() < 0 or c.max() > 1023:
        raise ProtocolError(f"JOG goal positions [counts] must be integers in 0..1023, found "
                            f"{c.tolist()}")
    if i.min() < 0 or i.max() > MAX_ID:
        raise ProtocolError(f"JOG servo IDs must be in 0..{MAX_ID}, found {i.tolist()}")
    body = np.empty((i.size, 4), dtype=np.uint8)
    body[:, 0] = c & 0xFF
    body[:, 1] = c >> 8
    body[:, 2] = _byte("JOG LED bits", led, 0, 7) << SET_LED_SHIFT
    body[:, 3] = i
    return encode(pid, Cmd.S_JOG, bytes((_byte("playtime [ticks]", playtime),))
                  + body.tobytes())


def parse_jog(packet: Packet) -> list[Jog]:
    """The entries of an I_JOG or S_JOG request (playtime filled in on each)."""
    d = packet.data
    if packet.cmd == Cmd.I_JOG:
        if not d or len(d) % 5:
            raise ProtocolError(f"I_JOG data must be 5 bytes per servo, found {len(d)} bytes")
        return [Jog.decode4(d[i:i + 4], d[i + 4]) for i in range(0, len(d), 5)]
    if packet.cmd == Cmd.S_JOG:
        if len(d) < 5 or (len(d) - 1) % 4:
            raise ProtocolError(
                f"S_JOG data must be 1 + 4 bytes per servo, found {len(d)} bytes")
        return [Jog.decode4(d[i:i + 4], d[0]) for i in range(1, len(d), 4)]
    raise ProtocolError(f"not a JOG packet: command 0x{packet.cmd:02X}")


# --- ACKs -------------------------------------------------------------------------------
def flag_names(value: int, table: dict) -> list[str]:
    """Names of the bits of ``value`` set in ``table`` (``STATUS_ERROR_BITS`` or
    ``STATUS_DETAIL_BITS``)."""
    return [name for bit, name in table.items() if value & bit]


@dataclass(frozen=True)
class Ack:
    """A decoded ACK.

    Attributes:
        pid: the replying servo's ID.
        cmd: the request command it answers (without the 0x40 flag).
        status_error, status_detail: RAM 48 and 49 (section 8).
        addr: first register of a read (reads only).
        payload: the register bytes of a read (empty otherwise).
    """

    pid: int
    cmd: int
    status_error: int
    status_detail: int
    addr: int | None = None
    payload: bytes = field(default=b"")

    def errors(self) -> list[str]:
        """Names of the status error bits that are set."""
        return flag_names(self.status_error, STATUS_ERROR_BITS)

    def details(self) -> list[str]:
        """Names of the status detail bits that are set."""
        return flag_names(self.status_detail, STATUS_DETAIL_BITS)

    @property
    def motor_on(self) -> bool:
        return bool(self.status_detail & SD_MOTOR_ON)

    def u8(self, addr: int) -> int:
        """Unsigned byte at register ``addr`` of a read payload."""
        return self.payload[self._off(addr, 1)]

    def u16(self, addr: int) -> int:
        """Unsigned little-endian 16-bit register at ``addr``."""
        i = self._off(addr, 2)
        return self.payload[i] | (self.payload[i + 1] << 8)

    def s16(self, addr: int) -> int:
        """Signed 16-bit register (differential position, PWM)."""
        v = self.u16(addr)
        return v - 0x10000 if v & 0x8000 else v

    def s8(self, addr: int) -> int:
        """Signed byte register (calibration difference, PWM offset)."""
        v = self.u8(addr)
        return v - 0x100 if v & 0x80 else v

    def position(self, addr: int) -> int:
        """10-bit position register, unexplained high bits masked off."""
        return self.u16(addr) & POSITION_MASK

    def _off(self, addr: int, n: int) -> int:
        if self.addr is None:
            raise ProtocolError(f"ACK 0x{self.cmd | ACK_FLAG:02X} from ID {self.pid} is not a "
                                f"read and carries no registers")
        i = addr - self.addr
        if i < 0 or i + n > len(self.payload):
            raise ProtocolError(
                f"register {addr} ({n} bytes) is outside the read of {len(self.payload)} "
                f"bytes at {self.addr} from ID {self.pid}")
        return i


def encode_ack(pid: int, cmd: int, status_error: int, status_detail: int,
               addr: int | None = None, payload=b"") -> bytes:
    """Build the ACK a servo sends for request ``cmd``."""
    se = _byte("status error", status_error)
    sd = _byte("status detail", status_detail)
    if cmd in (Cmd.EEP_READ, Cmd.RAM_READ):
        payload = _as_bytes("read payload", payload)
        body = bytes((_byte("register address", addr), len(payload))) + payload
    else:
        body = b""
    return encode(pid, (cmd | ACK_FLAG) & 0xFF, body + bytes((se, sd)))


def decode_ack(packet: Packet) -> Ack:
    """Interpret a packet as an ACK, checking its layout.

    Raises:
        ProtocolError: not an ACK, or data of the wrong length for its command.
    """
    if not packet.is_ack:
        raise ProtocolError(f"expected an ACK (command | 0x40), found command "
                            f"0x{packet.cmd:02X} from ID {packet.pid}")
    cmd = packet.cmd & ~ACK_FLAG
    d = packet.data
    if cmd in (Cmd.EEP_READ, Cmd.RAM_READ):
        if len(d) < 4 or len(d) != 4 + d[1]:
            raise ProtocolError(
                f"read ACK from ID {packet.pid} must carry addr, len, len bytes, SE, SD; "
                f"found {len(d)} data bytes" + (f" for len {d[1]}" if len(d) >= 2 else ""))
        return Ack(packet.pid, cmd, d[-2], d[-1], addr=d[0], payload=bytes(d[2:-2]))
    if len(d) != 2:
        raise ProtocolError(f"ACK 0x{packet.cmd:02X} from ID {packet.pid} must carry 2 status "
                            f"bytes, found {len(d)}")
    return Ack(packet.pid, cmd, d[0], d[1])


def ack_size(cmd: int, read_length: int = 0) -> int:
    """Size of the ACK to request ``cmd`` [bytes]: reads 11 + length, others 9."""
    return 11 + read_length if cmd in (Cmd.EEP_READ, Cmd.RAM_READ) else 9


# --- streaming parser -------------------------------------------------------------------
@dataclass(frozen=True)
class BadFrame:
    """Bytes the parser threw away.

    Attributes:
        reason: ``garbage`` (bytes outside any frame), ``size`` (size byte out of 7..223),
            ``checksum`` (a whole frame whose checksums fail) or ``timeout`` (a partial
            frame given up by ``expire``).
        raw: the discarded bytes.
        pid: the frame's ID byte when there was one (may itself be corrupt).
    """

    reason: str
    raw: bytes
    pid: int | None = None


class StreamParser:
    """Cut a byte stream into packets, resynchronising after anything wrong.

    ``feed`` returns a list of ``Packet`` and ``BadFrame`` items in stream order. A frame
    whose checksums fail is reported, and scanning restarts one byte after its start, so a
    good packet hidden inside a bogus frame is still found. A partial frame waits for more
    bytes; ``expire()`` gives it up (the servo does so after its garbage check period).
    """

    def __init__(self):
        self._buf = bytearray()
        self.counts = {"packets": 0, "garbage": 0, "size": 0, "checksum": 0, "timeout": 0}
        """How many items of each kind the parser produced since creation."""

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data) -> list:
        """Add bytes; return the packets and bad frames completed by them."""
        self._buf += _as_bytes("stream data", data)
        return self._scan()

    def expire(self) -> list:
        """Give up the partial frame at the head of the buffer and rescan the rest."""
        out = []
        if self._buf:
            head = bytes(self._buf[:1])
            del self._buf[:1]
            out.append(self._bad("timeout", head, None))
            out += self._scan()
        return out

    def flush(self) -> list:
        """End of stream: report everything still buffered, recovering whole packets."""
        out = []
        while self._buf:
            out += self.expire()
        return out

    def _bad(self, reason, raw, pid):
        self.counts[reason] += 1
        return BadFrame(reason, bytes(raw), pid)

    def _scan(self) -> list:
        out = []
        buf = self._buf
        while True:
            start = buf.find(HEADER)
            if start < 0:
                # keep a trailing FF: it may be the first half of a header
                keep = 1 if buf[-1:] == b"\xff" else 0
                if len(buf) > keep:
                    out.append(self._bad("garbage", buf[:len(buf) - keep], None))
                    del buf[:len(buf) - keep]
                return out
            if start:
                out.append(self._bad("garbage", buf[:start], None))
                del buf[:start]
            if len(buf) < 3:
                return out
            size = buf[2]
            if not MIN_SIZE <= size <= MAX_SIZE:
                out.append(self._bad("size", buf[:1], None))
                del buf[:1]
                continue
            if len(buf) < size:
                return out
            frame = bytes(buf[:size])
            pid, cmd, c1, c2 = frame[3:7]
            if checksums(size, pid, cmd, frame[7:]) != (c1, c2):
                out.append(self._bad("checksum", frame[:1], pid))
                del buf[:1]
                continue
            del buf[:size]
            self.counts["packets"] += 1
            out.append(Packet(pid, cmd, frame[7:]))
