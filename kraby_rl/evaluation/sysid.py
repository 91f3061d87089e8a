"""``kraby sysid BAG``: fit the simulator's servo and world parameters to a recording.

The recorded joint commands (``/joint_commands``, what the shield sent to the robot) are
replayed open loop in the PyBullet world (``sim.world.KrabyWorld``) at the recording's
control rate, and the parameters are chosen to minimise the RMS error between the simulated
and the recorded joint angles (``/joint_states``):

- ``latency_steps`` (command latency, whole control periods) by trying each value 0..3;
- the continuous ones (``servo_strength`` and ``servo_speed``: stall torque and no-load
  speed x nominal; ``friction``: the foot friction coefficient) by SciPy's bounded
  Nelder-Mead from their nominal values;
- for a recording of the robot (wall clock), the best latency is refined with one more:
  ``jog_delay_ms``, how long after the driver wrote an S_JOG (beyond its wire time) the
  servos acted on it. The link (USB adapter, ser2net, a pty's kernel worker) and the servo's
  firmware add it and no host measurement times it; through the virtual bus it was 0.8 ms
  (median; p90 2 ms) of pty, and left out it was fitted as a 5 % slower servo and 5 % less
  friction. It is reported; the overlay has no place for it (the env delays commands by
  whole control periods).

Which command a tick applied is rebuilt from the header stamps (the recorder's receive
times are no use for this: a busy recorder takes several messages at once): the last
command stamped at least half a control period before the joint state of that tick (the
stack answers a joint state within a few milliseconds, and the tick that follows applies
it), and none (servos braked, as sim_node and the robot hold until their first command)
before the first. A recording of the sim stack is stamped in simulated time: when it
starts after t = 0 (the recorder came up late), the replay first holds the robot braked
for the ticks before, as sim_node did. The
result is an overlay for the training and evaluation configs (``env: randomize:`` ranges of
zero width at the fitted values, plus ``latency_steps``) and a per-joint report of the RMS
error before (nominal parameters) and after.

Foot friction is exposed, but joint angles only feel it when feet slip: on a gait that
does not slip it is not identifiable, and the report says how much the cost moves over its
range.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import yaml

from kraby_rl.core import joints as J
from kraby_rl.herkulex import protocol as P

NOMINAL = {"servo_strength": 1.0, "servo_speed": 1.0, "friction": 0.8, "latency_steps": 0,
           "jog_delay_ms": 0.0}
BOUNDS = {"servo_strength": (0.3, 2.0), "servo_speed": (0.3, 2.0), "friction": (0.2, 1.5),
          "jog_delay_ms": (0.0, 10.0)}
JOG_DELAY_START_MS = (1.0, 2.0)
"""Where the refinement of a wall-clock recording starts ``jog_delay_ms``, and its simplex's
other vertex [ms]."""
CONTINUOUS = ("servo_strength", "servo_speed", "friction")
MAX_LATENCY = 3


def load(path: str, command_timeout_s: float = 0.2) -> dict:
    """{'q': (T, 18) recorded angles, 'cmd': [(18,) or None] per tick, 'dt': period [s]}.

    Raises:
        ValueError: naming the bag and what it lacks.
    """
    from pathlib import Path
    from rosbags.highlevel import AnyReader
    from kraby_rl.evaluation.from_bag import _ordered
    states, cmds, jogs = [], [], []
    with AnyReader([Path(path)]) as reader:
        topics = {c.topic for c in reader.connections}
        for need in ("/joint_states", "/joint_commands"):
            if need not in topics:
                raise ValueError(f"bag {path!r}: expected a {need} topic, found {sorted(topics)}")
        conns = [c for c in reader.connections
                 if c.topic in ("/joint_states", "/joint_commands", "/servo/jog")]
        for conn, stamp, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            q = _ordered(msg, f"bag {path!r}: {conn.topic}")[0]
            st = msg.header.stamp
            t = st.sec + st.nanosec * 1e-9
            {"/joint_states": states, "/joint_commands": cmds,
             "/servo/jog": jogs}[conn.topic].append((t, q))
        ages = _driver_reading_ages(reader, path)
    if len(states) < 50 or not cmds:
        raise ValueError(f"bag {path!r}: expected >= 50 joint_states and some joint_commands, "
                         f"found {len(states)} and {len(cmds)}")
    for stream in (states, cmds, jogs):
        stream.sort(key=lambda s: s[0])
    t0 = states[0][0]
    q = np.array([s[1] for s in states])
    if t0 >= 3600.0:
        return _wall_clock(path, states, cmds, q, command_timeout_s, jogs, ages)
    dt = float(np.median(np.diff([s[0] for s in states])))
    out, k, last = [], 0, None
    for stamp, _q in states:
        while k < len(cmds) and cmds[k][0] <= stamp - 0.5 * dt:
            last = cmds[k]
            k += 1
        fresh = last is not None and stamp - last[0] < command_timeout_s + dt
        out.append(last[1] if fresh else None)
    # simulated time (a sim-stack recording): the ticks before the first recorded one
    preroll = int(round(t0 / dt)) - 1
    return {"q": q, "cmd": out, "dt": dt, "t0": t0, "preroll": max(0, preroll),
            "clock": "sim"}


def _driver_reading_ages(reader, path) -> list[np.ndarray]:
    """The servo driver's ``reading_age_ms`` reports in the bag's /diagnostics: per report,
    (18,) how much older than the joint_states stamp each servo's reading was [s]."""
    conns = [c for c in reader.connections if c.topic == "/diagnostics"]
    out = []
    for conn, _t, raw in reader.messages(connections=conns):
        for st in reader.deserialize(raw, conn.msgtype).status:
            value = {kv.key: kv.value for kv in st.values}.get("reading_age_ms")
            if st.name != "kraby_rl: servo_driver" or value is None:
                continue
            try:
                ages = np.array([float(v) for v in value.split()]) * 1e-3
            except ValueError:
                ages = np.array([])
            if ages.shape != (J.NUM_JOINTS,) or not np.all(np.isfinite(ages)):
                raise ValueError(f"bag {path!r}: servo_driver diagnostics reading_age_ms: "
                                 f"expected {J.NUM_JOINTS} numbers [ms], found {value!r}")
            out.append(ages)
    return out


