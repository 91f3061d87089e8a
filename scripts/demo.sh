#!/usr/bin/env bash
# The main job on embedded defaults: a short PPO training run on Hexapod-v0, its export to a
# torch-free policy, and an evaluation of the exported policy beside the reference tripod gait.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
RUN=${RUN:-runs/demo-$(date +%Y%m%d-%H%M%S)}
STEPS=${STEPS:-20000}
.venv/bin/kraby train --config config/train_ppo.yaml --timesteps "$STEPS" --run-dir "$RUN"
.venv/bin/kraby export "$RUN"
echo "== reference tripod gait, forward command 0.1 m/s =="
.venv/bin/kraby eval tripod --episodes 2 --seconds 10 --command 0.1 0 0
echo "== the policy just trained ($STEPS steps), same command =="
.venv/bin/kraby eval "$RUN/export" --episodes 2 --seconds 10 --command 0.1 0 0
