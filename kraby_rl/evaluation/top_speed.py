"""``python -m kraby_rl.evaluation.top_speed [POLICY] [--baseline tripod]``: the fastest
plausible forward walk of a policy (or tuned gait) against a baseline, side by side.

Both are evaluated by ``kraby eval`` (unrandomised env, same seeds) at each forward command
of a sweep (0.15 to 0.50 m/s by default). A command counts as walked plausibly when all of
its episodes pass the flat gate's plausibility figures: no fall, stance slip < 0.03 m/s,
step frequency <= 3 Hz, no torque-speed envelope violation. A policy's top plausible speed
is the highest mean forward speed among those commands. A table per command, then one JSON
line.
"""

from __future__ import annotations

import argparse
import json
import sys

SWEEP = (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)


def plausible(summary: dict) -> tuple[bool, str]:
    """(passed, why not) of one command's ``evaluate`` summary."""
    w = summary["worst"]
    why = [text for bad, text in (
        (summary["falls"] > 0, f"{summary['falls']} falls"),
        (w["slip_mean"] >= 0.03, f"slip {w['slip_mean']:.3f} m/s"),
        (w["step_freq_hz"] > 3.0, f"steps {w['step_freq_hz']:.2f} Hz"),
        (w["envelope_violations"] > 0, "envelope")) if bad]
    return not why, ", ".join(why)


def run(policies, commands=SWEEP, episodes=3, seconds=10.0, log=print) -> dict:
    from kraby_rl.evaluation.evaluate import evaluate
    out = {}
    for policy in policies:
        rows = []
        for c in commands:
            s = evaluate(policy, episodes, seconds, (c, 0.0, 0.0),
                         env_overrides={"randomize": None}, log=lambda m: None)
            ok, why = plausible(s)
            rows.append({"command": c, "vx": s["mean"]["vx"], "falls": s["falls"],
                         "slip": s["worst"]["slip_mean"],
                         "step_freq_hz": s["worst"]["step_freq_hz"],
                         "envelope_violations": s["worst"]["envelope_violations"],
                         "plausible": ok, "why": why})
            r = rows[-1]
            log(f"{policy:>12}  cmd {c:.2f} m/s -> {r['vx']:.3f} m/s  slip {r['slip']:.3f} "
                f"steps {r['step_freq_hz']:.2f} Hz  falls {r['falls']}  "
                f"{'plausible' if ok else 'NOT plausible: ' + why}")
        good = [r["vx"] for r in rows if r["plausible"]]
        out[policy] = {"top_plausible_vx": max(good) if good else None, "sweep": rows}
        log(f"{policy}: top plausible forward speed "
            f"{'none' if not good else format(max(good), '.3f') + ' m/s'}")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kraby_rl.evaluation.top_speed")
    p.add_argument("policy", nargs="?", default="walk")
    p.add_argument("--baseline", default="tripod",
                   help="compared side by side (default: the default tripod gait)")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--commands", type=float, nargs="+", default=list(SWEEP),
                   help="forward commands [m/s]")
    args = p.parse_args(argv)
    if args.episodes < 1 or not args.seconds > 0 or not all(c > 0 for c in args.commands):
        p.error(f"--episodes >= 1, --seconds > 0 and forward --commands > 0 expected, found "
                f"{args.episodes}, {args.seconds}, {args.commands}")
    try:
        result = run([args.policy, args.baseline], args.commands, args.episodes, args.seconds)
    except (FileNotFoundError, ValueError) as exc:
        print(f"top_speed: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("top_speed: interrupted", file=sys.stderr)
        return 130
    print(json.dumps({"episodes": args.episodes, "seconds": args.seconds, **result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
