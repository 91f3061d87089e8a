#!/usr/bin/env bash
# Installs everything into .venv and runs the test suite (loopback-only, see test/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
