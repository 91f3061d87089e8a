"""``python -m kraby_rl.bench her``: SAC+HER against SAC without HER on the sparse one-leg
reach, and against SAC on the dense-reward OneLeg-v0, with equal steps, side by side.

Each contestant is a ``kraby train`` run of ``config/train_one_leg_reach.yaml`` (the same
network, algorithm settings, seed and step budget) that differs in one thing only:

* ``sac+her``: the config as shipped (sparse reward, hindsight relabelling);
* ``sac``: the same sparse task without HER (``her: {}``);
* ``sac dense``: ``OneLeg-v0`` (reward ``-10 * distance``, same targets, same episode).

Each is then evaluated by ``kraby eval`` on the same goals (seeds), success meaning a final
distance within the reach tolerance (5 mm).
"""

from __future__ import annotations

import os
import tempfile
import time

CONTESTANTS = (
    ("sac+her", {}),
    ("sac", {"her": {}}),
    ("sac dense", {"her": {}, "env_id": "kraby_rl/OneLeg-v0", "env": {"episode_s": 1.0}}),
)


def run(steps: int = 40_000, goals: int = 100, seed: int = 0, log=print) -> dict:
    from kraby_rl.evaluation.evaluate import evaluate
    from kraby_rl.resources import find_config
    from kraby_rl.training import config as C
    from kraby_rl.training.train import train
    import yaml
    with open(find_config("train_one_leg_reach.yaml")) as fh:
        base = yaml.safe_load(fh)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kraby_bench_her_") as tmp:
        for name, change in CONTESTANTS:
            data = {**base, **change, "total_timesteps": steps, "seed": seed,
                    "checkpoint_every": steps}
            if "env_id" in change:          # the dense task has no tolerance argument
                data["env"] = change["env"]
            cfg = C.from_dict(data)
            run_dir = os.path.join(tmp, name.replace(" ", "_").replace("+", "_"))
            t0 = time.time()
            train(cfg, run_dir, progress_bar=False, log=lambda m: None)
            wall = time.time() - t0
            ev = evaluate(run_dir, episodes=goals, seed=10_000, log=lambda m: None)
            rows.append({"contestant": name, "env_id": cfg.env_id, "steps": steps,
                         "train_s": round(wall, 1), "success_rate": ev["success_rate"],
                         "final_distance_mm": round(1000 * ev["mean"]["final_distance_m"], 2),
                         "worst_distance_mm": round(1000 * ev["worst"]["final_distance_m"],
                                                    2)})
            r = rows[-1]
            log(f"{name:10s} {r['env_id']:24s} {steps} steps in {r['train_s']:7.1f} s: "
                f"success {100 * r['success_rate']:5.1f} % within 5 mm over {goals} goals, "
                f"final distance mean {r['final_distance_mm']:.1f} mm, worst "
                f"{r['worst_distance_mm']:.1f} mm")
    return {"benchmark": "her", "steps": steps, "goals": goals, "seed": seed,
            "tolerance_m": 0.005, "results": rows}
