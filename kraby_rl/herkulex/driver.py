"""Herkulex bus driver on pyserial: the only module of the package that imports pyserial.

Opens any pyserial URL (``/dev/ttyS4``, ``socket://HOST:2000`` for a ser2net or socat
relay, ``loop://``), talks the DRS-0101 protocol (``protocol``) and converts to SI with
``units``. Every transaction has a timeout and a bounded number of retries; every failure
is counted per servo; a port that disappears is reopened with exponential backoff, and
meanwhile reads report "no data" instead of raising, so a control loop keeps running.

Typical use::

    with HerkulexBus("/dev/ttyS4") as bus:
        bus.write_calibration()
        bus.set_torque("on")
        bus.jog(q_rad)                 # one S_JOG for all 18 servos
        state = bus.read_state()       # positions [rad], velocities [rad/s], valid mask
"""

from __future__ import annotations

import os
import select
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np
import serial

from kraby_rl.core import joints as J
from kraby_rl.core.servo_model import ServoParams
from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex import units as U

TORQUE_MODES = {"on": P.Torque.ON, "brake": P.Torque.BRAKE, "free": P.Torque.FREE,
                "off": P.Torque.FREE}
COUNTERS = ("ok", "timeouts", "checksum_errors", "bad_replies", "retries", "status_errors",
            "calibration_lost")


class BusError(RuntimeError):
    """A bus operation failed after its retries (port missing, servo silent, ...)."""


class PortUnavailable(BusError):
    """The serial port cannot be opened or was lost."""


@dataclass
class ServoHealth:
    """Per-servo counters and the last status seen.

    Attributes:
        ok: transactions answered correctly.
        timeouts: no (complete) answer within the timeout.
        checksum_errors: answers with bad checksums or cut frames.
        bad_replies: well-formed answers with the wrong ID, command or layout.
        retries: repeated requests.
        status_errors: times a new status error bit appeared.
        calibration_lost: reads whose absolute - calibrated differed from the calibration
            written (the servo rebooted); the driver rewrites it.
        status_error, status_detail: the last status bytes received.
        online: answered the last poll.
    """

    ok: int = 0
    timeouts: int = 0
    checksum_errors: int = 0
    bad_replies: int = 0
    retries: int = 0
    status_errors: int = 0
    calibration_lost: int = 0
    status_error: int = 0
    status_detail: int = 0
    online: bool = True
    _fails: int = field(default=0, repr=False)
    _next_poll: float = field(default=0.0, repr=False)

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in COUNTERS}
        d.update(status_error=self.status_error, status_detail=self.status_detail,
                 online=self.online,
                 errors=P.flag_names(self.status_error, P.STATUS_ERROR_BITS))
        return d


@dataclass
class BusState:
    """One read of all servos, canonical joint order.

    Attributes:
        stamp: monotonic time of the read [s].
        position: (18,) joint angles [rad] (NaN where ``valid`` is False).
        velocity: (18,) joint speeds [rad/s].
        effort: (18,) estimated torque [N*m] from PWM (NaN unless PWM was read).
        pwm: (18,) raw PWM (-1023..1023) or zeros.
        valid: (18,) bool, the servo answered this cycle.
        status_error: (18,) last status error byte per servo.
        connected: the port is open.
        asked: (18,) monotonic time each servo's read request was sent [s] (NaN: none, or
            not answered at the first try).
        answered: (18,) monotonic time each servo's answer was in [s] (NaN: none).
    """

    stamp: float
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray
    pwm: np.ndarray
    valid: np.ndarray
    status_error: np.ndarray
    connected: bool = True
    asked: np.ndarray | None = None
    answered: np.ndarray | None = None


_READS = (P.Cmd.EEP_READ, P.Cmd.RAM_READ)


def _quick_ack(raw: bytes, size: int, servo_id: int, cmd: int, addr: int, length):
    """The ACK in ``raw`` if it is exactly the one awaited (header, size, ID, command,
    checksums, and for reads the address and length), else None (the caller then parses
    the bytes properly and says what was wrong). Checks the same things as
    ``decode_ack(decode(raw))`` plus the match, in a fraction of the time: it runs once
    per servo per cycle."""
    if not _frame_ok(raw, size, servo_id, cmd | P.ACK_FLAG, addr, length):
        return None
    if length is None:
        return P.Ack(servo_id, cmd, raw[7], raw[8])
    return P.Ack(servo_id, cmd, raw[-2], raw[-1], addr=addr, payload=raw[9:-2])


