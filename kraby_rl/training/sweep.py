"""``kraby sweep CONFIG``: Ray Tune over any training config.

Each trial is one ``kraby train`` run of CONFIG (either engine, any algorithm) with some
keys set: every combination of the ``--grid KEY=V1,V2`` values, ``--samples`` random draws
of the ``--uniform KEY=LO,HI`` / ``--loguniform`` ranges, each for every ``--seeds`` value.
A trial trains into its own directory (``SWEEP_DIR/runs/<trial name>``), exports, and is scored
by ``kraby eval`` figures of the export (``--episodes`` episodes of ``--seconds``, at
``--command`` for a walking env). The table of trials is sorted by ``--metric`` (a figure
name: ``vx``, ``return``, ``success_rate``, ``falls``, ...), best first, with each trial's
run directory.

Trials run as Ray Tune function trainables, ``--cpus-per-trial`` each, on a local Ray
(loopback only, stopped after the sweep) or on a cluster (``--ray-address``). An
interrupted sweep continues with ``--resume``: finished trials are kept, unfinished ones
resume their own training run from its newest checkpoint.
"""

from __future__ import annotations

import json
import math
import os

from kraby_rl.training.ray_local import loopback_ray_env, start_ray

EXPERIMENT = "sweep"
"""Ray Tune's experiment name inside the sweep directory."""


def parse_values(text: str):
    """``"1e-4,3e-4"`` -> [0.0001, 0.0003] (each a YAML value)."""
    import yaml
    return [yaml.safe_load(v) for v in text.split(",")]


def figures(summary: dict) -> dict:
    """The numeric figures of a ``kraby eval`` summary, flat: the means and the top-level
    numbers (falls, success_rate)."""
    out = {}
    for key, value in {**summary.get("mean", {}), **summary}.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and key not in ("episodes", "seconds", "seed"):
            if value is not None and math.isfinite(value):
                out[key] = float(value)
    return out


def _nested(dotted: str, value):
    out = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def make_trainable(config_path: str, fixed: dict, episodes: int, seconds: float,
                   command, runs_dir: str):
    """The Tune function trainable of one trial: ``params`` holds each swept key (dotted) by
    its name and ``seed``; the trial's training run goes to ``runs_dir/<trial name>``."""

    def trial(params):
        from ray import tune
        from kraby_rl.evaluation.evaluate import evaluate
        from kraby_rl.training import config as C
        from kraby_rl.training.export import export
        from kraby_rl.training.train import latest_checkpoint, train
        overrides = dict(fixed)
        for key, value in params.items():
            overrides = C.merge(overrides, _nested(key, value))
        cfg = C.load(config_path, overrides)
        run_dir = os.path.join(runs_dir, tune.get_context().get_trial_name())
        if not os.path.exists(os.path.join(run_dir, "training.json")):
            resume = latest_checkpoint(run_dir) is not None
            train(cfg, run_dir, resume=resume, progress_bar=False, log=lambda m: None)
        out = export(run_dir)
        walking = cfg.env_id == "kraby_rl/Hexapod-v0"
        summary = evaluate(out, episodes=episodes, seconds=seconds if walking else None,
                           command=command if walking else None,
                           env_overrides={"randomize": None} if walking else None,
                           log=lambda m: None)
        tune.report({**figures(summary), "run_dir": run_dir})

    return trial


def run(config_path: str, sweep_dir: str, grid: dict, uniform: dict, loguniform: dict,
        samples: int, seeds: list, metric: str, mode: str, episodes: int, seconds: float,
        command, cpus_per_trial: float, fixed: dict | None = None, resume: bool = False,
        ray_address: str | None = None, log=print) -> dict:
    """Run (or resume) a sweep; returns ``{"trials": [...sorted], "best": {...}}``."""
    loopback_ray_env()
    import ray
    from ray import tune
    from kraby_rl.training import config as C
    C.load(config_path, fixed or {})            # a bad base config stops here, not per trial
    started = False
    if ray_address:
        ray.init(address=ray_address, log_to_driver=False, configure_logging=False)
    else:
        started = start_ray(os.cpu_count() or 1, log)
    try:
        storage = os.path.abspath(sweep_dir)
        trainable = tune.with_resources(
            make_trainable(os.path.abspath(config_path), fixed or {}, episodes, seconds,
                           command, os.path.join(storage, "runs")), {"cpu": cpus_per_trial})
        path = os.path.join(storage, EXPERIMENT)
        if resume:
            if not tune.Tuner.can_restore(path):
                raise FileNotFoundError(f"--resume: no sweep to resume in {sweep_dir!r}")
            tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True,
                                       resume_errored=True)
        else:
            if os.path.exists(path):
                raise FileExistsError(f"{sweep_dir!r} already holds a sweep; --resume it or "
                                      f"choose another --sweep-dir")
            space = {k: tune.grid_search(v) for k, v in grid.items()}
            space.update({k: tune.uniform(*v) for k, v in uniform.items()})
            space.update({k: tune.loguniform(*v) for k, v in loguniform.items()})
            space["seed"] = tune.grid_search(list(seeds))
            tuner = tune.Tuner(
                trainable, param_space=space,
                tune_config=tune.TuneConfig(num_samples=samples, metric=metric, mode=mode),
                run_config=tune.RunConfig(name=EXPERIMENT, storage_path=storage, verbose=0))
        results = tuner.fit()
    finally:
        if started or ray_address:
            ray.shutdown()
    rows = []
    for r in results:
        if r.error is not None or not r.metrics or metric not in r.metrics:
            rows.append({"params": r.config, "error": str(r.error or f"no {metric!r} figure"),
                         metric: None})
            continue
        rows.append({"params": r.config, metric: r.metrics[metric],
                     "figures": {k: v for k, v in r.metrics.items()
                                 if k in figures_keys(r.metrics)},
                     "run_dir": r.metrics.get("run_dir")})
    ok = [r for r in rows if r[metric] is not None]
    ok.sort(key=lambda r: r[metric], reverse=(mode == "max"))
    ranked = ok + [r for r in rows if r[metric] is None]
    return {"metric": metric, "mode": mode, "trials": ranked, "best": ok[0] if ok else None}


def figures_keys(metrics: dict) -> list:
    """The eval figures among a Tune result's keys (Tune adds its own bookkeeping)."""
    tune_keys = {"timestamp", "time_this_iter_s", "time_total_s", "training_iteration",
                 "time_since_restore", "iterations_since_restore", "pid", "done",
                 "checkpoint_dir_name", "should_checkpoint", "date", "hostname", "node_ip",
                 "trial_id", "experiment_tag", "config"}
    return [k for k, v in metrics.items() if k not in tune_keys
            and isinstance(v, (int, float)) and not isinstance(v, bool)]


def table(result: dict) -> str:
    """The ranked trials as text."""
    metric = result["metric"]
    lines = [f"{'rank':>4}  {metric:>12}  params / run directory"]
    for k, r in enumerate(result["trials"], 1):
        value = "failed" if r[metric] is None else f"{r[metric]:.4f}"
        params = ", ".join(f"{p}={v}" for p, v in sorted(r["params"].items()))
        lines.append(f"{k:>4}  {value:>12}  {params}")
        lines.append(f"{'':>20}{r.get('run_dir') or r.get('error')}")
    return "\n".join(lines)


def dump(result: dict) -> str:
    return json.dumps(result, default=str)
