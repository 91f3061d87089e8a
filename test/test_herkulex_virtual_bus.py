"""The virtual DRS-0101 bus, in process: the section-10 checklist of the protocol doc."""

import time

import pytest

from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex.units import TICK_S
from kraby_rl.herkulex.virtual.bus import VirtualBus


@pytest.fixture
def bus():
    return VirtualBus(timing=False)


def ask(bus, raw, t=0.0):
    """Send raw bytes at time t; return the decoded ACKs."""
    return [P.decode_ack(P.decode(r)) for _, r in bus.receive(raw, t)]


def test_ack_policy_and_addressing(bus):
    assert ask(bus, P.ram_write(3, 53, [1])) == []                  # policy 1: no ACK
    assert ask(bus, P.ram_read(3, 53, 1))[0].u8(53) == 1          # reads answered
    assert ask(bus, P.stat(40)) == []                              # absent ID: silence
    assert ask(bus, P.ram_read(P.BROADCAST_ID, 53, 1)) == []       # broadcast: never
    bus.receive(P.ram_write(3, P.Ram.ACK_POLICY, [2]), 0.0)
    assert ask(bus, P.ram_write(3, 53, [2]))[0].cmd == P.Cmd.RAM_WRITE
    bus.receive(P.ram_write(3, P.Ram.ACK_POLICY, [0]), 0.0)
    assert ask(bus, P.ram_read(3, 53, 1)) == []
    assert ask(bus, P.stat(3))[0].pid == 3                         # STAT: always


def test_broadcast_stat_collides(bus):
    replies = bus.receive(P.stat(P.BROADCAST_ID), 0.0)
    assert len(replies) == 1 and bus.stats["collisions"] == 1
    with pytest.raises(P.ProtocolError):
        P.decode(replies[0][1])


def test_bad_checksum_is_silent_but_flagged(bus):
    raw = bytearray(P.ram_read(4, 58, 6))
    raw[6] ^= 0x02
    assert bus.receive(bytes(raw), 0.0) == []
    ack = ask(bus, P.stat(4))[0]
    assert ack.errors() == ["invalid packet"] and "checksum error" in ack.details()
    assert ack.status_detail & P.SD_CHECKSUM
    bus.receive(P.ram_write(4, 48, [0, 0]), 0.0)
    assert ask(bus, P.stat(4))[0].status_error == 0


def test_range_and_unknown_command_flags(bus):
    bus.receive(P.encode(2, P.Cmd.RAM_READ, bytes([70, 8])), 0.0)
    assert ask(bus, P.stat(2))[0].status_detail & P.SD_RANGE
    bus.receive(P.encode(2, 0x0C), 0.0)
    assert ask(bus, P.stat(2))[0].status_detail & P.SD_UNKNOWN_CMD


def test_eeprom_reaches_ram_only_after_reboot_and_rollback(bus):
    bus.receive(P.eep_write(6, P.Eep.CALIBRATION_DIFFERENCE, [0x10]), 0.0)
    assert ask(bus, P.ram_read(6, 47, 1))[0].u8(47) == 0
    bus.receive(P.reboot(6), 0.0)
    assert ask(bus, P.ram_read(6, 47, 1), 0.01) == []                   # deaf while booting
    assert ask(bus, P.ram_read(6, 47, 1), 1.0)[0].u8(47) == 0x10
    bus.receive(P.eep_write(6, 0, [9, 9]), 1.0)                          # model: read-only
    assert ask(bus, P.eep_read(6, 0, 2), 1.0)[0].payload == b"\x01\x01"
    bus.receive(P.rollback(6, keep_id=True, keep_baud=True), 1.0)
    eep = ask(bus, P.eep_read(6, 0, 54), 1.0)[0]
    assert eep.u8(53) == 0 and eep.u8(P.Eep.ID) == 6 and eep.u8(P.Eep.BAUD_RATE) == 3


def test_jog_follows_the_playtime_trajectory(bus):
    bus.receive(P.ram_write(P.BROADCAST_ID, 52, [P.Torque.ON]), 0.0)
    start = ask(bus, P.ram_read(0, 58, 2), 0.0)[0].position(58)
    bus.receive(P.s_jog(20, [P.Jog(0, start + 60, led=2)]), 0.0)       # 20 ticks = 0.224 s
    mid = ask(bus, P.ram_read(0, 58, 16), 10 * TICK_S)[0]
    assert start < mid.position(58) < start + 60
    assert "moving" in mid.details()
    assert mid.u16(68) == start + 60          # absolute goal (calibration 0 out of the box)
    end = ask(bus, P.ram_read(0, 58, 2), 0.6)[0]
    assert abs(end.position(58) - (start + 60)) <= 1
    assert "in position" in end.details() and end.status_detail & P.SD_MOTOR_ON
    assert ask(bus, P.ram_read(0, 53, 1), 0.6)[0].u8(53) == 2      # LED bits from the JOG


