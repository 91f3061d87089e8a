#!/usr/bin/env bash
# Installs everything into .venv and runs the test suite (loopback-only, see test/conftest.py).
#
#   bash scripts/test.sh [pytest args]     # e.g. -m "not slow" for the pure tests (< 1 min)
#   LOAD=2 bash scripts/test.sh            # the same with 2 CPU-burning processes running
#
# 1. The whole suite on the embedded middleware (CycloneDDS from PyPI), forced with
#    KRABY_ROS_IMPLEMENTATION=embedded even where rclpy is importable; the ROS 2 tests are
#    skipped there, with the reason.
# 2. Where a ROS 2 Jazzy install is at ../shared/ros2-jazzy (or KRABY_ROS2_DIR), it is sourced
#    and the tests marked `ros` run on rclpy: colcon build, `ros2 launch` of the three launch
#    files checked from `ros2` CLI processes, check_urdf.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh

hogs=()
stop_hogs() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_hogs EXIT
for _ in $(seq 1 "${LOAD:-0}"); do
  .venv/bin/python -c 'while True: pass' &
  hogs+=("$!")
done
[ "${LOAD:-0}" -gt 0 ] && echo "test.sh: ${LOAD} CPU hog processes running (PIDs ${hogs[*]})"

KRABY_ROS_IMPLEMENTATION=embedded .venv/bin/python -m pytest -q "$@"

ros2_dir=${KRABY_ROS2_DIR:-../shared/ros2-jazzy}
if [ -f "$ros2_dir/activate" ]; then
  (
    # shellcheck disable=SC1091
    source .venv/bin/activate
    # shellcheck disable=SC1091
    source scripts/ros2_env.sh
    python -m pytest -q -m ros "$@"
  )
else
  echo "test.sh: no ROS 2 install at $ros2_dir: the rclpy path and the launch files were not run"
fi
