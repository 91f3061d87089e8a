#!/usr/bin/env bash
# Creates .venv (if missing) and installs kraby_rl with training and test extras into it.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.kraby_installed
if [ ! -f "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  # torch is pinned to the CPU wheel this machine carries; any other version pulls CUDA.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check \
      "torch==2.13.0" -e ".[train,test]"
  touch "$stamp"
fi