def test_torque_modes_brake_and_free_do_not_execute_jogs(bus):
    pos = lambda t: ask(bus, P.ram_read(1, 58, 2), t)[0].position(58)  # noqa: E731
    p0 = pos(0.0)
    bus.receive(P.s_jog(5, [P.Jog(1, p0 + 40)]), 0.0)                  # torque free
    assert pos(0.5) == p0
    bus.receive(P.ram_write(1, 52, [P.Torque.BRAKE]), 0.5)
    bus.receive(P.s_jog(5, [P.Jog(1, p0 + 40)]), 0.5)
    assert pos(1.0) == p0
    bus.receive(P.ram_write(1, 52, [P.Torque.ON]), 1.0)
    bus.receive(P.s_jog(5, [P.Jog(1, p0 + 40)]), 1.0)
    assert abs(pos(1.5) - (p0 + 40)) <= 1


def test_overload_releases_torque_until_cleared_and_switched_on(bus):
    bus.receive(P.ram_write(P.BROADCAST_ID, 52, [P.Torque.ON]), 0.0)
    bus.receive(P.ram_write(4, P.Ram.OVERLOAD_DETECTION_PERIOD, [10]), 0.0)   # 112 ms
    p0 = ask(bus, P.ram_read(4, 58, 2), 0.0)[0].position(58)
    bus.inject("overload", 4)
    bus.receive(P.s_jog(5, [P.Jog(4, p0 + 80)]), 0.0)
    ack = ask(bus, P.ram_read(4, 52, 1), 0.5)[0]
    assert ack.errors() == ["overload"] and ack.u8(52) == P.Torque.FREE
    bus.receive(P.ram_write(4, 52, [P.Torque.ON]), 0.5)                   # refused
    assert ask(bus, P.ram_read(4, 52, 1), 0.5)[0].u8(52) == P.Torque.FREE
    bus.inject("overload", 4, on=False)
    bus.receive(P.ram_write(4, 48, [0, 0]), 0.6)
    assert ask(bus, P.ram_read(4, 52, 1), 0.6)[0].u8(52) == P.Torque.FREE  # stays off
    bus.receive(P.ram_write(4, 52, [P.Torque.ON]), 0.6)
    ack = ask(bus, P.ram_read(4, 52, 1), 0.7)[0]
    assert ack.u8(52) == P.Torque.ON and ack.status_error == 0


def test_reply_faults_and_mute(bus):
    bus.inject("drop", 2, count=2)
    assert ask(bus, P.stat(2)) == [] and ask(bus, P.stat(2)) == []
    assert len(ask(bus, P.stat(2))) == 1
    bus.inject("corrupt", None, count=1)
    (_, raw), = bus.receive(P.stat(2), 0.0)
    with pytest.raises(P.ProtocolError):
        P.decode(raw)
    bus.inject("mute", 9)
    assert ask(bus, P.stat(9)) == []
    bus.inject("mute", 9, on=False)
    assert len(ask(bus, P.stat(9))) == 1
    with pytest.raises(ValueError, match="unknown fault 'melt'"):
        bus.inject("melt", 1)


def test_wire_timing_at_the_baud_rate_plus_latency():
    bus = VirtualBus(baudrate=500_000, latency_s=100e-6)
    req = P.ram_read(0, 58, 6)                   # 9 bytes out, 17 back
    (due, raw), = bus.receive(req, 1.0)
    assert due == pytest.approx(1.0 + 9 * 20e-6 + 100e-6 + 17 * 20e-6)
    # an S_JOG written just before delays the next answer by its own 80 bytes
    jog = P.s_jog(2, [P.Jog(i, 512) for i in range(18)])
    (due2, _), = bus.receive(jog + req, 2.0)
    assert due2 == pytest.approx(2.0 + (80 + 9) * 20e-6 + 100e-6 + 17 * 20e-6)


def test_partial_frame_expires_after_the_garbage_period(bus):
    bus.receive(P.stat(3)[:4], 0.0)
    assert bus.check_garbage(0.1) == []                      # 201 ms not over yet
    bus.check_garbage(0.3)
    assert bus.parser.pending == 0
    assert ask(bus, P.stat(3), 0.3)[0].status_detail & P.SD_GARBAGE


