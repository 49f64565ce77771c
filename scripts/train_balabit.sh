#!/usr/bin/env bash
# Reproduces the Balabit result of docs/training.md from ../shared/data, in one command:
#   import (ilbot import balabit) → build (whole sessions held out for validation, 20 %, seed 0)
#   → train (configs/balabit.toml: ~25 min on a 2-core CPU) → eval (val split, 20 000 windows).
# Override the locations with DATA=..., WORK=..., PY=...; extra `ilbot train` args go after the script.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
WORK=${WORK:-runs/balabit}
PY=${PY:-.venv/bin/python}
ilbot() { "$PY" -m ilbot.cli "$@"; }

ilbot import balabit "$DATA/balabit/training_files" --out "$WORK/sessions" --overwrite
ilbot build "$WORK/sessions" --out "$WORK/dataset" --split-by session --holdout-frac 0.2 --seed 0
ilbot train --data "$WORK/dataset" --config configs/balabit.toml --out "$WORK/run" "$@"
ilbot eval --model "$WORK/run" --data "$WORK/dataset" --split val --out "$WORK/report" --max-windows 20000
echo "report: $WORK/report/report.json"
