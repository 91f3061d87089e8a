"""Full control cycle on the Herkulex bus: one S_JOG plus position and velocity of 18 servos.

Runs the virtual bus (``kraby fake-bus``) in its own process on a pty at the given baud and
response latency, drives it with ``HerkulexBus`` and times each cycle. The wire-time floor
is computed from the bytes actually exchanged (10 bits per byte); ratio = mean / floor.
"""

from __future__ import annotations

import time

import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.herkulex.driver import HerkulexBus
from kraby_rl.herkulex.fake_bus import FakeBusProcess


def run(cycles: int = 500, baudrate: int = 500_000, latency_us: float = 100.0,
        transport: str = "pty") -> dict:
    args = ["--baud", str(baudrate), "--latency-us", str(latency_us)]
    args += ["--tcp", "--port", "0"] if transport == "tcp" else ["--pty"]
    with FakeBusProcess(args) as fb:
        bus = HerkulexBus(fb.url, baudrate=baudrate)
        try:
            bus.write_calibration()
            bus.set_torque("on")
            gait = J.DEFAULT_POSE + 0.1 * np.sin(np.arange(J.NUM_JOINTS))
            for _ in range(50):                       # warm-up, not counted
                bus.jog(gait)
                bus.read_state()
            b0 = bus.stats["bytes_out"] + bus.stats["bytes_in"]
            times = np.empty(cycles)
            cpu = np.empty(cycles)
            invalid = 0
            for k in range(cycles):
                q = J.DEFAULT_POSE + 0.1 * np.sin(np.arange(J.NUM_JOINTS) + 0.05 * k)
                t0, c0 = time.perf_counter(), time.thread_time()
                bus.jog(q)
                st = bus.read_state()
                times[k] = time.perf_counter() - t0
                cpu[k] = time.thread_time() - c0
                invalid += int((~st.valid).sum())
            nbytes = (bus.stats["bytes_out"] + bus.stats["bytes_in"] - b0) / cycles
            report = bus.health_report()
        finally:
            bus.close()
    floor = nbytes * 10.0 / baudrate
    mean = float(times.mean())
    errors = {k: sum(s[k] for s in report["servos"].values())
              for k in ("timeouts", "checksum_errors", "bad_replies", "retries")}
    return {
        "bench": "bus", "transport": transport, "baudrate": baudrate,
        "latency_us": latency_us, "cycles": cycles,
        "bytes_per_cycle": nbytes,
        "mean_ms": round(mean * 1e3, 3),
        "p50_ms": round(float(np.percentile(times, 50)) * 1e3, 3),
        "p99_ms": round(float(np.percentile(times, 99)) * 1e3, 3),
        "max_ms": round(float(times.max()) * 1e3, 3),
        "floor_ms": round(floor * 1e3, 3),
        "floor_plus_latency_ms": round((floor + J.NUM_JOINTS * latency_us * 1e-6) * 1e3, 3),
        "ratio": round(mean / floor, 3),
        "fits_50hz": bool(np.percentile(times, 99) < 0.020),
        "driver_cpu_ms_per_cycle": round(float(cpu.mean()) * 1e3, 3),
        "invalid_reads": invalid, **errors,
    }
