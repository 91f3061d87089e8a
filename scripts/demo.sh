#!/usr/bin/env bash
# The main job on embedded defaults: the sim stack (every node its own process, loopback DDS)
# runs the shipped walking policy for a fixed time; a separate process watches it and
# prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$((RANDOM % 100 + 1))}
# the shipped walking policy at 0.15 m/s forward; POLICY=stand COMMAND="0 0 0" to change
# shellcheck disable=SC2086  # COMMAND is three numbers
.venv/bin/kraby demo --seconds "${SECONDS_RUN:-20}" --policy "${POLICY:-walk}" \
    --command ${COMMAND:-0.15 0 0}
