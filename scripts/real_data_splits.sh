# The part of scripts/train_balabit.sh and scripts/train_keystrokes.sh they share: sourced by them
# after they set NAME (the importer, also the session stores' name prefix), SOURCE (what it imports),
# CONFIG, CHECKPOINT (the run's subfolder evaluated: "/last" or "" for best/), DEFAULT_HOLDOUT_USERS
# and HOLDOUT_SHARE. For each split in $SPLITS: build → train → calibrate on the calib split → eval on
# the val split. The environment knobs are listed in those scripts' headers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${DATA:-../shared/data}
WORK=${WORK:-runs/$NAME}
PY=${PY:-.venv/bin/python}
SPLITS=${SPLITS:-session user}
DATASET=${DATASET:-$WORK/dataset}
DATASET_USERS=${DATASET_USERS:-$WORK/dataset_users}
ilbot() { "$PY" -m ilbot.cli "$@"; }

building() { [[ "${SKIP_BUILD:-0}" != 1 ]]; }
if building; then
  ilbot import "$NAME" "$DATA/$SOURCE" --out "$WORK/sessions" --overwrite
fi

# The user split holds out HOLDOUT_USERS when given (every one must have sessions); else the default
# users when the data has them all, else a seeded HOLDOUT_SHARE of whatever users it has; with fewer
# than two users there is no user split, and it is skipped with a note.
users() { find "$WORK/sessions" -maxdepth 1 -name "${NAME}_user*_session*.ilbot.sqlite" -printf '%f\n' \
  | sed -n "s/^${NAME}_user\(.*\)_session.*/\1/p" | sort -u; }
user_holdout=(--holdout "${HOLDOUT_USERS:-$DEFAULT_HOLDOUT_USERS}")
skip_user=""  # why there is no user split, if there is none
if [[ -z "${HOLDOUT_USERS:-}" ]] && building; then
  have=$(users)
  n_users=$(grep -c . <<< "$have" || true)
  if (( n_users < 2 )); then
    skip_user="the data has $n_users user(s)"
  else
    for u in ${DEFAULT_HOLDOUT_USERS//,/ }; do
      if ! grep -qx -- "$u" <<< "$have"; then
        echo "user split: no sessions of user $u here; holding out a share of $HOLDOUT_SHARE of the users instead" >&2
        user_holdout=(--holdout-frac "$HOLDOUT_SHARE"); break
      fi
    done
  fi
fi

for split in $SPLITS; do
  case "$split" in
    session) ds=$DATASET; sfx=""; build=(--split-by session --holdout-frac 0.2 --calib-frac 0.1 --seed 0) ;;
    user) ds=$DATASET_USERS; sfx="_users"; build=(--split-by user "${user_holdout[@]}" --calib-frac 0.1 --seed 0) ;;
    *) echo "SPLITS: unknown split '$split' (session, user)" >&2; exit 2 ;;
  esac
  if [[ $split == user && -n $skip_user ]]; then
    echo "user split: skipped, $skip_user" >&2; continue
  fi
  if building; then
    ilbot build "$WORK/sessions" --out "$ds" --overwrite "${build[@]}"
  fi
  ilbot train --data "$ds" --config "$CONFIG" --out "$WORK/run$sfx" --overwrite "$@"
  if [[ "${CALIBRATE:-1}" == 1 ]]; then
    # fitted on the calib split: sessions held out of training and of the evaluation below
    ilbot eval calibrate --model "$WORK/run$sfx$CHECKPOINT" --data "$ds" --split calib --max-windows 20000 --quiet \
      | tee "$WORK/calibration$sfx.txt"
  fi
  ilbot eval --model "$WORK/run$sfx$CHECKPOINT" --data "$ds" --split val --out "$WORK/report$sfx" --overwrite \
    --max-windows 20000
  echo "report ($split split): $WORK/report$sfx/report.json"
done
