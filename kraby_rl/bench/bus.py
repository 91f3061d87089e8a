"""Full control cycle on the Herkulex bus: one S_JOG plus position and velocity of 18 servos.

Runs the virtual bus (``kraby fake-bus``) in its own process on a pty (or TCP) at the given
baud and response latency, and times two clients side by side on the same port, in
alternating blocks so both see the same machine:

- ``driver``: ``HerkulexBus.jog`` + ``read_state``, what the servo driver node runs;
- ``reference``: the least a client can do for the same bytes (one write, one poll and one
  read per servo, no checks), the yardstick for the driver's own cost.

The wire-time floor is computed from the bytes actually exchanged (10 bits per byte);
ratio = mean cycle / floor. CPU is the timing thread's own (``time.thread_time``, user and
system). The timing thread gets the priority the servo driver's bus thread gets.
"""

from __future__ import annotations

import os
import time

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.herkulex import protocol as P
from kraby_rl.herkulex import units as U
from kraby_rl.herkulex.driver import HerkulexBus
from kraby_rl.herkulex.virtual.fake_bus import FakeBusProcess

BLOCKS = 5


def _reference_cycle(bus: HerkulexBus, jog: bytes, requests, size: int) -> None:
    """One cycle with bare system calls on the driver's descriptor."""
    fd, sock, poll = bus._fdn, bus._sock, bus._poll
    write = sock.send if sock is not None else (lambda b: os.write(fd, b))
    read = sock.recv if sock is not None else (lambda n: os.read(fd, n))
    write(jog)
    for req in requests:
        write(req)
        got = 0
        while got < size and poll.poll(20):
            got += len(read(size - got))


def run(cycles: int = 500, baudrate: int = 500_000, latency_us: float = 100.0,
        transport: str = "pty") -> dict:
    from kraby_rl.core.realtime import take_priority
    args = ["--baud", str(baudrate), "--latency-us", str(latency_us)]
    args += ["--tcp", "--port", "0"] if transport == "tcp" else ["--pty"]
    priority = take_priority(40)
    with FakeBusProcess(args) as fb:
        bus = HerkulexBus(fb.url, baudrate=baudrate)
        try:
            if bus._poll is None:
                raise RuntimeError(f"{fb.url}: the bus benchmark needs a port with a file "
                                   f"descriptor (pty or TCP)")
            bus.write_calibration()
            bus.set_torque("on")
            gait = J.DEFAULT_POSE + 0.1 * np.sin(np.arange(J.NUM_JOINTS))
            for _ in range(50):                       # warm-up, not counted
                bus.jog(gait)
                bus.read_state()
            requests = [P.ram_read(i, P.Ram.CALIBRATED_POSITION, 6) for i in bus.ids]
            jog_packet = P.s_jog_positions(bus.playtime_ticks, bus.ids,
                                           U.rad_to_counts(J.DEFAULT_POSE), led=bus.led)
            per_block = max(1, cycles // BLOCKS)
            times = {"driver": [], "reference": []}
            cpu = {"driver": [], "reference": []}
            invalid = 0
            nbytes = 0.0
            k = 0
            for _ in range(BLOCKS):
                b0 = bus.stats["bytes_out"] + bus.stats["bytes_in"]
                for _ in range(per_block):
                    q = J.DEFAULT_POSE + 0.1 * np.sin(np.arange(J.NUM_JOINTS) + 0.05 * k)
                    k += 1
                    t0, c0 = time.perf_counter(), time.thread_time()
                    bus.jog(q)
                    st = bus.read_state()
                    times["driver"].append(time.perf_counter() - t0)
                    cpu["driver"].append(time.thread_time() - c0)
                    invalid += int((~st.valid).sum())
                nbytes += bus.stats["bytes_out"] + bus.stats["bytes_in"] - b0
                for _ in range(per_block):
                    t0, c0 = time.perf_counter(), time.thread_time()
                    _reference_cycle(bus, jog_packet, requests, 17)
                    times["reference"].append(time.perf_counter() - t0)
                    cpu["reference"].append(time.thread_time() - c0)
                time.sleep(0.05)     # let late bytes of the reference land, then drop them
                bus._dirty = True
            nbytes /= per_block * BLOCKS
            report = bus.health_report()
        finally:
            bus.close()
    floor = nbytes * 10.0 / baudrate
    t = {k: np.asarray(v) for k, v in times.items()}
    c = {k: np.asarray(v) for k, v in cpu.items()}
    mean = float(t["driver"].mean())
    errors = {k: sum(s[k] for s in report["servos"].values())
              for k in ("timeouts", "checksum_errors", "bad_replies", "retries")}
    return {
        "bench": "bus", "transport": transport, "baudrate": baudrate,
        "latency_us": latency_us, "cycles": per_block * BLOCKS, "priority": priority,
        "bytes_per_cycle": nbytes,
        "mean_ms": round(mean * 1e3, 3),
        "p50_ms": round(float(np.percentile(t["driver"], 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(t["driver"], 99)) * 1e3, 3),
        "max_ms": round(float(t["driver"].max()) * 1e3, 3),
        "floor_ms": round(floor * 1e3, 3),
        "floor_plus_latency_ms": round((floor + J.NUM_JOINTS * latency_us * 1e-6) * 1e3, 3),
        "ratio": round(mean / floor, 3),
        "fits_50hz": bool(np.percentile(t["driver"], 99) < 0.020),
        "driver_cpu_ms_per_cycle": round(float(c["driver"].mean()) * 1e3, 3),
        "reference_mean_ms": round(float(t["reference"].mean()) * 1e3, 3),
        "reference_ratio": round(float(t["reference"].mean()) / floor, 3),
        "reference_cpu_ms_per_cycle": round(float(c["reference"].mean()) * 1e3, 3),
        "driver_vs_reference_time": round(mean / float(t["reference"].mean()), 3),
        "driver_vs_reference_cpu": round(float(c["driver"].mean())
                                         / float(c["reference"].mean()), 3),
        "invalid_reads": invalid, **errors,
    }
