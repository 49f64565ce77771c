#!/usr/bin/env bash
# The main job, from a fresh clone: sets everything up, then opens the app on its built-in
# default (the sandbox game with the shipped model, dry run). With no display it runs the
# headless agent on the sandbox for a fixed number of ticks and prints a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python main.py "$@"
