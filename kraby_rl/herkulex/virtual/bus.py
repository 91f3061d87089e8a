"""18 simulated DRS-0101 on one half-duplex bus: framing, addressing, timing, faults.

``VirtualBus.receive(data, t)`` takes the bytes the host wrote at time ``t`` and returns
the replies with the times at which their last byte would have left the wire: the request
occupies the host's line for 10 bits per byte at the baud rate, each servo answers after a
response latency, and the reply occupies the servos' line in turn. Transports
(``transports.py``) deliver replies at those times. Checklist: section 10 of
docs/herkulex-drs0101.md.
"""

from __future__ import annotations

import random

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex.units import COUNT_RAD, TICK_S
from kraby_rl.herkulex.virtual.joints import FirstOrderJoints
from kraby_rl.herkulex.virtual.servo import VirtualServo

FAULTS = ("drop", "corrupt", "mute", "overload")
_READ_CMDS = (P.Cmd.RAM_READ, P.Cmd.EEP_READ, P.Cmd.STAT)


class VirtualBus:
    """The servos of one robot on one bus.

    Args:
        joints: joint physics (``FirstOrderJoints`` by default, or ``PyBulletJoints``).
        baudrate: bits per second; each byte takes 10 bits (8N1).
        latency_s: servo response latency, end of request to start of ACK [s].
        post_jog_s: time a servo needs after an S_JOG/I_JOG before it answers [s].
        timing: if False, replies are due at once (no wire time, no latency).
        boot_time_s: deaf time after REBOOT [s].
        seed: random seed for corrupted-byte positions.
    """

    def __init__(self, joints=None, baudrate: int = 500_000, latency_s: float = 100e-6,
                 post_jog_s: float = 0.0, timing: bool = True, boot_time_s: float = 0.05,
                 seed: int = 0):
        if baudrate <= 0:
            raise ValueError(f"baudrate must be > 0, found {baudrate!r}")
        if latency_s < 0 or post_jog_s < 0:
            raise ValueError(f"latency_s and post_jog_s must be >= 0, found {latency_s!r}, "
                             f"{post_jog_s!r}")
        self.joints = joints or FirstOrderJoints()
        self.byte_s = 10.0 / baudrate
        self.baudrate = baudrate
        self.latency_s = latency_s
        self.post_jog_s = post_jog_s
        self.timing = timing
        self.servos = [VirtualServo(j.servo_id, j.servo_id, mount=j.calibration,
                                    direction=j.direction, zero_counts=j.zero_counts,
                                    boot_time_s=boot_time_s) for j in J.JOINTS]
        for s, q in zip(self.servos, self.joints.q if hasattr(self.joints, "q")
                        else J.DEFAULT_POSE):
            s.joint_measured(float(q), 0.0, 0.0)
            s._boot(0.0)
        self.parser = P.StreamParser()
        self.t = 0.0
        self._in_free = 0.0
        self._out_free = 0.0
        self._busy_until = 0.0
        self._fed = 0
        self._consumed = 0
        self._last_rx = 0.0
        self._rng = random.Random(seed)
        self.drop = {}       # servo id or None (any) -> replies left to drop
        self.corrupt = {}    # servo id or None -> replies left to corrupt
        self.muted: set[int] = set()
        self.torque_log: list[tuple[float, int, int]] = []
        self.stats = {"requests": 0, "replies": 0, "bad_checksum": 0, "garbage_bytes": 0,
                      "collisions": 0, "dropped": 0, "corrupted": 0, "bytes_in": 0,
                      "bytes_out": 0}

    # --- time ------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        """Run the joints and the servos' error checks up to time ``t`` [s], in whole steps
        of the joint model (a read carries the last step's angle forward to its time:
        ``VirtualServo.position_at``)."""
        step = self.joints.step_s
        while self.t + step <= t + 1e-12:
            tc = self.t + step
            # the setpoint at the step's start drives the step, as in KrabyWorld.substep
            # (the end's ran every servo a physics step ahead of its trajectory)
            cmds = [s.joint_command(self.t) for s in self.servos]
            mode = np.array([c[0] for c in cmds])
            sp = np.array([c[1] for c in cmds])
            sv = np.array([c[2] for c in cmds])
            blocked = np.array([s.blocked for s in self.servos])
            q, w, duty = self.joints.step(step, mode, sp, sv, blocked)
            for i, s in enumerate(self.servos):
                s.joint_measured(float(q[i]), float(w[i]), float(duty[i]), tc)
                s.update(tc, step)
            self.t = tc
            if t - self.t > 1.0:     # far behind (process paused): skip, do not replay
                self.t = t - step

    def check_garbage(self, t: float) -> list[tuple[float, bytes]]:
        """Drop a partial frame older than the packet garbage check period (RAM 40);
        returns the replies to any whole packet found behind it."""
        if not self.parser.pending or t - self._last_rx <= self.servos[0].ram[40] * TICK_S:
            return []
        for s in self.servos:
            s.note_invalid_packet(P.SD_GARBAGE, t)
        return self._process(self.parser.expire(), t, self._fed)

    # --- wire --------------------------------------------------------------------------
    def receive(self, data: bytes, t_rx: float) -> list[tuple[float, bytes]]:
        """Bytes written by the host at ``t_rx`` -> [(time due, reply bytes)]."""
        self.stats["bytes_in"] += len(data)
        start = max(self._in_free, t_rx) if self.timing else t_rx
        fed_before = self._fed
        self._fed += len(data)
        self._in_free = start + len(data) * self.byte_s if self.timing else t_rx
        self._last_rx = t_rx
        return self._process(self.parser.feed(data), start, fed_before)

    def _process(self, items, start: float, fed_before: int) -> list[tuple[float, bytes]]:
        replies = []
        for item in items:
            raw_len = item.size if isinstance(item, P.Packet) else len(item.raw)
            self._consumed += raw_len
            done = start + max(0, self._consumed - fed_before) * self.byte_s \
                if self.timing else start
            if isinstance(item, P.BadFrame):
                self._bad_frame(item, done)
                continue
            # A read is answered from the physics the serve loop ran between requests, not
            # redone in the reply path (its angle carried forward to the read's time at the
            # step's speed); anything else acts at its exact time.
            self.advance(done - self.joints.step_s if item.cmd in _READ_CMDS else done)
            reply = self._dispatch(item, done)
            if reply is not None:
                replies.append(self._schedule(reply, done))
        self._consumed = self._fed - self.parser.pending
        return replies

    def _bad_frame(self, item: P.BadFrame, t: float) -> None:
        if item.reason == "checksum":
            self.stats["bad_checksum"] += 1
            for s in self.servos:
                if s.id == item.pid and s.id not in self.muted:
                    s.note_invalid_packet(P.SD_CHECKSUM, t)
        else:
            self.stats["garbage_bytes"] += len(item.raw)

    def _schedule(self, reply: bytes, done: float) -> tuple[float, bytes]:
        if not self.timing:
            return done, reply
        begin = max(done, self._busy_until) + self.latency_s
        begin = max(begin, self._out_free)
        due = begin + len(reply) * self.byte_s
        self._out_free = due
        self.stats["bytes_out"] += len(reply)
        return due, reply

    def _dispatch(self, pkt: P.Packet, t: float) -> bytes | None:
        self.stats["requests"] += 1
        if pkt.cmd == P.Cmd.RAM_WRITE and pkt.data[:1] == bytes([P.Ram.TORQUE_CONTROL]) \
                and len(pkt.data) >= 3:
            # When each torque write arrived (bus clock), for the e-stop benchmark.
            self.torque_log.append((t, pkt.pid, pkt.data[2]))
            del self.torque_log[:-50]
        if pkt.pid == P.BROADCAST_ID:
            targets = [s for s in self.servos if s.id not in self.muted]
        else:
            targets = [s for s in self.servos if s.id == pkt.pid and s.id not in self.muted]
        if pkt.cmd in (P.Cmd.I_JOG, P.Cmd.S_JOG) and self.post_jog_s:
            self._busy_until = t + self.post_jog_s
        replies = []
        for s in targets:
            r = s.handle(pkt, t)
            if r is not None:
                r = self._apply_reply_faults(s.id, r)
                if r is not None:
                    replies.append(r)
        if not replies:
            return None
        self.stats["replies"] += 1
        if len(replies) == 1:
            return replies[0]
        # Several servos talking at once (broadcast STAT): the line carries the AND of
        # their bits (idle high), which the host sees as a corrupt frame.
        self.stats["collisions"] += 1
        n = max(len(r) for r in replies)
        out = bytearray(b"\xff" * n)
        for r in replies:
            for i, b in enumerate(r):
                out[i] &= b
        return bytes(out)

    def _take(self, table: dict, sid: int) -> bool:
        for key in (sid, None):
            left = table.get(key, 0)
            if left:
                table[key] = left - 1
                return True
        return False

    def _apply_reply_faults(self, sid: int, reply: bytes) -> bytes | None:
        if self._take(self.drop, sid):
            self.stats["dropped"] += 1
            return None
        if self._take(self.corrupt, sid):
            self.stats["corrupted"] += 1
            # The Herkulex checksums ignore bit 0 of every byte (both are masked with 0xFE),
            # so a flipped bit 0 in a data byte goes unnoticed on a real bus too. Injected
            # corruption flips one of bits 1..7, which the protocol can detect.
            b = bytearray(reply)
            i = self._rng.randrange(len(b))
            b[i] ^= 1 << self._rng.randrange(1, 8)
            return bytes(b)
        return reply

    # --- fault injection ---------------------------------------------------------------
    def inject(self, fault: str, servo_id: int | None = None, count: int = 1,
               on: bool = True) -> None:
        """Inject a fault.

        Args:
            fault: ``drop`` (the next ``count`` replies vanish), ``corrupt`` (one bit of
                each of the next ``count`` replies flips), ``mute`` (the servo neither
                acts nor answers while ``on``), ``overload`` (the joint is held by an
                external load while ``on``).
            servo_id: the servo, or None for "any servo" (drop, corrupt).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}: expected one of {', '.join(FAULTS)}")
        if fault in ("mute", "overload") and servo_id is None:
            raise ValueError(f"fault {fault!r} needs a servo_id")
        if fault == "drop":
            self.drop[servo_id] = self.drop.get(servo_id, 0) + int(count)
        elif fault == "corrupt":
            self.corrupt[servo_id] = self.corrupt.get(servo_id, 0) + int(count)
        elif fault == "mute":
            (self.muted.add if on else self.muted.discard)(servo_id)
        else:
            for s in self.servos:
                if s.id == servo_id:
                    s.blocked = bool(on)

    def snapshot(self) -> dict:
        """Ground truth for tests and tools: joint angles [rad], torque modes, errors."""
        return {
            "t": self.t,
            "q": [float((s.abs_pos - s.zero_counts - s.mount) * s.direction * COUNT_RAD)
                  for s in self.servos],
            "ids": [s.id for s in self.servos],
            "torque": [int(s.torque) for s in self.servos],
            "status_error": [int(s.ram[P.Ram.STATUS_ERROR]) for s in self.servos],
            "calibration": [s.calibration for s in self.servos],
            "stats": dict(self.stats),
            "torque_log": [list(e) for e in self.torque_log],
            **(self.joints.body() if hasattr(self.joints, "body") else {}),
        }