def _wall_clock(path, states, cmds, q, command_timeout_s, jogs, ages=()):
    """A recording of the robot (the servo driver stamps joint_states with the time it
    read them: the real robot or the virtual bus); servo k's reading is older than the stamp
    by the age of the middle of its transaction, which the driver measures and reports in
    its diagnostics (``reading_age_ms``; the median over the reports), plus
    ``SAMPLED_AFTER_MIDDLE_S``. Taking the middle assumes the link delays the request as
    much as the answer (NTP's assumption): the answer's age alone left the answer's own delay
    through a loaded host's pty unmodelled and moved the fitted friction by 24 %.
    Without those reports, the ages are modelled from the wire time (``READ_LAG_S``), which
    a real host exceeds: 0.62 ms per servo modelled, 0.8-1.0 measured on a 2-core host, and
    the fit took the 3 ms that servo 0's reading was older for slower servos and 10 % less
    friction. What the servos were sent, and when, is the driver's ``servo/jog`` (stamped as
    the packet left; the servos act once it has arrived, ``JOG_WIRE_S`` later). A bag
    without it (another driver) gets the commands rebuilt from the driver's cycle: it reads
    the servos, publishes, then sends the newest joint command it holds, so a cycle applies
    the last one stamped before its joint_states, at that stamp; ambiguous when the shield's
    commands are stamped within a millisecond or two of the joint states. Before its first
    command the driver holds the servos braked where they lay (the robot powers up
    torque-free and collapses onto its belly before the driver starts)."""
    t0 = states[0][0]
    times = np.array([s[0] for s in states]) - t0
    period = float(np.median(np.diff(times)))
    if not 0.002 <= period <= 0.2:
        raise ValueError(f"bag {path!r}: expected joint_states at 5-500 Hz, found a median "
                         f"period of {period:.4f} s")
    events = [(float(t - t0 + JOG_WIRE_S), g) for t, g in jogs if t >= t0]
    source = "/servo/jog"
    if not events:
        source = "/joint_commands (rebuilt: no /servo/jog)"
        k, last = 0, None
        for (stamp, _q), t in zip(states, times):
            while k < len(cmds) and cmds[k][0] <= stamp:
                last = cmds[k]
                k += 1
            if last is not None and stamp - last[0] < command_timeout_s:
                events.append((float(t), last[1]))
    if not events:
        raise ValueError(f"bag {path!r}: no joint_commands were fresh at any joint_states "
                         f"(expected the robot to be commanded while recorded)")
    if len(ages):
        age = np.median(np.array(ages), axis=0)
        if np.any(age < 0) or np.any(age > period):
            raise ValueError(f"bag {path!r}: servo_driver diagnostics reading_age_ms: expected "
                             f"ages from 0 to the {1e3 * period:.1f} ms period, found medians "
                             f"{np.round(age * 1e3, 3).tolist()} ms")
        lag = age - SAMPLED_AFTER_MIDDLE_S
        timing = (f"readings {1e3 * age[0]:.2f} ms (servo 0) to {1e3 * age[-1]:.2f} ms "
                  f"(last) before the stamp (servo_driver diagnostics)")
    else:
        lag = READ_LAG_S
        timing = (f"{1e3 * READ_LAG_S[-1] * 2:.3f} ms per servo (modelled: no servo_driver "
                  f"reading_age_ms diagnostics in the bag)")
    return {"q": q, "times": times, "events": events, "dt": period, "t0": t0,
            "clock": "wall", "commands": source, "read_lag_s": lag, "read_timing": timing}


