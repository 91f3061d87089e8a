"""``python -m kraby_rl.bench train``: environment steps per second of stable-baselines3 PPO
and RLlib PPO on the same env, config and machine, side by side in one run.

Both train ``config/train_walk.yaml`` (Hexapod-v0, gait_residual, domain randomisation, 2
envs / env runners, the same network and PPO settings) for ``--steps`` steps from scratch,
one after the other, nothing else of ours running. Figures per engine: setup time (process
pool or Ray and its actors), training wall time and env steps per second while training
(the run's own ``training.json``), and the whole call's rate, setup included.
"""

from __future__ import annotations

import json
import os
import tempfile
import time

ENGINES = ("sb3", "rllib")


def run(steps: int = 40_000, n_envs: int = 2, log=print) -> dict:
    from kraby_rl.resources import find_config
    from kraby_rl.training import config as C
    from kraby_rl.training.train import train
    rows = []
    with tempfile.TemporaryDirectory(prefix="kraby_bench_train_") as tmp:
        for engine in ENGINES:
            cfg = C.load(find_config("train_walk.yaml"),
                         {"engine": engine, "total_timesteps": steps, "n_envs": n_envs,
                          "checkpoint_every": steps, "algo_kwargs": {"n_steps": 1024}})
            run_dir = os.path.join(tmp, engine)
            t0 = time.time()
            train(cfg, run_dir, progress_bar=False, log=lambda m: None)
            total = time.time() - t0
            with open(os.path.join(run_dir, "training.json")) as fh:
                info = json.load(fh)
            wall = float(info["last_session_wall_s"])
            rows.append({"engine": engine, "steps": int(info["timesteps"]),
                         "setup_s": round(total - wall, 1), "train_s": round(wall, 1),
                         "steps_per_s": round(info["timesteps"] / wall, 1),
                         "steps_per_s_with_setup": round(info["timesteps"] / total, 1)})
            r = rows[-1]
            log(f"{engine:6s} {r['steps']} steps: setup {r['setup_s']:.1f} s, training "
                f"{r['train_s']:.1f} s, {r['steps_per_s']:.0f} env steps/s "
                f"({r['steps_per_s_with_setup']:.0f} with setup)")
    ratio = rows[1]["steps_per_s"] / rows[0]["steps_per_s"]
    log(f"rllib / sb3 env steps per second while training: {ratio:.2f}")
    return {"benchmark": "train", "config": "train_walk.yaml", "n_envs": n_envs,
            "cpus": os.cpu_count(), "results": rows, "rllib_over_sb3": round(ratio, 3)}
