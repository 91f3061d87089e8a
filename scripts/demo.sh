#!/usr/bin/env bash
# The main job on embedded defaults: the sim stack (every node its own process, loopback DDS)
# runs a policy for a fixed time; a separate process watches it and prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}
.venv/bin/kraby demo --seconds "${SECONDS_RUN:-20}" --policy "${POLICY:-stand}"
