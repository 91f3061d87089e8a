"""One simulated DRS-0101: register files, command semantics, trajectory, error logic.

Follows section 10 of docs/herkulex-drs0101.md. The servo's joint physics live
elsewhere (``virtual_joints``): each control step the bus asks every servo for its
trajectory setpoint and torque mode, moves the joints, and hands back the measured angle,
speed and duty. This module converts between the servo's counts and the joint's radians
with its mounting offset: the joint angle is zero where ``absolute = zero_counts + mount``.
"""

from __future__ import annotations

import functools
import math

from kraby_rl.herkulex import protocol as P
from kraby_rl.core.joints import SERVO_NO_LOAD_SPEED
from kraby_rl.herkulex.units import COUNT_RAD, PWM_FULL, TICK_S, VOLTAGE_LSB

EEPROM_DEFAULTS = {
    # address: (value, bytes)
    P.Eep.MODEL_NO1: (0x01, 1), P.Eep.MODEL_NO2: (0x01, 1),
    P.Eep.VERSION1: (0x01, 1), P.Eep.VERSION2: (0x00, 1),
    P.Eep.BAUD_RATE: (0x03, 1),          # Kraby: 500 000 baud (factory 0x10)
    P.Eep.ID: (0xFD, 1), 7: (0x01, 1), 8: (0x7F, 1), 9: (0x35, 1),
    11: (0xDE, 1), 12: (0x5B, 1), 13: (0x89, 1), 14: (25, 1), 15: (0x2D, 1),
    16: (0, 1), 17: (0, 1), 18: (0, 2), 20: (0, 1), 21: (0, 1), 22: (0x03FF, 2),
    24: (0x03FE, 2), 26: (21, 2), 28: (1002, 2), 30: (440, 2), 32: (8000, 2), 34: (0, 2),
    36: (0, 2), 38: (0, 2), 44: (0x2D, 1), 45: (0x2D, 1), 46: (0x12, 1), 47: (0x1B, 1),
    48: (0x96, 1), 49: (3, 1), 50: (3, 1), 53: (0, 1),
}
EEP_READ_ONLY = range(0, 4)
RAM_READ_ONLY_FROM = 54
SD_READ_ONLY = P.SD_MOVING | P.SD_INPOSITION | P.SD_MOTOR_ON
MAX_CARRY_S = 0.012
"""The longest a reading carries the physics' last angle forward at its speed [s] (three
PyBullet steps; longer means the bus was paused, and the angle stays)."""


def factory_eeprom(servo_id: int, calibration: int = 0) -> bytearray:
    """The 54-byte EEPROM of a new servo with ``servo_id`` and a calibration difference."""
    e = bytearray(P.EEP_SIZE)
    for addr, (value, n) in EEPROM_DEFAULTS.items():
        e[addr:addr + n] = int(value).to_bytes(n, "little")
    e[P.Eep.ID] = servo_id
    e[P.Eep.CALIBRATION_DIFFERENCE] = calibration & 0xFF
    return e


def _s8(b: int) -> int:
    return b - 0x100 if b & 0x80 else b


@functools.lru_cache(maxsize=8)
def _parse_jog(cmd: int, data: bytes) -> tuple:
    """``P.parse_jog`` of one JOG request's data, shared by every servo that hears it."""
    return tuple(P.parse_jog(P.Packet(pid=P.BROADCAST_ID, cmd=cmd, data=data)))