_BYTE_S = 10 / 500_000
"""One byte on the Herkulex bus at 500 kbaud [s] (the bag does not say the baud rate)."""

JOG_WIRE_S = len(P.s_jog_positions(1, range(J.NUM_JOINTS), [512] * J.NUM_JOINTS)) * _BYTE_S
"""Wire time of the driver's S_JOG of 18 goals [s]."""

READ_LAG_S = (J.NUM_JOINTS - np.arange(J.NUM_JOINTS) - 0.5) * (
    (len(P.ram_read(0, P.Ram.CALIBRATED_POSITION, 6)) + 11 + 6) * _BYTE_S + 100e-6)
"""How much older than the joint_states stamp servo k's reading is [s], modelled where the
bag has no driver timing: the driver reads the 18 servos in order, one RAM read each
(request out, 11 + 6 bytes back, 0.1 ms servo latency), and publishes after the last."""

SAMPLED_AFTER_MIDDLE_S = 0.5 * (len(P.ram_read(0, P.Ram.CALIBRATED_POSITION, 6)) * _BYTE_S
                                - (11 + 6) * _BYTE_S - 100e-6)
"""When a servo samples what it answers, after the middle of the transaction [s]: once the
request is in (its bytes on the wire), before its response latency (0.1 ms) and the answer's
11 + 6 bytes; negative (before the middle) at these sizes."""

FREE_S = 2.0
"""Wall-clock replay: simulated time the torque-free robot lies before the recording [s]."""


def simulate(rec: dict, params: dict) -> np.ndarray:
    """(T, 18) joint angles of the world replaying the recorded commands with ``params``."""
    if rec.get("clock") == "wall":
        return _simulate_wall(rec, params)
    from kraby_rl.envs.hexapod_env import physics_substeps
    from kraby_rl.sim.world import KrabyWorld
    physics_dt = 0.004
    world = KrabyWorld(physics_dt, physics_substeps(rec["dt"], physics_dt),
                       latency_steps=int(params["latency_steps"]),
                       friction=float(params["friction"]))
    try:
        s = world.reset()
        servo = world.servo
        servo.strength[:] = params["servo_strength"]
        servo.speed[:] = params["servo_speed"]
        servo.reset(s.q, world.t)           # braked until the first command
        for _ in range(rec.get("preroll", 0)):
            world.step()
        out = []
        for cmd in rec["cmd"]:
            if cmd is not None:
                servo.enabled[:] = True
                world.command(cmd)
            world.step()
            out.append(world.state().q)
        return np.array(out)
    finally:
        world.close()