def test_tcp_bus_takes_a_new_client_when_the_old_one_hung_up_unread():
    """A tool that exits and a new one that connects at once: the hang-up and the new
    connection can be seen in one select, accept first. The newcomer gets the bus (the old
    client is gone), not ser2net's busy refusal; while the old one is alive it is refused."""
    import socket
    from kraby_rl.herkulex.virtual.transports import TcpTransport
    tr = TcpTransport()
    try:
        first = socket.create_connection(("127.0.0.1", tr.port))
        tr.read(tr.listener.fileno())                  # accepted: it has the bus
        third = None
        busy = socket.create_connection(("127.0.0.1", tr.port))
        time.sleep(0.05)
        tr.read(tr.listener.fileno())                  # the bus is in use: refused
        assert tr.refused == 1 and tr.client is not None
        busy.close()
        first.close()
        third = socket.create_connection(("127.0.0.1", tr.port))
        time.sleep(0.05)
        tr.read(tr.listener.fileno())                  # before the old client's EOF is read
        assert tr.refused == 1 and tr.client is not None
        third.sendall(b"\xff")
        time.sleep(0.05)
        assert tr.read(tr.client.fileno()) == b"\xff"  # the new client has the bus
    finally:
        for s in (first, third):
            if s is not None:
                s.close()
        tr.close()


def test_a_read_is_answered_from_sensors_at_most_one_step_old_and_a_write_acts_on_time():
    """The serve loop runs the physics between requests; a read does not redo it in the
    reply path (a servo samples its sensors), a write or jog acts at its exact time."""
    from kraby_rl.herkulex.virtual.joints import FirstOrderJoints

    class Counting(FirstOrderJoints):
        steps = 0

        def step(self, *a):
            Counting.steps += 1
            return super().step(*a)
    bus = VirtualBus(Counting())
    step = bus.joints.step_s
    bus.advance(1.0)
    n = Counting.steps
    bus.receive(P.ram_read(3, P.Ram.CALIBRATED_POSITION, 6), 1.0 + 0.95 * step)
    assert Counting.steps == n                        # answered from the last step's values
    bus.receive(P.ram_read(3, P.Ram.CALIBRATED_POSITION, 6), 1.0 + 3 * step)
    assert 1 <= Counting.steps - n <= 3               # never more than one step old
    n = Counting.steps
    bus.receive(P.ram_write(3, P.Ram.TORQUE_CONTROL, [P.Torque.ON]), 1.0 + 3.9 * step)
    assert bus.t >= 1.0 + 3 * step and Counting.steps - n >= 0
    assert bus.t <= 1.0 + 3.9 * step + 0.6e-3      # the write's own wire time on top


def test_a_step_is_driven_by_the_setpoint_at_its_start_and_a_read_carries_the_angle_forward():
    """Timing as ``KrabyWorld.substep`` and ``kraby sysid``'s replay have it: the physics
    step from t to t + dt follows the trajectory's setpoint at t (the end's ran every servo
    one step ahead), and a reading between steps is the last step's angle carried forward at
    its speed to the read's time (the step's angle alone was 2-6 ms old)."""
    from kraby_rl.herkulex.virtual.joints import FirstOrderJoints
    from kraby_rl.herkulex.virtual.servo import MAX_CARRY_S

    class Recording(FirstOrderJoints):
        def step(self, dt, mode, sp, sv, blocked):
            self.seen = sp.copy()
            return super().step(dt, mode, sp, sv, blocked)
    bus = VirtualBus(Recording(), timing=False)
    step = bus.joints.step_s
    bus.receive(P.ram_write(P.BROADCAST_ID, P.Ram.TORQUE_CONTROL, [P.Torque.ON]), 0.0)
    bus.advance(10 * step)
    servo = bus.servos[0]
    before = servo.joint_command(bus.t)[1]
    goal = int(round(servo.abs_pos - servo.calibration)) + 300
    bus.receive(P.s_jog(20, [P.Jog(0, goal)]), bus.t)      # a move starting on a step
    bus.advance(bus.t + step)
    assert bus.joints.seen[0] == pytest.approx(before, abs=1e-12)  # not yet moved at t
    bus.advance(bus.t + 25 * step)                          # past the acceleration
    assert abs(servo.abs_vel) > 900                         # moving [counts/s]
    t = bus.t + 0.9 * step
    got = ask(bus, P.ram_read(0, P.Ram.CALIBRATED_POSITION, 2), t)[0]
    carried = servo.abs_pos + servo.abs_vel * (t - bus.t)
    assert got.position(P.Ram.CALIBRATED_POSITION) == int(round(carried)) - servo.calibration
    assert abs(carried - servo.abs_pos) >= 1                # a count or more: it matters
    # a bus held up for longer carries the angle no further than MAX_CARRY_S
    assert servo.position_at(bus.t + 1.0) == pytest.approx(
        servo.abs_pos + servo.abs_vel * MAX_CARRY_S)
