#!/usr/bin/env bash
# Regenerates the sandbox's shipped dataset and default model from nothing:
#   demonstrator sessions (`ilbot sandbox demo`, ilbot/demo; each worker under its own Xvfb, never your display)
#   -> ilbot build (held-out sessions for validation) -> ilbot train (configs/sandbox.toml)
#   -> ilbot eval (free-running fidelity on the held-out sessions)
#   -> ilbot/sandbox/assets/{dataset,model,eval_report.json}
#
# usage: scripts/make_default_model.sh [WORKDIR]
#   WORKDIR (default: a fresh temp folder) keeps sessions/, dataset/, run/, report/, logs.
#   env: WORKERS (4 parallel Xvfb servers), SESSIONS (per worker, 4), TICKS (per session, 400),
#        HOLDOUT (sessions held out for validation, 2), THIN_MS (MOVE thinning gap of the build,
#        50: a reach is ~8 moves, not ~40, so each carries more of the aim), ASSETS (target folder).
# Demonstrator sessions run in real time (600 ms ticks): WORKERS x SESSIONS x TICKS x 0.6 s of
# game time, spread over WORKERS parallel servers. The whole command prints its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PY:-$ROOT/.venv/bin/python}
WORK=${1:-$(mktemp -d -t ilbot-default-model-XXXXXX)}
WORKERS=${WORKERS:-4}
SESSIONS=${SESSIONS:-4}
TICKS=${TICKS:-400}
HOLDOUT=${HOLDOUT:-2}
THIN_MS=${THIN_MS:-50}
SEED0=${SEED0:-100}   # training seeds start here; the bench plays seed 0 (never trained on)
ASSETS=${ASSETS:-$ROOT/ilbot/sandbox/assets}
T0=$(date +%s)
mkdir -p "$WORK"
for d in sessions dataset run report; do
    if [ -e "$WORK/$d" ]; then echo "make_default_model: $WORK/$d exists; use an empty WORKDIR" >&2; exit 2; fi
done
mkdir -p "$WORK/sessions" "$WORK/logs"
echo "== 1/5 demonstrator: $WORKERS workers x $SESSIONS sessions x $TICKS ticks (~$((SESSIONS * TICKS * 6 / 10 + 20 * SESSIONS)) s) in $WORK"
pids=()
for w in $(seq 0 $((WORKERS - 1))); do
    seed=$((SEED0 + w * SESSIONS))
    # -a picks a free display number; the short stagger keeps parallel starts from racing for one
    xvfb-run -a -s "-screen 0 1280x800x24 -noreset" \
        "$PY" -m ilbot.cli sandbox demo --sessions "$SESSIONS" --ticks "$TICKS" --seed "$seed" \
        --out "$WORK/sessions" >"$WORK/logs/demo$w.log" 2>&1 &
    pids+=($!)
    sleep 3
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
cat "$WORK"/logs/demo*.log | grep -E "items|stopped|set aside|rror" || true
if [ "$fail" != 0 ]; then echo "make_default_model: a demonstrator worker failed (logs in $WORK/logs)" >&2; exit 1; fi
echo "   demonstrator done at $(( $(date +%s) - T0 )) s"

# hold out the last HOLDOUT sessions by seed (whole sessions: validation never sees a training
# tick); a session the demonstrator set aside (*.rejected: it fell behind the game) is not there
hold=$(ls "$WORK/sessions" | grep '\.ilbot\.sqlite$' | sed 's/\.ilbot\.sqlite$//' | sort -V | tail -n "$HOLDOUT" | paste -sd, -)
echo "== 2/5 build (held out: $hold)"
"$PY" -m ilbot.cli build "$WORK/sessions" --out "$WORK/dataset" --split-by session --holdout "$hold" --thin-ms "$THIN_MS" --no-progress
echo "== 3/5 train (configs/sandbox.toml)"
"$PY" -m ilbot.cli train --data "$WORK/dataset" --config configs/sandbox.toml --out "$WORK/run" --quiet
echo "   trained at $(( $(date +%s) - T0 )) s"
echo "== 4/5 eval (held-out sessions, free running)"
"$PY" -m ilbot.cli eval --model "$WORK/run/last" --data "$WORK/dataset" --split val --out "$WORK/report" \
    --free-running-ticks 300 --quiet
echo "== 5/5 copy into $ASSETS"
mkdir -p "$ASSETS"
rm -rf "$ASSETS/model" "$ASSETS/dataset"
mkdir -p "$ASSETS/model"
cp "$WORK/run/last/model.safetensors" "$WORK/run/last/config.json" "$ASSETS/model/"
cp -r "$WORK/dataset" "$ASSETS/dataset"
cp "$WORK/report/report.json" "$ASSETS/eval_report.json"
T1=$(date +%s)
echo "make_default_model: done in $((T1 - T0)) s (work folder $WORK)"
du -sh "$ASSETS"/* || true
