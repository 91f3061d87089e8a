"""The bus driver against the virtual bus in its own process, over a real pty and over TCP
on 127.0.0.1: scan, motion, torque modes, every injected fault, recovery, CLI tools."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from kraby_rl.core import joints as J
from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex.driver import HerkulexBus, PortUnavailable
from kraby_rl.herkulex.virtual.fake_bus import FakeBusProcess


def start_bus(kind, tmp_path, *extra):
    args = ["--tcp", "--port", "0"] if kind == "tcp" else ["--pty", "--link",
                                                           str(tmp_path / "ttyKRABY")]
    return FakeBusProcess(args + list(extra))


@pytest.fixture(params=["pty", "tcp"])
def fake(request, tmp_path):
    fb = start_bus(request.param, tmp_path)
    yield fb
    fb.close()


def drive(bus, q, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        bus.jog(q)
        st = bus.read_state()
        time.sleep(0.01)
    return st


def test_scan_finds_the_18_servos_and_commanded_positions_are_reached(fake):
    with HerkulexBus(fake.url) as bus:
        assert sorted(bus.scan(range(0, 24))) == list(range(18))
        bus.write_calibration()
        bus.set_torque("on")
        target = J.DEFAULT_POSE + 0.15 * np.cos(np.arange(18))
        st = drive(bus, target, 0.6)
        assert st.valid.all() and st.connected
        assert np.abs(st.position - target).max() < 0.01
        truth = np.array(fake.control(cmd="state")["q"])
        assert np.abs(truth - target).max() < 0.01
        assert fake.control(cmd="state")["calibration"] == J.CALIBRATION.tolist()
        # nothing corrupt on a clean bus; a rare timeout under machine load is retried
        h = bus.health_report()["servos"]
        assert all(s["checksum_errors"] == 0 and s["bad_replies"] == 0 for s in h.values())
        assert all(s["timeouts"] <= s["retries"] for s in h.values())


def test_torque_modes(tmp_path):
    with start_bus("pty", tmp_path) as fb, HerkulexBus(fb.url) as bus:
        q0 = bus.read_state().position
        away = q0 + 0.2
        for mode in ("free", "brake"):
            bus.set_torque(mode)
            drive(bus, away, 0.3)
            truth = np.array(fb.control(cmd="state")["q"])
            assert np.abs(truth - q0).max() < 0.01, f"moved with torque {mode}"
        assert set(fb.control(cmd="state")["torque"]) == {P.Torque.BRAKE}
        bus.set_torque("on")
        st = drive(bus, away, 0.4)
        assert np.abs(st.position - away).max() < 0.01
        assert bus.stat(3).motor_on


def test_injected_faults_are_survived_counted_and_recovered(tmp_path):
    with start_bus("pty", tmp_path) as fb:
        bus = HerkulexBus(fb.url, offline_poll_s=0.2)
        bus.write_calibration()
        bus.set_torque("on")
        bus.read_state()
        # dropped replies: retried, counted, nothing lost
        fb.control(cmd="fault", fault="drop", id=4, count=2)
        st = bus.read_state()
        assert st.valid.all() and bus.health[4].timeouts >= 2 and bus.health[4].retries >= 2
        # corrupted bytes: checksum errors counted, retried
        fb.control(cmd="fault", fault="corrupt", count=2)   # two attempts of servo 0
        st = bus.read_state()
        assert st.valid.all()
        assert bus.health[0].checksum_errors + bus.health[0].bad_replies == 2
        assert bus.health[0].retries >= 2
        # a servo that stops answering: the others keep going, it goes offline
        fb.control(cmd="fault", fault="mute", id=7, on=True)
        for _ in range(4):
            st = bus.read_state()
            assert not st.valid[7] and st.valid[np.arange(18) != 7].all()
        assert not bus.health[7].online and bus.health[7].timeouts >= 3
        assert np.isnan(st.position[7])
        fb.control(cmd="fault", fault="mute", id=7, on=False)
        # silenced for a few cycles (a bus glitch): polled again within a few cycles, not
        # after offline_poll_s (the shield stops the robot after 0.15 s without it)
        time.sleep(0.05)
        assert bus.read_state().valid.all() and bus.health[7].online
        # overload: torque released, the error reported, recovery after clear + torque on
        bus.write_ram(4, P.Ram.OVERLOAD_DETECTION_PERIOD, [10])
        fb.control(cmd="fault", fault="overload", id=4, on=True)
        q = bus.read_state().position
        q[4] += 0.3
        st = drive(bus, q, 0.4)
        assert st.status_error[4] & P.SE_OVERLOAD
        assert fb.control(cmd="state")["torque"][4] == P.Torque.FREE
        assert bus.health[4].status_errors == 1
        fb.control(cmd="fault", fault="overload", id=4, on=False)
        bus.clear_errors([4])
        bus.set_torque("on", [4])
        st = drive(bus, q, 0.4)
        assert st.status_error[4] == 0 and abs(st.position[4] - q[4]) < 0.01
        bus.close()


@pytest.mark.parametrize("kind", ["pty", "tcp"])
def test_port_lost_and_back_reconnects(kind, tmp_path):
    with start_bus(kind, tmp_path) as fb:
        bus = HerkulexBus(fb.url, backoff_s=(0.05, 0.2))
        assert bus.read_state().valid.all()
        fb.control(cmd="reopen", down_s=0.8)
        time.sleep(0.1)
        lost_seen = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = bus.read_state()          # never raises
            if not st.valid.any():
                lost_seen = True
            elif lost_seen and st.valid.all():
                break
            time.sleep(0.02)
        assert lost_seen and st.valid.all()
        assert bus.stats["reconnects"] >= 1 and bus.stats["port_errors"] >= 1
        assert "lost" in bus.last_error or "cannot open" in bus.last_error
        bus.close()


def test_missing_port_and_echoing_port_are_clear_errors(tmp_path):
    missing = str(tmp_path / "no-such-tty")
    with pytest.raises(PortUnavailable, match=f"cannot open port '{missing}'"):
        HerkulexBus(missing)
    with HerkulexBus("loop://") as bus:    # a line that echoes requests back
        st = bus.read_state()
        assert not st.valid.any()
        assert bus.health[0].bad_replies >= 1
        with pytest.raises(Exception, match="servo ID 0: expected an ACK"):
            bus.stat(0)


def kraby(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "kraby_rl.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ))


def test_servo_cli_tools(tmp_path):
    with start_bus("tcp", tmp_path) as fb:
        r = kraby("servo", "scan", "--port", fb.url, "--ids", "0-20")
        assert r.returncode == 0, r.stderr
        assert "18 servo(s) answered out of 21 IDs" in r.stdout
        r = kraby("servo", "torque", "on", "--port", fb.url)
        assert r.returncode == 0 and "torque on on 18 servo(s)" in r.stdout, r.stderr
        r = kraby("servo", "jog", "--port", fb.url, "--joint", "lm_femur", "--rad", "0.2",
                  "--playtime-s", "0.2")
        assert r.returncode == 0, r.stderr
        assert abs(fb.control(cmd="state")["q"][4] - 0.2) < 0.01
        r = kraby("servo", "read", "--port", fb.url)
        assert r.returncode == 0, r.stderr
        row = next(line.split() for line in r.stdout.splitlines()
                   if line.startswith("lm_femur"))
        assert row[1] == "4" and abs(float(row[2]) - 0.2) < 0.01     # one count = 0.0057
        r = kraby("servo", "status", "--port", fb.url, "--ids", "17-18")
        assert r.returncode == 1
        assert "no servo answered at ID 18" in r.stderr
        assert "bus trouble counted" in r.stderr
        r = kraby("servo", "set-id", "--port", fb.url, "17", "30")
        assert r.returncode == 0 and "servo ID 17 is now ID 30" in r.stdout, r.stderr
        assert fb.control(cmd="state")["ids"][17] == 30
        r = kraby("servo", "set-id", "--port", fb.url, "30", "16")
        assert r.returncode == 1 and "ID 16 is already taken" in r.stderr
        assert kraby("servo", "set-id", "--port", fb.url, "30", "17").returncode == 0
        out = tmp_path / "cal.yaml"
        r = kraby("servo", "calibrate", "--port", fb.url, "--yes", "--out", str(out))
        assert r.returncode == 0, r.stderr
        from kraby_rl.herkulex.tools import load_calibration
        cal = load_calibration(str(out))
        assert cal[0] == J.CALIBRATION[0] and cal.shape == (18,)
        # a servo that does not answer makes the scan fail, naming it
        fb.control(cmd="fault", fault="mute", id=5, on=True)
        r = kraby("servo", "scan", "--port", fb.url, "--ids", "0-20")
        assert r.returncode == 1, r.stdout + r.stderr
        assert "did not answer: ID 5 (lm_tibia) (17 of 18 expected)" in r.stderr
        assert kraby("servo", "scan", "--port", fb.url, "--ids", "0-20",
                     "--expect", "17").returncode == 0
    r = kraby("servo", "scan", "--port", str(tmp_path / "ttyX"))
    assert r.returncode == 1 and "cannot open port" in r.stderr


def test_pybullet_robot_moves_when_the_driver_commands_it(tmp_path):
    with start_bus("pty", tmp_path, "--physics", "pybullet") as fb, \
            HerkulexBus(fb.url) as bus:
        time.sleep(0.8)                       # torque free at power-up: the robot sags
        sagged = bus.read_state().position
        assert np.abs(sagged - J.DEFAULT_POSE).max() > 0.3
        bus.set_torque("on")
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            bus.jog(J.DEFAULT_POSE)
            st = bus.read_state(pwm=True)
            time.sleep(0.01)
        assert np.abs(st.position - J.DEFAULT_POSE).max() < 0.05     # standing, under load
        assert np.nanmax(np.abs(st.effort)) > 0.02                     # holding the body up
        assert fb.control(cmd="state")["t"] >= 2.2       # physics ran in real time meanwhile


def test_a_second_tcp_client_is_refused_like_ser2net(tmp_path):
    import socket
    with start_bus("tcp", tmp_path) as fb:
        first = HerkulexBus(fb.url)
        try:
            assert first.read_state().valid.all()
            host, port = fb.url[len("socket://"):].rsplit(":", 1)
            second = socket.create_connection((host, int(port)), timeout=2)
            second.settimeout(2)
            told = b""
            while True:
                chunk = second.recv(200)
                if not chunk:
                    break               # closed by the bus after the message
                told += chunk
            second.close()
            assert b"already in use" in told
            # the first client still has the bus
            assert first.read_state().valid.all()
        finally:
            first.close()


def test_a_late_reply_of_the_wrong_length_is_skipped_not_raised():
    """A stale 4-byte read answer (from an earlier, shorter read) arriving while a 6-byte
    read is awaited: read_state must count it and go on (it never raises for bus trouble)."""
    bus = HerkulexBus("loop://", open_now=True, retries=0)
    ser = bus._ser
    # the "servo": what the loop echoes back is the request; queue a stale 8-byte answer
    # for ID 0 first, so the 6-byte read of ID 0 sees it before its own echo
    stale = P.encode(0, P.Cmd.RAM_READ | P.ACK_FLAG,
                     bytes([58, 4]) + bytes(4) + bytes([0, 0x42]))
    bus._dirty = False          # the port was just opened: no input flush before this read
    ser.write(stale)
    st = bus.read_state()
    assert not st.valid[0]
    h = bus.health[0]
    assert h.bad_replies + h.timeouts + h.checksum_errors >= 1


@pytest.mark.parametrize("text, match", [
    (None, r"cannot read calibration file '.*missing\.yaml'"),
    ("calibration: [[1, 2, 3]]\n", r"'calibration' must be 6 rows of 3 integers in "
                                   r"-128\.\.127 .* found \[\[1, 2, 3\]\]"),
    ("calibration:\n" + "  - [0, 0, 200]\n" * 6, r"-128\.\.127"),
    ("other: 1\n", r"found None"),
])
def test_a_bad_calibration_file_is_named_with_what_was_found(tmp_path, text, match):
    from kraby_rl.herkulex.calibration import CalibrationError, load_calibration
    path = tmp_path / ("missing.yaml" if text is None else "cal.yaml")
    if text is not None:
        path.write_text(text)
    with pytest.raises(CalibrationError, match=match):
        load_calibration(str(path))
