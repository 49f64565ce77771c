#!/usr/bin/env bash
# The whole test suite, from a fresh clone: sets everything up, then runs pytest under its own
# Xvfb and prints line coverage of ilbot/ (the bar is 90 %).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest --cov=ilbot --cov-report=term-missing:skip-covered --cov-fail-under=90 "$@"
