"""``python -m kraby_rl.evaluation.robustness [POLICY]``: the robustness gate.

For each scenario (terrain, servo faults, payload, low friction, pushes; see ``SCENARIOS``)
and each of its commands, POLICY (default: the shipped ``walk``) and the gait generator
alone (``tripod``) walk the same seeds side by side, in one run. Per contestant and row:
progress along the command, falls, worst heading drift, slip in stance, step frequency and
envelope violations (slip and steps of the legs it walks on: a limp leg's dragged foot is
neither, and shows as ``drag``, reported only; ``core.gait_metrics``), and a verdict:

- the gait generator *fails* a row when it falls, stalls (progress below ``STALL`` of the
  command: 0.05 m/s at 0.15 m/s) or drifts more than ``DRIFT_DEG`` in the episode;
- POLICY *passes* a row if it is plausible (slip < 0.03 m/s, step frequency <= 3 Hz, no
  envelope violation, no fall) and, where the gait fails, makes progress of at least
  ``RESCUE`` of the command (0.10 m/s at 0.15) with no fall and under ``DRIFT_DEG`` of drift.

The table goes to stdout, one JSON line at the end; exit status 0 when POLICY passes every
row. Nothing is tuned per scenario: every row uses the same thresholds.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import gymnasium as gym
import numpy as np

from kraby_rl.core import joints as J
from kraby_rl.sim.faults import FaultSpec

FORWARD = (0.15, 0.0, 0.0)
SIDEWAYS = (0.0, 0.1, 0.0)
TURN = (0.0, 0.0, 0.5)
STALL = 1.0 / 3.0           # of the commanded speed: 0.05 m/s at 0.15 m/s
RESCUE = 2.0 / 3.0          # 0.10 m/s at 0.15 m/s
DRIFT_DEG = 20.0
SLIP_MAX = 0.03
STEP_HZ_MAX = 3.0


def _limp_legs(*prefixes) -> dict:
    return {"limp": FaultSpec.limp_leg(*prefixes).limp}


def _scenarios() -> dict:
    """name -> (env overrides, reset options, commands)."""
    flat_cmds = (FORWARD, SIDEWAYS, TURN)
    out = {"flat": ({}, {}, flat_cmds)}
    for cm in (1, 2, 3):
        out[f"rough {cm} cm"] = ({}, {"terrain": {"kind": "rough", "size": cm / 100}},
                                 flat_cmds)
    for cm in (2, 3, 4, 5):
        out[f"step up {cm} cm"] = ({}, {"terrain": {"kind": "steps", "size": cm / 100}},
                                   (FORWARD,))
    out["step down 5 cm"] = ({}, {"terrain": {"kind": "steps", "size": -0.05}}, (FORWARD,))
    for deg in (10, -10, 15, -15):
        out[f"slope {deg:+d} deg"] = ({}, {"terrain": {"kind": "slope", "size": float(deg)}},
                                      (FORWARD,))
    for leg in J.LEG_PREFIXES:
        out[f"limp leg {leg}"] = ({}, {"faults": _limp_legs(leg)}, (FORWARD,))
    for a, b in (("lf", "rm"), ("lm", "rr"), ("lr", "rf")):
        out[f"limp legs {a}+{b}"] = ({}, {"faults": _limp_legs(a, b)}, (FORWARD,))
    out["all servos strength 0.5"] = (
        {}, {"faults": {"weak": {n: 0.5 for n in J.JOINT_NAMES}}}, flat_cmds)
    out["payload 0.5 kg"] = ({}, {"faults": {"payload_kg": 0.5, "payload_xy": (0.03, 0.02)}},
                             flat_cmds)
    out["friction 0.3"] = ({"friction": 0.3}, {}, flat_cmds)
    out["pushes 0.3 m/s"] = ({"randomize": {"push_interval_s": [2.0, 4.0],
                                            "push_velocity_m_s": 0.3}}, {}, flat_cmds)
    return out


SCENARIOS = _scenarios()


def _progress(res: dict, cmd) -> tuple[float, float]:
    """(achieved, commanded) along the command's axis [m/s or rad/s]."""
    axis = int(np.argmax(np.abs(cmd)))
    got = (res["vx"], res["vy"], res["yaw_rate"])[axis]
    return float(got * math.copysign(1.0, cmd[axis])), float(abs(cmd[axis]))


def contest(actor, name: str, seeds, seconds: float, env_kwargs: dict) -> list[dict]:
    """Rows of one contestant over one scenario: one per command, figures over seeds."""
    from kraby_rl.evaluation.evaluate import run_episode
    overrides, options, commands = SCENARIOS[name]
    kwargs = {**env_kwargs, **overrides, "episode_s": seconds}
    if "randomize" not in overrides:
        kwargs.pop("randomize", None)
    for section in ("terrain", "faults", "curriculum"):    # the scenario decides, nothing
        kwargs.pop(section, None)                           # drawn from the training config
    env = gym.make("kraby_rl/Hexapod-v0", **kwargs)
    rows = []
    try:
        for cmd in commands:
            eps = [run_episode(env, actor, seed, command=list(cmd), options=options)
                   for seed in seeds]
            prog = [_progress(e, cmd) for e in eps]
            turning = cmd[2] != 0 and cmd[0] == cmd[1] == 0
            rows.append({
                "scenario": name, "command": list(cmd),
                "progress": float(np.mean([p for p, _ in prog])),
                "commanded": prog[0][1],
                "falls": int(sum(e["fell"] for e in eps)),
                "drift_deg": (None if turning else
                              float(max(abs(e["heading_change_deg"]) for e in eps))),
                "slip": float(max(e["slip_mean"] for e in eps)),
                "step_hz": float(max(e["step_freq_hz"] for e in eps)),
                "envelope": float(max(e["envelope_violations"] for e in eps)),
                "drag": float(max(e["drag_mean"] for e in eps)),
            })
    finally:
        env.close()
    return rows