class VirtualServo:
    """A DRS-0101 on joint ``slot`` of the robot.

    Args:
        slot: joint index 0..17 (which joint this servo drives; fixed, unlike its ID).
        servo_id: initial ID (EEPROM and RAM).
        mount: the joint's true mounting offset [counts]: the calibration difference that
            makes calibrated 512 the joint zero. The EEPROM starts with 0, like a servo
            fresh from the box; the driver writes the calibration into RAM.
        direction: +1/-1, joint angle sign per count.
        zero_counts: calibrated counts at joint zero when calibrated correctly.
        boot_time_s: deaf time after REBOOT [s].
        high_bits: bits OR-ed into the MSB of position registers, as real servos do.
    """

    def __init__(self, slot: int, servo_id: int, mount: int = 0, direction: int = 1,
                 zero_counts: int = 512, boot_time_s: float = 0.05, high_bits: int = 0x60):
        self.slot = slot
        self.mount = mount
        self.direction = direction
        self.zero_counts = zero_counts
        self.boot_time_s = boot_time_s
        self.high_bits = high_bits
        self.eep = factory_eeprom(servo_id)
        self.ram = bytearray(P.RAM_SIZE)
        self.deaf_until = -math.inf
        # joint state handed back by the physics [counts, counts/s, duty -1..1]
        self.abs_pos = float(zero_counts + mount)
        self.abs_vel = 0.0
        self.duty = 0.0
        self.measured_t = 0.0
        self.blocked = False
        """Fault injection: an external load holds the joint (it stalls, PWM saturates)."""
        self.supply_v = 7.4
        self._overload_s = 0.0
        self._voltage_bad_s = 0.0
        self._boot(0.0)

    # --- register helpers --------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.ram[P.Ram.ID]

    def _u16(self, addr: int) -> int:
        return self.ram[addr] | (self.ram[addr + 1] << 8)

    def _put16(self, addr: int, value: int) -> None:
        self.ram[addr:addr + 2] = (int(value) & 0xFFFF).to_bytes(2, "little")

    @property
    def torque(self) -> int:
        return self.ram[P.Ram.TORQUE_CONTROL]

    @property
    def calibration(self) -> int:
        return _s8(self.ram[P.Ram.CALIBRATION_DIFFERENCE])

    def _boot(self, t: float) -> None:
        self.ram[:] = bytes(P.RAM_SIZE)
        self.ram[0:48] = self.eep[P.EEP_TO_RAM:P.EEP_SIZE]
        self.ram[P.Ram.TORQUE_CONTROL] = P.Torque.FREE
        self._goal = self.abs_pos
        self._traj = (t, self.abs_pos, self.abs_pos, 0.0, 0.0)  # t0, p0, goal, T, ta
        self._turn_v = 0.0
        self._overload_s = 0.0
        self._voltage_bad_s = 0.0

    # --- trajectory (absolute counts) ---------------------------------------------------
    def setpoint(self, t: float) -> tuple[float, float]:
        """Trajectory generator output at ``t``: (absolute counts, counts/s)."""
        if self.ram[P.Ram.CONTROL_MODE] == 1:
            return self.abs_pos, self._turn_v
        t0, p0, goal, T, ta = self._traj
        tau = t - t0
        if tau >= T or T <= 0:
            return goal, 0.0
        d = goal - p0
        vmax = d / (T - ta)
        if tau < ta:
            return p0 + 0.5 * vmax / ta * tau * tau, vmax / ta * tau
        if tau < T - ta:
            return p0 + vmax * (tau - 0.5 * ta), vmax
        rem = T - tau
        return goal - 0.5 * vmax / ta * rem * rem, vmax / ta * rem

    def _start_move(self, t: float, goal_abs: float, playtime: int) -> None:
        p0, _ = self.setpoint(t) if self.torque == P.Torque.ON else (self.abs_pos, 0.0)
        T = max(playtime, 1) * TICK_S
        ta = min(self.ram[P.Ram.ACCEL_RATIO] / 100.0 * T, self.ram[P.Ram.MAX_ACCEL_TIME] * TICK_S)
        ta = min(max(ta, 0.0), 0.5 * T)
        self._goal = goal_abs
        self._traj = (t, p0, goal_abs, T, ta)

    def _hold_here(self, t: float) -> None:
        self._goal = self.abs_pos
        self._traj = (t, self.abs_pos, self.abs_pos, 0.0, 0.0)

    # --- joint interface ----------------------------------------------------------------
    def joint_command(self, t: float) -> tuple[int, float, float]:
        """(torque mode, setpoint [rad], setpoint speed [rad/s]) for the joint physics."""
        sp, sv = self.setpoint(t)
        k = self.direction * COUNT_RAD
        return self.torque, (sp - self.zero_counts - self.mount) * k, sv * k

    def joint_measured(self, q: float, w: float, duty: float, t: float = 0.0) -> None:
        """Store the joint's angle [rad], speed [rad/s] and duty (-1..1) after a step that
        ended at ``t`` [s]."""
        k = self.direction * COUNT_RAD
        self.abs_pos = q / k + self.zero_counts + self.mount
        self.abs_vel = w / k
        self.duty = duty
        self.measured_t = t

    def position_at(self, t: float) -> float:
        """The position [absolute counts] a read at ``t`` [s] samples: the physics runs in
        whole steps behind the bus (a reply does not wait for a step), so the last step's
        angle is carried forward at its speed to ``t``. A servo samples its sensor when
        asked; answering with the step's angle made every reading 2-6 ms old (the serve loop's
        last step, or one step before the request while the host talks), which ``kraby
        sysid``, timing readings by the transaction, read as a faster servo and more
        friction."""
        return self.abs_pos + self.abs_vel * min(max(t - self.measured_t, 0.0), MAX_CARRY_S)

    def update(self, t: float, dt: float) -> None:
        """Error checks over the last ``dt`` seconds (overload, voltage) and their policies."""
        if self.ram[P.Ram.CONTROL_MODE] == 1 and self.torque == P.Torque.ON:
            lo, hi = self._u16(P.Ram.MIN_POSITION), self._u16(P.Ram.MAX_POSITION)
            cal = self.abs_pos - self.calibration
            if (cal <= lo and self._turn_v < 0) or (cal >= hi and self._turn_v > 0):
                self._turn_v = 0.0
        pwm = abs(self.pwm())
        if self.torque == P.Torque.ON and pwm > self._u16(P.Ram.OVERLOAD_PWM_THRESHOLD):
            self._overload_s += dt
        else:
            self._overload_s = 0.0
        if self._overload_s > self.ram[P.Ram.OVERLOAD_DETECTION_PERIOD] * TICK_S:
            self._raise_error(P.SE_OVERLOAD, t)
        raw_v = self.voltage_raw()
        if not self.ram[P.Ram.MIN_VOLTAGE] <= raw_v <= self.ram[P.Ram.MAX_VOLTAGE]:
            self._voltage_bad_s += dt
        else:
            self._voltage_bad_s = 0.0
        if self._voltage_bad_s > self.ram[P.Ram.ADC_FAULT_CHECK_PERIOD] * TICK_S:
            self._raise_error(P.SE_VOLTAGE, t)

    def _raise_error(self, bit: int, t: float, detail: int = 0) -> None:
        self.ram[P.Ram.STATUS_ERROR] |= bit
        self.ram[P.Ram.STATUS_DETAIL] |= detail
        if self.ram[P.Ram.TORQUE_POLICY] & self.ram[P.Ram.STATUS_ERROR]:
            if self.torque != P.Torque.FREE:
                self.ram[P.Ram.TORQUE_CONTROL] = P.Torque.FREE

    def note_invalid_packet(self, detail: int, t: float) -> None:
        """A bad packet reached this servo: status error 0x08 with the cause in detail."""
        self._raise_error(P.SE_INVALID_PACKET, t, detail)

    # --- sensors ------------------------------------------------------------------------
    def pwm(self) -> int:
        limit = min(self._u16(P.Ram.MAX_PWM), PWM_FULL)
        return int(max(-limit, min(limit, round(self.direction * self.duty * PWM_FULL))))

    def voltage_raw(self) -> int:
        return int(round(self.supply_v / VOLTAGE_LSB))

    def status_detail(self, t: float) -> int:
        sd = self.ram[P.Ram.STATUS_DETAIL] & ~SD_READ_ONLY
        if self.torque == P.Torque.ON:
            sd |= P.SD_MOTOR_ON
            sp, sv = self.setpoint(t)
            moving = sv != 0.0 or sp != self._goal or \
                abs(self.abs_vel) * TICK_S > self.ram[P.Ram.STOP_THRESHOLD]
            if moving:
                sd |= P.SD_MOVING
            if abs(self._goal - self.abs_pos) <= self.ram[P.Ram.INPOSITION_MARGIN]:
                sd |= P.SD_INPOSITION
        return sd

    def _refresh(self, t: float) -> None:
        """Write the live values into the read-only RAM registers."""
        r = self.ram
        absolute = int(round(self.position_at(t)))
        cal = max(0, min(1023, absolute - self.calibration))
        r[P.Ram.STATUS_DETAIL] = self.status_detail(t)
        r[P.Ram.VOLTAGE] = max(0, min(255, self.voltage_raw()))
        r[P.Ram.TEMPERATURE] = 128   # about 25 degC
        r[P.Ram.TICK] = int(t / TICK_S) & 0xFF
        self._put16(P.Ram.CALIBRATED_POSITION, cal | (self.high_bits << 8))
        self._put16(P.Ram.ABSOLUTE_POSITION,
                    max(0, min(1023, absolute)) | (self.high_bits << 8))
        diff = int(round(self.abs_vel * TICK_S))
        self._put16(P.Ram.DIFFERENTIAL_POSITION, max(-32768, min(32767, diff)))
        self._put16(P.Ram.PWM, self.pwm())
        sp, sv = self.setpoint(t)
        self._put16(P.Ram.ABSOLUTE_GOAL_POSITION, int(round(self._goal)))
        self._put16(P.Ram.DESIRED_TRAJECTORY_POSITION, int(round(sp)))
        self._put16(P.Ram.DESIRED_VELOCITY, int(round(sv * TICK_S)))

    # --- requests -----------------------------------------------------------------------
    def handle(self, pkt: P.Packet, t: float) -> bytes | None:
        """Execute a request addressed to this servo (or broadcast); return its ACK or None.

        The caller has already checked the checksum and the addressing.
        """
        if t < self.deaf_until:
            return None
        policy = self.ram[P.Ram.ACK_POLICY]
        cmd = pkt.cmd
        handler = _HANDLERS.get(cmd)
        if handler is None:
            self.note_invalid_packet(P.SD_UNKNOWN_CMD, t)
            return None
        result = handler(self, pkt, t)
        if result is _NO_REPLY:
            return None
        addr, payload = result if isinstance(result, tuple) else (None, b"")
        answer = (cmd == P.Cmd.STAT
                  or (policy >= 1 and cmd in (P.Cmd.EEP_READ, P.Cmd.RAM_READ))
                  or policy >= 2)
        if not answer or pkt.pid == P.BROADCAST_ID and cmd != P.Cmd.STAT:
            return None
        self._refresh(t)
        return P.encode_ack(self.id, cmd, self.ram[P.Ram.STATUS_ERROR],
                            self.ram[P.Ram.STATUS_DETAIL], addr, payload)

    def _range(self, pkt: P.Packet, size: int, t: float, write: bool):
        d = pkt.data
        if len(d) < 2 or (write and len(d) != 2 + d[1]) or (not write and len(d) != 2):
            self.note_invalid_packet(P.SD_GARBAGE, t)
            return None
        addr, n = d[0], d[1]
        if n == 0 or addr + n > size:
            self.note_invalid_packet(P.SD_RANGE, t)
            return None
        return addr, n

    def _write(self, pkt, t, size: int, store):
        rng = self._range(pkt, size, t, write=True)
        if rng is None:
            return _NO_REPLY
        addr, n = rng
        for i, b in enumerate(pkt.data[2:2 + n]):
            store(addr + i, b, t)
        return None

    def _eep_write(self, pkt, t):
        return self._write(pkt, t, P.EEP_SIZE, self._write_eep_byte)

    def _write_eep_byte(self, a: int, b: int, t: float) -> None:
        if a not in EEP_READ_ONLY:
            self.eep[a] = b

    def _eep_read(self, pkt, t):
        rng = self._range(pkt, P.EEP_SIZE, t, write=False)
        if rng is None:
            return _NO_REPLY
        addr, n = rng
        return addr, bytes(self.eep[addr:addr + n])

    def _ram_write(self, pkt, t):
        return self._write(pkt, t, P.RAM_SIZE, self._write_ram_byte)

    def _write_ram_byte(self, a: int, b: int, t: float) -> None:
        r = self.ram
        if a >= RAM_READ_ONLY_FROM or a in (50, 51):
            return
        if a == P.Ram.STATUS_DETAIL:
            r[a] = (r[a] & SD_READ_ONLY) | (b & ~SD_READ_ONLY & 0xFF)
        elif a == P.Ram.TORQUE_CONTROL:
            self._set_torque(b, t)
        elif a == P.Ram.LED_CONTROL:
            if not r[P.Ram.ALARM_LED_POLICY] & r[P.Ram.STATUS_ERROR]:
                r[a] = b & 0x07
        elif a == P.Ram.ID:
            if b <= P.MAX_ID:
                r[a] = b
        else:
            r[a] = b

    def _set_torque(self, value: int, t: float) -> None:
        r = self.ram
        if value not in (P.Torque.FREE, P.Torque.BRAKE, P.Torque.ON):
            value = value & 0x60
        if value == P.Torque.ON and r[P.Ram.TORQUE_POLICY] & r[P.Ram.STATUS_ERROR]:
            return   # blocked until the error is cleared
        if value != r[P.Ram.TORQUE_CONTROL]:
            self._hold_here(t)    # a mode change holds the measured position
        r[P.Ram.TORQUE_CONTROL] = value

    def _ram_read(self, pkt, t):
        rng = self._range(pkt, P.RAM_SIZE, t, write=False)
        if rng is None:
            return _NO_REPLY
        addr, n = rng
        self._refresh(t)
        return addr, bytes(self.ram[addr:addr + n])

    def _jog(self, pkt, t):
        # A broadcast S_JOG reaches all 18 servos: the entries are decoded once, not 18
        # times (which took the virtual bus 3 ms per cycle and made its answers late).
        try:
            entries = _parse_jog(pkt.cmd, pkt.data)
        except P.ProtocolError:
            self.note_invalid_packet(P.SD_GARBAGE, t)
            return _NO_REPLY
        for e in entries:
            if e.servo_id == self.id and not e.invalid:
                self._apply_jog(e, t)
        return None

    def _apply_jog(self, e: P.Jog, t: float) -> None:
        r = self.ram
        if not r[P.Ram.ALARM_LED_POLICY] & r[P.Ram.STATUS_ERROR]:
            r[P.Ram.LED_CONTROL] = e.led
        if self.torque == P.Torque.BRAKE:
            return      # braked: JOGs are not executed
        if self.torque == P.Torque.FREE:
            r[P.Ram.CONTROL_MODE] = 1 if e.turn else 0
            return      # free: only the mode is taken; the goal is dropped
        if e.stop:
            self._hold_here(t)
            self._turn_v = 0.0
            return
        if r[P.Ram.CONTROL_MODE] == 1:
            if e.turn:
                self._turn_v = e.value / PWM_FULL * (SERVO_NO_LOAD_SPEED / COUNT_RAD)
            return
        if e.turn:
            return      # mode changes only while torque is off
        lo, hi = self._u16(P.Ram.MIN_POSITION), self._u16(P.Ram.MAX_POSITION)
        goal = e.value
        if not lo <= goal <= hi:
            self._raise_error(P.SE_POT_LIMIT, t)
            goal = max(lo, min(hi, goal))
        self._start_move(t, goal + self.calibration, e.playtime)

    def _stat(self, pkt, t):
        return None

    def _rollback(self, pkt, t):
        d = pkt.data
        keep_id = len(d) > 0 and d[0] == 1
        keep_baud = len(d) > 1 and d[1] == 1
        old = self.eep
        self.eep = factory_eeprom(old[P.Eep.ID] if keep_id else 0xFD)
        if keep_baud:
            self.eep[P.Eep.BAUD_RATE] = old[P.Eep.BAUD_RATE]
        else:
            self.eep[P.Eep.BAUD_RATE] = 0x10
        return None

    def _reboot(self, pkt, t):
        self.reboot(t)
        return None

    def reboot(self, t: float) -> None:
        """Reload RAM from EEPROM; torque free; deaf for the boot time."""
        self._boot(t)
        self.deaf_until = t + self.boot_time_s


_NO_REPLY = object()
_HANDLERS = {
    P.Cmd.EEP_WRITE: VirtualServo._eep_write, P.Cmd.EEP_READ: VirtualServo._eep_read,
    P.Cmd.RAM_WRITE: VirtualServo._ram_write, P.Cmd.RAM_READ: VirtualServo._ram_read,
    P.Cmd.I_JOG: VirtualServo._jog, P.Cmd.S_JOG: VirtualServo._jog,
    P.Cmd.STAT: VirtualServo._stat, P.Cmd.ROLLBACK: VirtualServo._rollback,
    P.Cmd.REBOOT: VirtualServo._reboot,
}
