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
# A rerun replaces what an earlier run of this script left there (ilbot datasets, runs and reports only: the
# --overwrite of build, train and eval refuses any other folder).
# Override the locations with DATA=..., WORK=..., PY=...; extra `ilbot train` args go after the script.
# SPLITS="session user" (default) or one of them. The user split holds out typists 0,5,...,35 when
# the data has them all, else a seeded share HOLDOUT_SHARE=0.2 of its typists (none with fewer than
# two); HOLDOUT_USERS=U,... names them.
# SKIP_BUILD=1 reuses already built datasets (DATASET=..., DATASET_USERS=...): train, calibrate, eval only.
# CALIBRATE=0 skips the calibration (the report then shows the raw heads).
NAME=keystrokes
SOURCE=keystrokes/free_text_dev.csv
CONFIG=configs/keystrokes.toml
CHECKPOINT=""
DEFAULT_HOLDOUT_USERS=0,5,10,15,20,25,30,35
HOLDOUT_SHARE=${HOLDOUT_SHARE:-0.2}
source "$(dirname "$0")/real_data_splits.sh"
