"""Herkulex codec: the protocol doc's worked packets byte for byte, round trips, parser."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex import units as U


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (builder output, bytes from herkulex-drs0101.md)
WORKED = [
    (lambda: P.ram_read(5, 58, 8), "FF FF 09 05 04 3A C4 3A 08"),
    (lambda: P.ram_read(253, 53, 1), "FF FF 09 FD 04 C4 3A 35 01"),
    (lambda: P.reboot(253), "FF FF 07 FD 09 F2 0C"),
    (lambda: P.stat(P.BROADCAST_ID), "FF FF 07 FE 07 FE 00"),
    (lambda: P.ram_write(P.BROADCAST_ID, 52, [0x60]), "FF FF 0A FE 03 A2 5C 34 01 60"),
    (lambda: P.ram_write(P.BROADCAST_ID, 52, [0x00]), "FF FF 0A FE 03 C2 3C 34 01 00"),
    (lambda: P.ram_write(3, 48, [0, 0]), "FF FF 0B 03 03 38 C6 30 02 00 00"),
    (lambda: P.i_jog([P.Jog(253, 512, led=0b001, playtime=60)], pid=253),
     "FF FF 0C FD 05 32 CC 00 02 04 FD 3C"),
    (lambda: P.i_jog([P.Jog(253, 320, turn=True, led=0b010, playtime=60)], pid=253),
     "FF FF 0C FD 05 7E 80 40 01 0A FD 3C"),
    (lambda: P.s_jog(60, [P.Jog(253, 512, led=0b001)], pid=253),
     "FF FF 0C FD 06 30 CE 3C 00 02 04 FD"),
    (lambda: P.s_jog(60, [P.Jog(253, 704, turn=True, led=0b010)], pid=253),
     "FF FF 0C FD 06 FE 00 3C C0 02 0A FD"),
]


@pytest.mark.parametrize("build,expected", WORKED, ids=[w[1][:23] for w in WORKED])
def test_worked_example_packets_byte_for_byte(build, expected):
    assert build() == h(expected)
    assert P.decode(h(expected)).encode() == h(expected)


def test_worked_example_acks_decode_with_signed_registers():
    ack = P.decode_ack(P.decode(h("FF FF 13 05 44 7E 80 3A 08 00 02 26 02 FD FF 78 00 00 42")))
    assert (ack.pid, ack.cmd, ack.addr) == (5, P.Cmd.RAM_READ, 58)
    assert ack.position(58) == 512 and ack.position(60) == 550
    assert ack.s16(62) == -3            # the original client decoded this as 1021
    assert ack.s16(64) == 120
    assert (ack.status_error, ack.status_detail) == (0, 0x42)
    assert ack.details() == ["in position", "motor on"] and ack.errors() == []
    assert P.encode_ack(5, P.Cmd.RAM_READ, 0, 0x42, 58, h("00 02 26 02 FD FF 78 00")) == \
        h("FF FF 13 05 44 7E 80 3A 08 00 02 26 02 FD FF 78 00 00 42")
    led = P.decode_ack(P.decode(h("FF FF 0C FD 44 C2 3C 35 01 01 00 42")))
    assert led.u8(53) == 1 and led.motor_on


def test_negative_pwm_and_high_position_bits():
    ack = P.Ack(1, P.Cmd.RAM_READ, 0x10, 0, addr=58,
                payload=bytes([0x1F, 0x62, 0x13, 0x03, 0x02, 0x80, 0x01, 0xFC]))
    assert ack.position(58) == 543      # MSB 0x62 as captured on real servos
    assert ack.s16(62) == -32766 and ack.s16(64) == -1023
    assert ack.errors() == ["overload"]
    with pytest.raises(P.ProtocolError, match="register 66 .* outside the read"):
        ack.u16(66)


def test_round_trip_every_command():
    reqs = {
        P.Cmd.EEP_WRITE: P.eep_write(7, 53, [0xD2]),
        P.Cmd.EEP_READ: P.eep_read(7, 0, 54),
        P.Cmd.RAM_WRITE: P.ram_write(7, 47, [46]),
        P.Cmd.RAM_READ: P.ram_read(7, 58, 8),
        P.Cmd.I_JOG: P.i_jog([P.Jog(i, 500 + i, playtime=5) for i in range(18)]),
        P.Cmd.S_JOG: P.s_jog(5, [P.Jog(i, 400 + i, led=2) for i in range(18)]),
        P.Cmd.STAT: P.stat(7),
        P.Cmd.ROLLBACK: P.rollback(7, True, False),
        P.Cmd.REBOOT: P.reboot(7),
    }
    for cmd, raw in reqs.items():
        pkt = P.decode(raw)
        assert pkt.cmd == cmd and not pkt.is_ack and pkt.encode() == raw
        ack_raw = P.encode_ack(7, cmd, 0x08, 0x44, *((58, b"\x01\x02") if cmd in (
            P.Cmd.RAM_READ, P.Cmd.EEP_READ) else ()))
        ack = P.decode_ack(P.decode(ack_raw))
        assert (ack.pid, ack.cmd, ack.status_error, ack.status_detail) == (7, cmd, 8, 0x44)
        assert len(ack_raw) == P.ack_size(cmd, 2 if ack.addr is not None else 0)
    assert len(reqs[P.Cmd.S_JOG]) == 80        # Kraby's 18-servo S_JOG
    jogs = P.parse_jog(P.decode(reqs[P.Cmd.S_JOG]))
    assert [j.value for j in jogs] == [400 + i for i in range(18)]
    assert all(j.playtime == 5 and j.led == 2 for j in jogs)
    turn = P.parse_jog(P.decode(P.i_jog([P.Jog(3, -700, turn=True, stop=True, playtime=9)])))
    assert turn == [P.Jog(3, -700, turn=True, stop=True, playtime=9)]
    assert P.decode(reqs[P.Cmd.ROLLBACK]).data == b"\x01\x00"


@pytest.mark.parametrize("call,match", [
    (lambda: P.ram_read(254 + 2, 58, 2), "servo ID must be an integer in 0..254"),
    (lambda: P.ram_read(1, 74, 1), "register address must be an integer in 0..73"),
    (lambda: P.ram_read(1, 70, 6), "read length must be an integer in 1..4"),
    (lambda: P.ram_write(1, 60, b""), "must carry 1..14 bytes, found 0"),
    (lambda: P.s_jog(5, [P.Jog(1, 1024)]), r"JOG goal position \[counts\] .* found 1024"),
    (lambda: P.s_jog(5, []), "at least one servo entry"),
    (lambda: P.s_jog(5, [P.Jog(i % 200, 500) for i in range(60)]), "at most 216"),
    (lambda: P.decode(h("FF FF 09 05 04 3A C5 3A 08")), "bad checksum from ID 5"),
    (lambda: P.decode(h("FF FF 0A 05 04 3A C4 3A 08")), "size byte says 10 bytes, found 9"),
    (lambda: P.decode_ack(P.decode(P.stat(1))), "expected an ACK"),
    (lambda: P.encode(1, 2, "text"), "packet data must be bytes"),
])
def test_errors_name_the_field_and_what_was_found(call, match):
    with pytest.raises(P.ProtocolError, match=match):
        call()


def test_unit_conversions_round_trip_and_use_the_joint_table():
    import numpy as np
    from kraby_rl.core import joints as J
    q = J.DEFAULT_POSE + 0.1
    c = U.rad_to_counts(q)
    assert np.all(np.abs(U.counts_to_rad(c) - q) <= U.COUNT_RAD / 2 + 1e-12)
    assert U.rad_to_counts(np.zeros(18)).tolist() == J.ZERO_COUNTS.tolist()
    assert U.diff_to_rad_s(np.full(18, -3))[0] == pytest.approx(-3 * 0.5077, rel=1e-3)
    with pytest.raises(ValueError, match="lm_femur must be finite, found nan"):
        U.rad_to_counts(np.where(np.arange(18) == 4, np.nan, 0.0))


# --- streaming parser ----------------------------------------------------------------------
packets = st.builds(
    lambda pid, cmd, data: P.encode(pid, cmd, data),
    st.integers(0, 0xFE), st.integers(0, 0xFF), st.binary(max_size=40))


def _chunks(data: bytes, cuts):
    cuts = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for c in cuts + [len(data)]:
        out.append(data[last:c])
        last = c
    return out


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=8))
def test_parser_never_raises_and_only_emits_valid_packets(stream, cuts):
    parser = P.StreamParser()
    items = []
    for chunk in _chunks(stream, cuts):
        items += parser.feed(chunk)
    items += parser.flush()
    consumed = 0
    for it in items:
        if isinstance(it, P.Packet):
            assert P.decode(it.encode()) == it
            consumed += it.size
        else:
            assert it.reason in ("garbage", "size", "checksum", "timeout")
            consumed += len(it.raw)
    assert consumed == len(stream) and parser.pending == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=30), packets), min_size=1, max_size=6),
       st.binary(max_size=30), st.lists(st.integers(0, 1000), max_size=10))
def test_parser_recovers_every_packet_embedded_in_garbage(parts, tail, cuts):
    for garbage, _ in parts:
        assume(b"\xff\xff" not in garbage)
    stream = b"".join(g + p for g, p in parts) + tail
    parser = P.StreamParser()
    got = []
    for chunk in _chunks(stream, cuts):
        got += [i for i in parser.feed(chunk) if isinstance(i, P.Packet)]
    got += [i for i in parser.flush() if isinstance(i, P.Packet)]
    want = [P.decode(p) for _, p in parts]
    # every embedded packet comes out, in order (the tail may add bogus-but-valid frames)
    assert got[:len(want)] == want


def test_parser_finds_a_packet_hidden_in_a_bogus_frame():
    good = P.ram_read(5, 58, 8)
    stream = h("FF FF 20 01 02") + good + bytes(40)   # the bogus frame claims 32 bytes
    parser = P.StreamParser()
    items = parser.feed(stream) + parser.flush()
    assert [i for i in items if isinstance(i, P.Packet)] == [P.decode(good)]
    assert parser.counts["checksum"] == 1
    # size bytes below 7 and above 223 are refused, then the good packet is found
    items = P.StreamParser().feed(h("FF FF 03 FF FF E0") + good)
    reasons = [i.reason for i in items if isinstance(i, P.BadFrame)]
    assert reasons.count("size") == 2 and "checksum" not in reasons
    assert items[-1] == P.decode(good)


def test_parser_rejects_non_bytes_with_its_own_error():
    with pytest.raises(P.ProtocolError, match="stream data must be bytes"):
        P.StreamParser().feed("FF FF")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decoders_raise_only_the_codec_error(raw):
    try:
        pkt = P.decode(raw)
    except P.ProtocolError:
        return
    try:
        ack = P.decode_ack(pkt)
        if ack.addr is not None and ack.payload:
            ack.u8(ack.addr)
        P.parse_jog(pkt)
    except P.ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, P.MAX_ID), st.integers(0, 1023)), min_size=1,
                max_size=18),
       st.integers(0, 255), st.integers(0, 7))
def test_s_jog_positions_gives_the_same_bytes_as_s_jog(pairs, playtime, led):
    ids = [i for i, _ in pairs]
    counts = [c for _, c in pairs]
    expected = P.s_jog(playtime, [P.Jog(i, c, led=led) for i, c in pairs])
    assert P.s_jog_positions(playtime, ids, counts, led=led) == expected
    assert P.s_jog_positions(playtime, np.array(ids), np.array(counts), led=led) == expected


@pytest.mark.parametrize("ids, counts, match", [
    ([], [], r"one goal per servo ID, found 0 goals for 0 IDs"),
    ([1, 2], [512], r"one goal per servo ID, found 1 goals for 2 IDs"),
    ([1], [1024], r"integers in 0\.\.1023, found \[1024\]"),
    ([1], [-1], r"integers in 0\.\.1023, found \[-1\]"),
    ([1], [512.5], r"integers in 0\.\.1023, found \[512\.5\]"),
    ([254], [512], r"IDs must be in 0\.\.253, found \[254\]"),
])
def test_s_jog_positions_refuses_bad_goals_naming_them(ids, counts, match):
    with pytest.raises(P.ProtocolError, match=match):
        P.s_jog_positions(10, ids, counts)