def _simulate_wall(rec: dict, params: dict) -> np.ndarray:
    """The wall-clock replay (``_wall_clock``), by physics step."""
    from kraby_rl.sim.world import KrabyWorld
    physics_dt = 0.004
    world = KrabyWorld(physics_dt, 5, friction=float(params["friction"]))
    try:
        world.reset()
        servo = world.servo
        servo.strength[:] = params["servo_strength"]
        servo.speed[:] = params["servo_speed"]
        servo.enabled[:] = False            # powered up torque-free: it lies down
        for _ in range(int(round(FREE_S / physics_dt))):
            world.substep()
        origin = world.t
        servo.reset(world.joint_states()[0], world.t)    # braked where it lies
        servo.enabled[:] = True
        delay = int(params["latency_steps"]) * rec["dt"] + 1e-3 * params.get("jog_delay_ms", 0.0)
        events = [(t + delay + origin, cmd) for t, cmd in rec["events"]]
        sample_t = rec["times"][:, None] - rec["read_lag_s"][None, :] + origin
        out = np.full(rec["q"].shape, np.nan)
        end = float(sample_t.max()) + physics_dt
        e, prev_q, prev_t = 0, world.joint_states()[0], world.t
        order = np.argsort(sample_t, axis=None)
        flat = sample_t.ravel()
        i = 0
        while world.t < end:
            # a servo starts its move when the packet arrived, between physics steps; the
            # steps sample its trajectory (as the virtual bus's do)
            while e < len(events) and events[e][0] <= world.t + 1e-9:
                servo.set_goal(events[e][1], max(events[e][0], world.t - physics_dt))
                e += 1
            world.substep()
            q = world.joint_states()[0]
            # linear between physics steps, for the readings that fall in this step
            while i < len(order) and flat[order[i]] <= world.t:
                row, col = divmod(int(order[i]), J.NUM_JOINTS)
                a = (flat[order[i]] - prev_t) / physics_dt
                out[row, col] = prev_q[col] + max(0.0, a) * (q[col] - prev_q[col])
                i += 1
            prev_q, prev_t = q, world.t
        return out
    finally:
        world.close()


