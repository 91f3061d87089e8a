"""``python -m kraby_rl.evaluation.gate [POLICY]``: the walking policy's acceptance gate.

Evaluates POLICY (default: the shipped ``walk``) for 10 episodes of 20 s per command in the
unrandomised env on flat ground with healthy servos (a policy trained on terrain and faults
too: those are the robustness gate's), again with its training randomisation, and forward
through the real stack over the virtual bus, then checks every figure against its threshold
and prints a table (PASS/FAIL per line) and one JSON line. Exit status 0 when everything passes.

Thresholds (issue 6): zero falls; forward mean speed >= 0.12 m/s at 0.15 m/s with heading
drift < 15 deg; sideways and turning within 30 % of the command; mean foot slip in stance
< 0.03 m/s; step frequency <= 3 Hz; no torque-speed envelope violation; with
randomisation the same figures within 25 %; through the stack, forward speed within 20 %
of the training env's, zero falls, no shield trips.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

COMMANDS = {"forward": (0.15, 0.0, 0.0), "backward": (-0.15, 0.0, 0.0),
            "left": (0.0, 0.1, 0.0), "right": (0.0, -0.1, 0.0),
            "turn_left": (0.0, 0.0, 0.5), "turn_right": (0.0, 0.0, -0.5)}
AXIS = {"forward": "vx", "backward": "vx", "left": "vy", "right": "vy",
        "turn_left": "yaw_rate", "turn_right": "yaw_rate"}


def checks(name, summary, slack=1.0):
    """[(label, value, limit text, passed)] for one command's summary; ``slack`` widens the
    limits (1.25 = within 25 %)."""
    m, worst = summary["mean"], summary["worst"]
    cmd = COMMANDS[name]
    axis = AXIS[name]
    target = cmd[("vx", "vy", "yaw_rate").index(axis)]
    out = [(f"{name}: falls", summary["falls"], "0", summary["falls"] == 0)]
    if name == "forward":
        lim = 0.12 / slack
        out.append((f"{name}: vx [m/s]", m["vx"], f">= {lim:.3f}", m["vx"] >= lim))
        lim = 15.0 * slack
        drift = max(abs(d["heading_change_deg"]) for d in summary["episodes_detail"])
        out.append((f"{name}: worst heading drift [deg]", drift, f"< {lim:.1f}", drift < lim))
    else:
        tol = 0.30 * slack
        err = abs(m[axis] - target) / abs(target)
        out.append((f"{name}: {axis} (cmd {target:+.2f})", m[axis], f"within {tol:.0%}",
                    err <= tol))
    lim = 0.03 * slack
    out.append((f"{name}: worst slip in stance [m/s]", worst["slip_mean"], f"< {lim:.3f}",
                worst["slip_mean"] < lim))
    lim = 3.0 * slack
    out.append((f"{name}: step frequency [Hz]", worst["step_freq_hz"], f"<= {lim:.2f}",
                worst["step_freq_hz"] <= lim))
    out.append((f"{name}: envelope violations", worst["envelope_violations"], "0",
                worst["envelope_violations"] == 0))
    return out


FLAT_HEALTHY = {"terrain": None, "faults": None, "curriculum": None}
"""Env overrides of every gate episode: flat ground, no servo fault, no curriculum, whatever
the policy trained on (a terrain policy's own sections would draw steps and limp legs)."""


def run(policy="walk", episodes=10, seconds=20.0, stack_episodes=5, log=print, record=None):
    """The gate; ``record``: a directory for every env episode's bag
    (RECORD/<nominal|randomized>_<command>/episode_<k>)."""
    from kraby_rl.resources import resolve_policy
    from kraby_rl.stack.through_stack import evaluate_through_stack
    from kraby_rl.evaluation.evaluate import evaluate
    quiet = (lambda m: None)
    rows, results = [], {}
    for randomized in (False, True):
        for name, cmd in COMMANDS.items():
            key = f"{'randomized' if randomized else 'nominal'}/{name}"
            s = evaluate(policy, episodes, seconds, cmd, env_overrides=FLAT_HEALTHY
                         if randomized else {**FLAT_HEALTHY, "randomize": None},
                         randomized=randomized, log=quiet,
                         record=record and os.path.join(record, key.replace("/", "_")))
            results[key] = s
            for label, value, limit, ok in checks(name, s, 1.25 if randomized else 1.0):
                rows.append((f"{'rand ' if randomized else ''}{label}", value, limit, ok))
                log(_row(*rows[-1]))
    stack = evaluate_through_stack(resolve_policy(policy), stack_episodes, seconds,
                                   COMMANDS["forward"], log=quiet)
    results["stack/forward"] = stack
    env_vx = results["nominal/forward"]["mean"]["vx"]
    ratio = stack["mean"]["vx"] / env_vx if env_vx else float("nan")
    for row in ((f"stack: forward vx / env vx ({stack['mean']['vx']:.3f}/{env_vx:.3f})",
                 ratio, "0.80-1.20", 0.8 <= ratio <= 1.2),
                ("stack: falls", stack["falls"], "0", stack["falls"] == 0),
                ("stack: shield trips", len(stack["trips"]), "0", not stack["trips"])):
        rows.append(row)
        log(_row(*row))
    passed = all(r[3] for r in rows)
    log(f"gate: {'PASS' if passed else 'FAIL'} ({sum(r[3] for r in rows)}/{len(rows)} checks)")
    return passed, rows, results


def _row(label, value, limit, ok):
    v = f"{value:.3f}" if isinstance(value, float) else str(value)
    return f"{'PASS' if ok else 'FAIL'}  {label:<48}{v:>10}  {limit}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kraby_rl.evaluation.gate")
    p.add_argument("policy", nargs="?", default="walk")
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--stack-episodes", type=int, default=5)
    p.add_argument("--record", metavar="DIR", help="a rosbag2 bag of every env episode")
    args = p.parse_args(argv)
    passed, rows, results = run(args.policy, args.episodes, args.seconds, args.stack_episodes,
                                record=args.record)
    print(json.dumps({"policy": args.policy, "passed": passed,
                      "checks": [{"check": r[0], "value": r[1], "limit": r[2], "pass": r[3]}
                                 for r in rows]}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