def gait_fails(row: dict) -> bool:
    drift = row["drift_deg"] is not None and row["drift_deg"] > DRIFT_DEG
    return row["falls"] > 0 or row["progress"] < STALL * row["commanded"] or drift


def policy_passes(row: dict, gait_row: dict) -> tuple[bool, list[str]]:
    """(passed, what failed) for the policy's row against the gait's on the same row."""
    why = []
    if row["falls"]:
        why.append(f"{row['falls']} fall(s)")
    if row["slip"] >= SLIP_MAX:
        why.append(f"slip {row['slip']:.3f} m/s")
    if row["step_hz"] > STEP_HZ_MAX:
        why.append(f"steps {row['step_hz']:.2f} Hz")
    if row["envelope"] > 0:
        why.append(f"envelope {100 * row['envelope']:.2f} %")
    if gait_fails(gait_row):
        if row["progress"] < RESCUE * row["commanded"]:
            why.append(f"progress {row['progress']:.3f} < {RESCUE * row['commanded']:.3f}")
        if row["drift_deg"] is not None and row["drift_deg"] >= DRIFT_DEG:
            why.append(f"drift {row['drift_deg']:.0f} deg")
    return not why, why


def drift(row: dict) -> str:
    return "   -" if row["drift_deg"] is None else f"{row['drift_deg']:4.0f}"


def run(policy: str = "walk", seeds=(0, 1, 2), seconds: float = 20.0, scenarios=None,
        log=print) -> dict:
    from kraby_rl.evaluation.evaluate import load_actor
    cand = load_actor(policy)
    gait = load_actor("tripod")
    names = list(SCENARIOS) if scenarios is None else list(scenarios)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {list(SCENARIOS)}")
    log(f"{'scenario':26s} {'command':>17s} | {'gait: progress falls drift':>27s} | "
        f"{'policy: progress falls drift slip Hz env drag':>49s} | verdict")
    rows = []
    for name in names:
        g_rows = contest(gait, name, seeds, seconds, dict(gait.metadata.get("env", {})))
        p_rows = contest(cand, name, seeds, seconds, dict(cand.metadata.get("env", {})))
        for g, p in zip(g_rows, p_rows):
            ok, why = policy_passes(p, g)
            rows.append({"scenario": name, "command": p["command"], "gait": g, "policy": p,
                         "gait_fails": gait_fails(g), "passed": ok, "why": why})
            log(f"{name:26s} {str(tuple(p['command'])):>17s} | {g['progress']:+8.3f} "
                f"{g['falls']:5d} {drift(g)}{' FAIL' if gait_fails(g) else '     '} | "
                f"{p['progress']:+8.3f} {p['falls']:5d} {drift(p)} {p['slip']:.3f} "
                f"{p['step_hz']:4.2f} {100 * p['envelope']:5.2f} {p['drag']:.3f} | "
                f"{'PASS' if ok else 'FAIL ' + '; '.join(why)}")
    summary = {"policy": policy, "seeds": list(seeds), "seconds": seconds,
               "passed": all(r["passed"] for r in rows),
               "rows_passed": sum(r["passed"] for r in rows), "rows": rows,
               "gait_fails": sum(r["gait_fails"] for r in rows),
               "rescued": sum(r["gait_fails"] and r["passed"] for r in rows)}
    log(f"robustness gate: {summary['rows_passed']}/{len(rows)} rows passed; the gait alone "
        f"fails {summary['gait_fails']} rows, the policy rescues {summary['rescued']} of them")
    return summary


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kraby_rl.evaluation.robustness",
                                description=__doc__.splitlines()[0])
    p.add_argument("policy", nargs="?", default="walk")
    p.add_argument("--seeds", type=int, default=3, help="episodes per row (seeds 0..N-1)")
    p.add_argument("--seconds", type=float, default=20.0, help="episode length [s]")
    p.add_argument("--scenario", action="append", dest="scenarios",
                   help=f"only this scenario (repeatable); known: {', '.join(SCENARIOS)}")
    args = p.parse_args(argv)
    if args.seeds < 1 or not args.seconds > 0:
        p.error(f"--seeds must be >= 1 and --seconds > 0, found {args.seeds}, {args.seconds}")
    try:
        summary = run(args.policy, range(args.seeds), args.seconds, args.scenarios)
    except (ValueError, FileNotFoundError) as exc:
        print(f"robustness: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robustness: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(summary))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