def rms_per_joint(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """RMS over time per joint; readings the driver lost (NaN) are left out."""
    return np.sqrt(np.nanmean((a - b) ** 2, axis=0))


def cost(rec, params) -> float:
    return float(np.sqrt(np.nanmean((simulate(rec, params) - rec["q"]) ** 2)))


def fit(rec: dict, free=CONTINUOUS, latencies=range(MAX_LATENCY + 1), maxfev=40,
        refine=120, log=print) -> dict:
    """Best parameters (and cost): each latency with ``maxfev`` replays of Nelder-Mead from
    the nominal values, then the best one refined with up to ``refine`` more from there."""
    from scipy.optimize import minimize

    def search(base, names, x0, budget, simplex):
        def f(x):
            return cost(rec, {**base, **dict(zip(names, x))})
        res = minimize(f, x0, method="Nelder-Mead", bounds=[BOUNDS[k] for k in names],
                       options={"maxfev": budget, "xatol": 1e-3, "fatol": 1e-6,
                                "initial_simplex": simplex})
        return {**base, **dict(zip(names, (float(v) for v in res.x)))}, float(res.fun), res.nfev

    def say(what, params, rms, n, names=free):
        log(f"sysid: {what}: rms {rms * 1e3:.3f} mrad at "
            + ", ".join(f"{k} {params[k]:.3f}" for k in names) + f" ({n} replays)")

    best = None
    for lat in latencies:
        x0 = [NOMINAL[k] for k in free]
        params, rms, n = search({**NOMINAL, "latency_steps": lat}, free, x0, maxfev,
                                _simplex(x0, 0.8))
        say(f"latency {lat} step(s)", params, rms, n)
        if best is None or rms < best[1]:
            best = (params, rms)
    if refine and free:
        # a wall-clock recording also fits when the servos act after the driver's write
        # (beyond the wire time): nothing on the host can time that, and a millisecond of
        # it left out was fitted as a 5 % slower servo and 5 % less friction
        names = tuple(free) + (("jog_delay_ms",) if rec.get("clock") == "wall" else ())
        x0 = [best[0][k] for k in free]
        simplex = _simplex(x0, 0.95)
        if len(names) > len(free):
            start, other = JOG_DELAY_START_MS
            column = np.full((len(simplex), 1), start)
            simplex = np.vstack([np.hstack([simplex, column]), [x0 + [other]]])
            x0 = x0 + [start]
        params, rms, n = search({**NOMINAL, "latency_steps": best[0]["latency_steps"]},
                                names, x0, refine, simplex)
        say(f"refined at latency {params['latency_steps']}", params, rms, n, names)
        if rms < best[1]:
            best = (params, rms)
    return {"params": best[0], "rms": best[1]}


def _simplex(x0, scale=0.8):
    pts = [list(x0)]
    for i in range(len(x0)):
        p = list(x0)
        p[i] *= scale
        pts.append(p)
    return np.array(pts)


def overlay(params: dict) -> dict:
    """What the training and evaluation configs accept: HexapodEnv keys."""
    return {"env": {"randomize": {
        "servo_strength": [round(params["servo_strength"], 4)] * 2,
        "servo_speed": [round(params["servo_speed"], 4)] * 2,
        "friction": [round(params["friction"], 4)] * 2,
        "latency_steps": [int(params["latency_steps"])] * 2}}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="kraby sysid", description=__doc__.splitlines()[0])
    p.add_argument("bag")
    p.add_argument("--fit", default="servo_strength,servo_speed,friction",
                   help="continuous parameters to fit, comma-separated (default %(default)s)")
    p.add_argument("--out", help="write the overlay YAML here")
    p.add_argument("--maxfev", type=int, default=40, help="replays per latency value")
    p.add_argument("--refine", type=int, default=120,
                   help="replays refining the best latency's fit (0 = none)")
    args = p.parse_args(argv)
    free = tuple(k for k in args.fit.split(",") if k)
    bad = [k for k in free if k not in CONTINUOUS]
    if bad:
        print(f"kraby sysid: --fit {bad}: expected names from {list(CONTINUOUS)}",
              file=sys.stderr)
        return 2
    try:
        rec = load(args.bag)
    except (OSError, ValueError) as exc:
        print(f"kraby sysid: {exc}", file=sys.stderr)
        return 2
    if "read_timing" in rec:
        print(f"sysid: servo readings timed at {rec['read_timing']}", file=sys.stderr)
    t0 = time.monotonic()
    before = rms_per_joint(simulate(rec, NOMINAL), rec["q"])
    result = fit(rec, free, maxfev=args.maxfev, refine=args.refine,
                 log=lambda m: print(m, file=sys.stderr, flush=True))
    after = rms_per_joint(simulate(rec, result["params"]), rec["q"])
    wall = time.monotonic() - t0
    print(f"{'joint':12s} {'rms before':>12s} {'rms after':>12s}  [mrad]", file=sys.stderr)
    for name, b, a in zip(J.JOINT_NAMES, before, after):
        print(f"{name:12s} {b * 1e3:12.2f} {a * 1e3:12.2f}", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as fh:
            yaml.safe_dump(overlay(result["params"]), fh, sort_keys=False)
    print(json.dumps({"bag": args.bag, "params": result["params"],
                      "rms_before": float(math.sqrt(np.mean(before ** 2))),
                      "rms_after": result["rms"], "wall_s": round(wall, 1),
                      "ticks": len(rec["q"]), "clock": rec["clock"],
                      "commands": rec.get("commands", "/joint_commands"),
                      **({"read_timing": rec["read_timing"]} if "read_timing" in rec else {})}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
