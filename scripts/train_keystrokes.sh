#!/usr/bin/env bash
# Reproduces the keystroke result of docs/training.md from ../shared/data, in one command:
#   import (ilbot import keystrokes) → build (20 % of the sessions held out, seed 0)
#   → train (configs/keystrokes.toml: ~12 min on a 2-core CPU) → eval (val split).
# Override the locations with DATA=..., WORK=..., PY=...; extra `ilbot train` args go after the script.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
WORK=${WORK:-runs/keystrokes}
PY=${PY:-.venv/bin/python}
ilbot() { "$PY" -m ilbot.cli "$@"; }

ilbot import keystrokes "$DATA/keystrokes/free_text_dev.csv" --out "$WORK/sessions" --overwrite
ilbot build "$WORK/sessions" --out "$WORK/dataset" --split-by session --holdout-frac 0.2 --seed 0
ilbot train --data "$WORK/dataset" --config configs/keystrokes.toml --out "$WORK/run" "$@"
ilbot eval --model "$WORK/run" --data "$WORK/dataset" --split val --out "$WORK/report" --max-windows 20000
echo "report: $WORK/report/report.json"
