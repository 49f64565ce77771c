#!/usr/bin/env bash
# Reproduces the keystroke results of docs/training.md from ../shared/data, in one command, on two splits:
#   session split — 20 % of the sessions held out (seed 0): unseen sessions of known typists;
#   user split    — 8 of the 40 typists held out (--split-by user): unseen typists.
# Each build also holds out 10 % of the remaining training sessions (--calib-frac 0.1) as the 'calib'
# split: trained on by nothing, evaluated on by nothing, used only to fit the calibration.
# For each: build → train (configs/keystrokes.toml: a 10-minute cap on a 2-core CPU) → calibrate the run's
# checkpoint (best/) on up to 20 000 calib windows (ilbot eval calibrate --split calib: event
# calibration, quantile scales per slot kind, written into best/config.json) → eval of that
# checkpoint (val split), so the calibrated figures are on windows the calibration was not fitted on.
# Layout under $WORK: sessions/ (imported once); session split: dataset/ run/ report/ calibration.txt;
# user split: dataset_users/ run_users/ report_users/ calibration_users.txt.
# A rerun replaces what an earlier run of this script left there (ilbot datasets and runs only: the
# --overwrite of build, train and eval refuses any other folder).
# Override the locations with DATA=..., WORK=..., PY=...; extra `ilbot train` args go after the script.
# SPLITS="session user" (default) or one of them. The user split holds out users 0,5,...,35 (every fifth typist) when the data
# has them all, else a seeded share HOLDOUT_SHARE=0.2 of its users; HOLDOUT_USERS=U,... names them.
# SKIP_BUILD=1 reuses already built datasets (DATASET=..., DATASET_USERS=...): train, calibrate, eval only.
# CALIBRATE=0 skips the calibration (the report then shows the raw heads).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
WORK=${WORK:-runs/keystrokes}
PY=${PY:-.venv/bin/python}
SPLITS=${SPLITS:-session user}
DEFAULT_HOLDOUT_USERS=0,5,10,15,20,25,30,35
HOLDOUT_SHARE=${HOLDOUT_SHARE:-0.2}
ilbot() { "$PY" -m ilbot.cli "$@"; }

DATASET=${DATASET:-$WORK/dataset}
DATASET_USERS=${DATASET_USERS:-$WORK/dataset_users}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  ilbot import keystrokes "$DATA/keystrokes/free_text_dev.csv" --out "$WORK/sessions" --overwrite
fi

# The user split holds out HOLDOUT_USERS when given (every one must have sessions); else the default
# users when the data has them all, else a seeded HOLDOUT_SHARE of whatever users it has.
has_user() { compgen -G "$WORK/sessions/keystrokes_user$1_session*.ilbot.sqlite" > /dev/null; }
if [[ -n "${HOLDOUT_USERS:-}" ]]; then
  user_holdout=(--holdout "$HOLDOUT_USERS")
else
  user_holdout=(--holdout "$DEFAULT_HOLDOUT_USERS")
  for u in ${DEFAULT_HOLDOUT_USERS//,/ }; do
    if [[ "${SKIP_BUILD:-0}" != 1 ]] && ! has_user "$u"; then
      echo "user split: no sessions of user $u here; holding out a share of $HOLDOUT_SHARE of the users instead" >&2
      user_holdout=(--holdout-frac "$HOLDOUT_SHARE"); break
    fi
  done
fi

for split in $SPLITS; do
  case "$split" in
    session) ds=$DATASET; sfx=""; build=(--split-by session --holdout-frac 0.2 --calib-frac 0.1 --seed 0) ;;
    user) ds=$DATASET_USERS; sfx="_users"; build=(--split-by user "${user_holdout[@]}" --calib-frac 0.1 --seed 0) ;;
    *) echo "SPLITS: unknown split '$split' (session, user)" >&2; exit 2 ;;
  esac
  if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    ilbot build "$WORK/sessions" --out "$ds" --overwrite "${build[@]}"
  fi
  ilbot train --data "$ds" --config configs/keystrokes.toml --out "$WORK/run$sfx" --overwrite "$@"
  if [[ "${CALIBRATE:-1}" == 1 ]]; then
    ilbot eval calibrate --model "$WORK/run$sfx" --data "$ds" --split calib --max-windows 20000 --quiet \
      | tee "$WORK/calibration$sfx.txt"
  fi
  ilbot eval --model "$WORK/run$sfx" --data "$ds" --split val --out "$WORK/report$sfx" --overwrite --max-windows 20000
  echo "report ($split split): $WORK/report$sfx/report.json"
done
