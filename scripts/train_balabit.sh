#!/usr/bin/env bash
# Reproduces the Balabit results of docs/training.md from ../shared/data, in one command, on two splits:
#   session split — whole sessions held out for validation (20 %, seed 0): unseen sessions of known users;
#   user split    — users 7 and 9 held out (--split-by user): unseen users.
# Each build also holds out 10 % of the remaining training sessions (--calib-frac 0.1) as the 'calib'
# split: trained on by nothing, evaluated on by nothing, used only to fit the calibration.
# For each: build → train (configs/balabit.toml: a 10-minute cap on a 2-core CPU) → calibrate last/ on
# up to 20 000 calib windows (ilbot eval calibrate --split calib: event temperature, prior and decision
# rule, σ and quantile scales per slot kind, written into last/config.json) → eval (val split, 20 000
# windows), so the calibrated figures are on windows the calibration was not fitted on.
# Layout under $WORK: sessions/ (imported once); session split: dataset/ run/ report/ calibration.txt;
# user split: dataset_users/ run_users/ report_users/ calibration_users.txt.
# A rerun replaces what an earlier run of this script left there (ilbot datasets, runs and reports only: the
# --overwrite of build, train and eval refuses any other folder).
# Override the locations with DATA=..., WORK=..., PY=...; extra `ilbot train` args go after the script.
# SPLITS="session user" (default) or one of them. The user split holds out users 7,9 when the data
# has them all, else a seeded share HOLDOUT_SHARE=0.25 of its users (none with fewer than two);
# HOLDOUT_USERS=U,... names them.
# SKIP_BUILD=1 reuses already built datasets (DATASET=..., DATASET_USERS=...): train, calibrate, eval only.
# CALIBRATE=0 skips the calibration (the report then shows the raw heads).
# The reported figures are of last/: best/ is picked by the total validation loss, which the
# position and scroll parts dominate, and stops early while the event and time parts improve.
NAME=balabit
SOURCE=balabit/training_files
CONFIG=configs/balabit.toml
CHECKPOINT=/last
DEFAULT_HOLDOUT_USERS=7,9
HOLDOUT_SHARE=${HOLDOUT_SHARE:-0.25}
source "$(dirname "$0")/real_data_splits.sh"