def _frame_ok(raw: bytes, size: int, servo_id: int, ack_cmd: int, addr, length) -> bool:
    """``raw`` (``size`` bytes) is the ACK ``ack_cmd`` from ``servo_id``, checksums right,
    for reads at register ``addr`` with ``length`` bytes (``length`` None: not a read)."""
    if (raw[4] != ack_cmd or raw[3] != servo_id or raw[2] != size
            or raw[0] != 0xFF or raw[1] != 0xFF):
        return False
    x = size ^ servo_id ^ ack_cmd
    for b in raw[7:]:
        x ^= b
    c1 = x & 0xFE
    if raw[5] != c1 or raw[6] != (~c1) & 0xFE:
        return False
    if length is None:
        return size == 9
    return raw[7] == addr and raw[8] == length


def _answered(h, status_error: int, status_detail: int) -> None:
    """Count a servo's valid answer and keep its status (a new error bit counts once)."""
    h.ok += 1
    if status_error & ~h.status_error:
        h.status_errors += 1
    h.status_error, h.status_detail = status_error, status_detail


# a position read's payload: calibrated, absolute, differential position (, PWM)
_POSITIONS = struct.Struct("<HHh")
_PWM = struct.Struct("<h")


class HerkulexBus:
    """The servos of one Kraby on one serial bus.

    Args:
        url: pyserial port or URL.
        baudrate: bus speed [bit/s] (Kraby: 500000).
        ids: servo IDs in canonical joint order (default 0..17).
        calibration: (18,) calibration differences [counts] written to RAM 47 by
            ``write_calibration`` (default: the joint table's, the real robot's).
        timeout_s: margin on top of the wire time of each transaction [s].
        retries: extra attempts after a failed transaction.
        offline_after: consecutive failures after which a servo is offline: polled without
            retries, after ``offline_repoll_s`` and then twice as long after each failed
            poll, up to every ``offline_poll_s`` (so one dead servo does not stall the
            control loop, and one that a bus glitch silenced for a few cycles is back
            within a cycle or two of the glitch).
        backoff_s: (first, largest) delay between attempts to reopen a lost port [s].
        open_now: open the port in the constructor (raises ``PortUnavailable``).
    """

    def __init__(self, url: str, baudrate: int = 500_000, ids=None, calibration=None,
                 timeout_s: float = 0.004, retries: int = 2, offline_after: int = 3,
                 offline_poll_s: float = 0.5, backoff_s=(0.05, 2.0), open_now: bool = True,
                 offline_repoll_s: float = 0.02):
        self.url = url
        self.baudrate = int(baudrate)
        self.ids = list(range(J.NUM_JOINTS)) if ids is None else [int(i) for i in ids]
        if len(self.ids) != J.NUM_JOINTS or len(set(self.ids)) != J.NUM_JOINTS:
            raise ValueError(f"ids must be 18 distinct servo IDs in joint order, found "
                             f"{self.ids}")
        cal = J.CALIBRATION if calibration is None else np.asarray(calibration)
        if cal.shape != (J.NUM_JOINTS,) or np.any(np.abs(cal) > 127):
            raise ValueError(f"calibration must be 18 integers in -128..127 [counts], found "
                             f"{list(cal)}")
        self.calibration = cal
        self._ids_arr = np.asarray(self.ids)
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.offline_after = int(offline_after)
        self.offline_poll_s = float(offline_poll_s)
        self.offline_repoll_s = min(float(offline_repoll_s), self.offline_poll_s)
        self.backoff = tuple(float(b) for b in backoff_s)
        self.byte_s = 10.0 / self.baudrate
        self.late_bytes_s = 0.05     # past the deadline, keep reading bytes that keep coming
        self.health = {i: ServoHealth() for i in self.ids}
        self.stats = {"bytes_out": 0, "bytes_in": 0, "reconnects": 0, "port_errors": 0}
        self.playtime_ticks = max(1, U.playtime_ticks(ServoParams().playtime_s))
        self.led = 0b010          # blue, like Kraby
        self._ser = None
        self._sock = None
        self._fdn = None
        self._poll = None
        self._read_requests = {}
        self._tx_free = 0.0
        self.sent_at = float("nan")
        """Monotonic time [s] the last ``send()`` returned (a jog's, read right after it)."""
        self._dirty = False
        self._next_open = 0.0
        self._delay = self.backoff[0]
        self.last_error = ""
        self._lo = U.rad_to_counts(J.LOWER)
        self._hi = U.rad_to_counts(J.UPPER)
        if open_now:
            self.open()

    @property
    def calibration(self) -> np.ndarray:
        """(18,) calibration differences [counts] this driver writes and checks."""
        return self._calibration

    @calibration.setter
    def calibration(self, cal) -> None:
        self._calibration = np.asarray(cal, dtype=np.int64)
        self._cal_list = [int(c) for c in self._calibration]

    # --- port ---------------------------------------------------------------------------
    def open(self) -> None:
        """Open the port now.

        Raises:
            PortUnavailable: the device or relay is not there.
        """
        try:
            ser = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0,
                                        write_timeout=0.5)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.last_error = f"cannot open port {self.url!r}: {exc}"
            raise PortUnavailable(self.last_error) from None
        sock = getattr(ser, "_socket", None)
        if sock is not None:      # socket:// relay: no Nagle delay on 9-byte requests
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._ser = ser
        self._sock = sock
        self._fdn = self._fd()
        self._poll = None
        if self._fdn is not None:
            # One poll object per open port: select() rebuilds its fd sets on every call.
            self._poll = select.poll()
            self._poll.register(self._fdn, select.POLLIN | select.POLLERR | select.POLLHUP)
        self._dirty = True
        self._delay = self.backoff[0]

    def close(self) -> None:
        if self._ser is not None:
            try:
                self._ser.close()
            except (serial.SerialException, OSError):
                pass
        self._ser = None
        self._sock = None
        self._fdn = None
        self._poll = None

    @property
    def connected(self) -> bool:
        return self._ser is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _lost(self, exc: Exception) -> None:
        self.stats["port_errors"] += 1
        self.last_error = f"port {self.url!r} lost: {exc}"
        self.close()
        self._next_open = time.monotonic() + self._delay

    def ensure_open(self) -> bool:
        """Reopen a lost port when its backoff delay has passed; True if open."""
        if self._ser is not None:
            return True
        now = time.monotonic()
        if now < self._next_open:
            return False
        try:
            self.open()
        except PortUnavailable:
            self._delay = min(self._delay * 2, self.backoff[1])
            self._next_open = now + self._delay
            return False
        self.stats["reconnects"] += 1
        return True

    # --- transactions -------------------------------------------------------------------
    def send(self, packet: bytes) -> None:
        """Write a request that expects no answer.

        Raises:
            PortUnavailable: the port is closed or failed.
        """
        if self._ser is None and not self.ensure_open():
            raise PortUnavailable(self.last_error or f"port {self.url!r} is not open")
        fd = self._fdn
        try:
            # A request fits the kernel's buffer: one write(2) on the descriptor. pyserial's
            # write() adds a select() and its timeout bookkeeping to every request (more CPU
            # than the rest of the transaction); it still handles what a short or refused
            # write leaves over, and ports without a descriptor (loop://).
            if fd is None:
                self._ser.write(packet)
            else:
                try:
                    n = self._sock.send(packet) if self._sock is not None \
                        else os.write(fd, packet)
                except BlockingIOError:
                    n = 0
                if n < len(packet):
                    self._ser.write(packet[n:])
        except (serial.SerialException, OSError) as exc:
            self._lost(exc)
            raise PortUnavailable(self.last_error) from None
        self.stats["bytes_out"] += len(packet)
        # when the UART will have shifted out everything written so far
        now = time.monotonic()
        self.sent_at = now
        self._tx_free = (now if now > self._tx_free else self._tx_free) \
            + len(packet) * self.byte_s

    def _fd(self):
        """The file descriptor to select on: the tty's, or a socket:// relay's; else None."""
        ser = self._ser
        sock = getattr(ser, "_socket", None)
        if sock is not None:
            return sock.fileno()
        try:
            return ser.fileno()
        except (AttributeError, serial.SerialException, OSError, ValueError):
            return None                 # loop:// and other in-memory ports

    def _receive(self, n: int, deadline: float) -> bytes:
        """Up to ``n`` bytes, waiting until ``deadline`` (monotonic) for them.

        On a tty or socket this is select + read on the descriptor: pyserial reconfigures
        the port (tcsetattr) whenever its timeout changes, which cost more CPU than the
        whole transaction. Bytes that are already waiting are always taken, even when the
        deadline has passed (a loaded machine can wake this thread late; the servo answered
        in time, and that answer is not a timeout).
        """
        poll = self._poll
        if poll is None:
            ser = self._ser
            timeout = max(0.0, round(deadline - time.monotonic(), 4))
            if ser.timeout != timeout:
                ser.timeout = timeout
            return ser.read(n)
        fd, sock = self._fdn, self._sock
        out = b""
        while True:
            left = (deadline - time.monotonic()) * 1e3
            if not poll.poll(left if left > 0.0 else 0.0):
                break                   # nothing waiting, and the time is up
            chunk = sock.recv(n - len(out)) if sock is not None else os.read(fd, n - len(out))
            if not chunk:
                raise serial.SerialException("device reports readiness to read but returned "
                                             "no data (disconnected?)")
            out = out + chunk if out else chunk
            if len(out) >= n:
                break
        return out

    def transact(self, packet: bytes, servo_id: int, read_length: int = 0,
                 retries: int | None = None, sent=None) -> P.Ack:
        """Send a request and return the servo's ACK, retrying on failure.

        Args:
            packet: the encoded request.
            servo_id: who must answer.
            read_length: register bytes expected (reads), 0 otherwise.
            retries: override the bus's retry count.
            sent: (bytes received, deadline) when the first attempt was already sent and
                read in part by the caller (``read_state``'s fast path): it goes on from
                there.

        Raises:
            PortUnavailable: the port is missing.
            BusError: no valid answer after the retries (the reason is in the message).
        """
        cmd = packet[4]
        size = P.ack_size(cmd, read_length)
        h = self.health.setdefault(servo_id, ServoHealth())
        tries = 1 + (self.retries if retries is None else retries)
        reason = ""
        for attempt in range(tries):
            if attempt:
                h.retries += 1
            if sent is None:
                if self._dirty and self._ser is not None:
                    try:
                        self._ser.reset_input_buffer()
                    except (serial.SerialException, OSError) as exc:
                        self._lost(exc)
                    self._dirty = False
                self.send(packet)
            try:
                ack, reason, kind = self._await(packet, size, servo_id, cmd, sent)
                sent = None
            except (serial.SerialException, OSError) as exc:
                self._lost(exc)
                raise PortUnavailable(self.last_error) from None
            if ack is not None:
                _answered(h, ack.status_error, ack.status_detail)
                return ack
            setattr(h, kind, getattr(h, kind) + 1)
            self._dirty = True
        raise BusError(f"servo ID {servo_id}: {reason} (after {tries} attempts)")

    def _await(self, packet: bytes, size: int, servo_id: int, cmd: int, sent=None):
        """Read until the matching ACK, the deadline, or a port error.

        The deadline counts the wire time of everything still queued on the host's line
        (an S_JOG just before) plus the ACK's own, plus ``timeout_s``. Bytes already waiting
        when it passes are still read and parsed: only silence after the deadline is a
        timeout. An ACK matches on servo ID, command, register address and, for reads, the
        number of register bytes; anything else (late answers to earlier requests) is
        skipped and counted.

        ``sent``: (bytes already received, deadline) from a caller that did the first read.

        Returns:
            (ACK or None, failure reason, name of the counter to increment on failure).
        """
        if sent is None:
            now = time.monotonic()
            deadline = max(now, self._tx_free) + size * self.byte_s + self.timeout_s
            first = None
        else:
            first, deadline = sent
        give_up = deadline + self.late_bytes_s
        length = size - 11 if cmd in _READS else None
        addr = packet[7] if length is not None else None
        parser = None
        stale = []
        corrupt = 0
        got = 0
        while True:
            if first:
                raw, first = first, None
            else:
                raw = self._receive(size, deadline)
            if not raw:
                break
            got += len(raw)
            self.stats["bytes_in"] += len(raw)
            if parser is None and len(raw) == size:      # the common case: one clean ACK
                ack = _quick_ack(raw, size, servo_id, cmd, addr, length)
                if ack is not None:
                    return ack, "", ""
            parser = parser or P.StreamParser()
            for item in parser.feed(raw):
                if isinstance(item, P.BadFrame):
                    corrupt += 1
                    continue
                try:
                    ack = P.decode_ack(item)
                except P.ProtocolError as exc:
                    stale.append(str(exc))
                    continue
                if self._matches(ack, servo_id, cmd, packet, length):
                    return ack, "", ""
                extra = (f" with {len(ack.payload)} register bytes (expected {length})"
                         if length is not None and ack.pid == servo_id and ack.cmd == cmd
                         else "")
                stale.append(f"0x{item.cmd:02X} from ID {ack.pid}{extra}")
            if time.monotonic() > give_up:
                break                   # a stream that never stops is not an answer
        if corrupt and not parser.pending:
            return None, (f"corrupt answer (bad checksum or framing) in {got} bytes"), \
                "checksum_errors"
        if stale:
            return None, (f"expected an ACK to command 0x{cmd:02X} from ID {servo_id}, found "
                          f"{'; '.join(stale)}"), "bad_replies"
        if got:
            return None, f"answer cut short: {got} of {size} bytes", "timeouts"
        return None, (f"no answer within {self.timeout_s * 1e3:.1f} ms + wire time"), \
            "timeouts"

    @staticmethod
    def _matches(ack: P.Ack, servo_id: int, cmd: int, packet: bytes, length) -> bool:
        return (ack.pid == servo_id and ack.cmd == cmd
                and (ack.addr is None or ack.addr == packet[7])
                and (length is None or len(ack.payload) == length))

    # --- whole-bus operations -----------------------------------------------------------
    def stat(self, servo_id: int, retries: int | None = None) -> P.Ack:
        """STAT one servo (answered whatever its ACK policy)."""
        return self.transact(P.stat(servo_id), servo_id, retries=retries)

    def scan(self, ids=range(0, P.MAX_ID + 1), timeout_s: float = 0.002,
             retries: int = 1) -> dict[int, P.Ack]:
        """STAT every ID in ``ids`` (with ``retries``); returns {id: ACK} of those that
        answered."""
        found = {}
        saved, self.timeout_s = self.timeout_s, timeout_s
        try:
            for i in ids:
                try:
                    found[i] = self.stat(i, retries=retries)
                except BusError:
                    if i not in self.ids:      # keep counters only for our servos
                        self.health.pop(i, None)
        finally:
            self.timeout_s = saved
        return found

    def read_ram(self, servo_id: int, addr: int, length: int) -> P.Ack:
        """RAM_READ ``length`` bytes at ``addr`` of one servo."""
        return self.transact(P.ram_read(servo_id, addr, length), servo_id, length)

    def read_eep(self, servo_id: int, addr: int, length: int) -> P.Ack:
        """EEP_READ ``length`` bytes at ``addr`` of one servo."""
        return self.transact(P.eep_read(servo_id, addr, length), servo_id, length)

    def write_ram(self, servo_id: int, addr: int, values) -> None:
        """RAM_WRITE (no answer expected: ACK policy 1)."""
        self.send(P.ram_write(servo_id, addr, values))

    def write_eep(self, servo_id: int, addr: int, values) -> None:
        """EEP_WRITE (acts after a reboot)."""
        self.send(P.eep_write(servo_id, addr, values))

    def write_calibration(self) -> None:
        """Write each servo's calibration difference to RAM 47 (lost at every reboot)."""
        for sid, c in zip(self.ids, self.calibration):
            self.write_ram(sid, P.Ram.CALIBRATION_DIFFERENCE, [int(c) & 0xFF])

    def set_torque(self, mode: str, ids=None) -> None:
        """Torque ``on``, ``brake`` or ``free``/``off`` for ``ids`` (default: broadcast)."""
        try:
            value = TORQUE_MODES[mode]
        except KeyError:
            raise ValueError(f"torque mode must be one of on, brake, free, off; found "
                             f"{mode!r}") from None
        if ids is None:
            self.send(P.ram_write(P.BROADCAST_ID, P.Ram.TORQUE_CONTROL, [value]))
        else:
            for sid in ids:
                self.send(P.ram_write(sid, P.Ram.TORQUE_CONTROL, [value]))

    def clear_errors(self, ids=None) -> None:
        """Clear status error and detail (RAM 48-49); torque stays as it is."""
        for sid in (self.ids if ids is None else ids):
            self.send(P.ram_write(sid, P.Ram.STATUS_ERROR, [0, 0]))

    def reboot(self, servo_id: int = P.BROADCAST_ID) -> None:
        self.send(P.reboot(servo_id))

    def jog(self, q, playtime_s: float | None = None) -> np.ndarray:
        """Send all 18 goals in one S_JOG.

        Args:
            q: (18,) goal joint angles [rad], canonical order; clipped to the joint table's
                hard limits.
            playtime_s: move duration [s] (default: the servo model's playtime).

        Returns:
            (18,) the calibrated goal counts sent (for logs and tests).

        Raises:
            ValueError: wrong shape or non-finite angle (nothing is sent).
            PortUnavailable: the port is missing.
        """
        counts = np.clip(U.rad_to_counts(q), self._lo, self._hi)
        ticks = self.playtime_ticks if playtime_s is None else max(1, U.playtime_ticks(
            playtime_s))
        self.send(P.s_jog_positions(ticks, self._ids_arr, counts, led=self.led))
        return counts

    def read_state(self, pwm: bool = False, between=None) -> BusState:
        """Read position and velocity (and PWM) of every servo, one transaction each.

        Never raises for bus trouble: a servo that does not answer after the retries is
        marked invalid (NaN) and counted; after ``offline_after`` consecutive failures it is
        offline and polled less and less often (``offline_repoll_s`` doubling up to
        ``offline_poll_s``). A lost port makes every entry invalid and is
        reopened with backoff on later calls. ``between()``, when given, is called before
        each servo's transaction (the servo driver node sends an emergency brake from there
        instead of waiting for the end of the cycle).
        """
        n = J.NUM_JOINTS
        cal = np.full(n, np.nan)
        diff = np.zeros(n)
        pw = np.zeros(n)
        valid = np.zeros(n, dtype=bool)
        asked, answered = np.full(n, np.nan), np.full(n, np.nan)
        length = 8 if pwm else 6
        now = time.monotonic()
        cal_k = self._cal_list
        size = 11 + length
        wait_s = size * self.byte_s + self.timeout_s
        ack_cmd = P.Cmd.RAM_READ | P.ACK_FLAG
        addr = P.Ram.CALIBRATED_POSITION
        requests = self._read_requests.get(length)
        if requests is None:
            requests = self._read_requests[length] = [
                P.ram_read(sid, addr, length) for sid in self.ids]
        for k, sid in enumerate(self.ids):
            if between is not None:
                between()
            if self._ser is None and not self.ensure_open():
                break
            h = self.health[sid]
            if not h.online and now < h._next_poll:
                continue
            req = requests[k]
            try:
                # Fast path, once per servo per cycle: send, wait for one frame, check it
                # inline. Anything else (nothing yet, a cut or stray frame, a port without a
                # descriptor, input to flush) goes on in transact(), which knows every case.
                raw, sent = b"", None
                if self._poll is not None and not self._dirty:
                    asked[k] = time.monotonic()
                    self.send(req)
                    deadline = self._tx_free + wait_s
                    raw = self._receive(size, deadline)
                    sent = (raw, deadline)
                if len(raw) == size and _frame_ok(raw, size, sid, ack_cmd, addr, length):
                    self.stats["bytes_in"] += size
                    _answered(h, raw[-2], raw[-1])
                    r = raw[9:]
                else:
                    asked[k] = np.nan           # answered later, perhaps to a repeat
                    retries = self.retries if h.online else 0
                    r = self.transact(req, sid, length, retries=retries, sent=sent).payload
            except PortUnavailable:
                break
            except (serial.SerialException, OSError) as exc:
                self._lost(exc)
                break
            except (BusError, P.ProtocolError, ValueError):     # never raise for bus trouble
                h._fails += 1
                if h._fails >= self.offline_after:
                    h.online = False
                    h._next_poll = now + min(self.offline_poll_s, self.offline_repoll_s * 2.0
                                             ** min(h._fails - self.offline_after, 30))
                continue
            answered[k] = time.monotonic()
            h._fails = 0
            h.online = True
            c, a, d = _POSITIONS.unpack_from(r)
            c &= P.POSITION_MASK
            a &= P.POSITION_MASK
            if 0 < c < 1023 and a - c != cal_k[k]:
                h.calibration_lost += 1
                c = a - cal_k[k]
                try:
                    self.write_ram(sid, P.Ram.CALIBRATION_DIFFERENCE,
                                   [cal_k[k] & 0xFF])
                except PortUnavailable:
                    break
            cal[k] = c
            diff[k] = d
            if pwm:
                pw[k] = _PWM.unpack_from(r, 6)[0]
            valid[k] = True
        q = U.counts_to_rad(cal)
        w = np.where(valid, U.diff_to_rad_s(diff), np.nan)
        effort = np.where(valid, U.pwm_to_effort(pw, np.nan_to_num(w)), np.nan) if pwm \
            else np.full(n, np.nan)
        se = np.array([self.health[i].status_error for i in self.ids])
        return BusState(stamp=now, position=q, velocity=w, effort=effort, pwm=pw,
                        valid=valid, status_error=se, connected=self.connected,
                        asked=asked, answered=answered)

    def health_report(self) -> dict:
        """{servo id: counters and last status} plus bus-wide figures."""
        return {"servos": {i: h.as_dict() for i, h in self.health.items()},
                "bus": dict(self.stats), "last_error": self.last_error,
                "connected": self.connected}
