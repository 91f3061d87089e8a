"""``python -m kraby_rl.evaluation.curve RUN``: robustness-gate passes against training wall
time, from a run's checkpoints.

Each chosen checkpoint is exported (torch-free, as ``kraby export``) and put through the
robustness gate (``evaluation.robustness``, the candidate beside the gait generator alone);
its rows passed and rows rescued (the gait alone fails them, the policy passes) are plotted
against the training wall time at which the checkpoint was written.

Wall time: ``checkpoints/latest.json`` keeps it for new runs only at the newest checkpoint,
so it is taken from the TensorBoard event files, whose records carry wall-clock times:
within each training session the time since its first record, summed over the sessions
(the time between sessions does not count; each session's start-up before its first record
is not counted either, some seconds).

Results are cached per checkpoint (``OUT/robustness_<steps>.json``); a rerun evaluates only
what is missing. ``OUT/curve.json`` and ``OUT/curve.png`` are written at the end.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile

from kraby_rl.evaluation import robustness as RB


def session_walls(run_dir: str) -> list[list[tuple[int, float]]]:
    """[(step, wall time [s])] per TensorBoard event file (one per training session)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    sessions = []
    for path in sorted(glob.glob(os.path.join(run_dir, "tb", "*", "events.out.tfevents.*")),
                       key=os.path.getmtime):
        acc = EventAccumulator(path, size_guidance={"scalars": 0})
        acc.Reload()
        points = {}
        for tag in acc.Tags()["scalars"]:
            for e in acc.Scalars(tag):
                points[e.step] = min(points.get(e.step, e.wall_time), e.wall_time)
        if points:
            sessions.append(sorted(points.items()))
    return sessions


def _interp(points, step):
    """Wall time at ``step`` within one session's (step, wall) records; None past its end."""
    if step <= points[0][0]:
        return points[0][1]
    for (s0, w0), (s1, w1) in zip(points, points[1:]):
        if s0 <= step <= s1:
            return w0 + (w1 - w0) * (step - s0) / max(1, s1 - s0)
    return None


def wall_at(sessions, step: int) -> float | None:
    """Training wall time [s] when ``step`` was reached, summed over the sessions. A session
    counts up to where the next one took over (its first record: that session resumed
    from the checkpoint just before), whatever it ran past that."""
    total = 0.0
    for k, points in enumerate(sessions):
        cut = sessions[k + 1][0][0] if k + 1 < len(sessions) else None
        if cut is None or step < cut:
            w = _interp(points, step)
            return None if w is None else total + w - points[0][1]
        w = _interp(points, cut)
        total += (points[-1][1] if w is None else w) - points[0][1]
    return None


def run(run_dir: str, out_dir: str, every: int, seeds, seconds: float, scenarios=None,
        log=print) -> list[dict]:
    from kraby_rl.training.export import export
    from kraby_rl.training.train import checkpoint_steps
    steps = checkpoint_steps(run_dir)
    if not steps:
        raise FileNotFoundError(f"run {run_dir!r} has no checkpoints")
    chosen = sorted({s for s in steps if s % every == 0} | {steps[-1]})
    os.makedirs(out_dir, exist_ok=True)
    sessions = session_walls(run_dir)
    points = []
    for n in chosen:
        cache = os.path.join(out_dir, f"robustness_{n}.json")
        if not os.path.exists(cache):
            with tempfile.TemporaryDirectory() as tmp:
                policy = export(run_dir, os.path.join(tmp, "policy"), n)
                summary = RB.run(policy, seeds, seconds, scenarios, log=lambda m: None)
            with open(cache, "w") as fh:
                json.dump(summary, fh)
        with open(cache) as fh:
            summary = json.load(fh)
        point = {"steps": n, "wall_s": wall_at(sessions, n), "rows": len(summary["rows"]),
                 "rows_passed": summary["rows_passed"], "gait_fails": summary["gait_fails"],
                 "rescued": summary["rescued"]}
        points.append(point)
        wall = "?" if point["wall_s"] is None else f"{point['wall_s'] / 60:.1f} min"
        log(f"{n:>9d} steps ({wall}): {point['rows_passed']}/{point['rows']} rows passed, "
            f"{point['rescued']}/{point['gait_fails']} rescued")
    with open(os.path.join(out_dir, "curve.json"), "w") as fh:
        json.dump(points, fh, indent=1)
    plot(points, os.path.join(out_dir, "curve.png"), run_dir)
    return points


def plot(points, path, title):
    from kraby_rl.evaluation.report import _plt
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    x = [(p["wall_s"] or 0.0) / 60 for p in points]
    ax.plot(x, [p["rows_passed"] for p in points], "o-", label="rows passed")
    ax.plot(x, [p["rescued"] for p in points], "s-", label="rows rescued (the gait alone fails)")
    if points:
        ax.axhline(points[-1]["rows"], color="0.5", ls=":", lw=1, label="rows")
    for xi, p in zip(x, points):
        ax.annotate(f"{p['steps'] // 1000}k", (xi, p["rows_passed"]), fontsize=7,
                    textcoords="offset points", xytext=(0, 5), ha="center")
    ax.set_xlabel("training wall time [min] (2 cores)")
    ax.set_ylabel("robustness-gate rows")
    ax.set_title(f"robustness gate vs training time: {title}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m kraby_rl.evaluation.curve",
                                description=__doc__.splitlines()[0])
    p.add_argument("run", help="training run directory")
    p.add_argument("--out", help="results directory (default RUN/curve)")
    p.add_argument("--every", type=int, default=300_000,
                   help="evaluate checkpoints at multiples of this many steps (and the last)")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--scenario", action="append", dest="scenarios",
                   help="only this scenario (repeatable; default: all)")
    args = p.parse_args(argv)
    try:
        run(args.run, args.out or os.path.join(args.run, "curve"), args.every,
            range(args.seeds), args.seconds, args.scenarios)
    except (FileNotFoundError, ValueError) as exc:
        print(f"curve: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
