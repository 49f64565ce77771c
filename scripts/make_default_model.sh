#!/usr/bin/env bash
# Regenerates the sandbox's shipped dataset and default model from nothing:
#   demonstrator sessions (`ilbot sandbox demo`, ilbot/demo; each worker under its own Xvfb, never your display)
#   -> ilbot build (held-out sessions for validation) -> ilbot train (configs/sandbox.toml, round 1)
#   -> dataset aggregation, ROUNDS-1 times: the newest model and the demonstrator play in turns
#      (`ilbot sandbox takeover`, virtual clock: the demonstrator takes over in the states the
#      agent leads to) -> ilbot build (every session so far; the agent's spans weight 0, the
#      demonstrator's takeovers TAKEOVER_WEIGHT) -> ilbot train (from the previous round's weights)
#   -> sampling temperatures chosen in closed loop (seeds 20-29) and stored with the model
#   -> ilbot eval (free-running fidelity on the held-out sessions) and ilbot eval closed-loop (seeds 0-19)
#   -> ilbot/sandbox/assets/{dataset,model,eval_report.json,closed_loop.json}
#
# usage: scripts/make_default_model.sh [WORKDIR]
#   WORKDIR (default: a fresh temp folder) keeps sessions/, takeover<r>/, dataset<r>/, run<r>/,
#   report/, closed_loop/, logs/.
#   env: WORKERS (4 parallel Xvfb servers), SESSIONS (per worker, 2), TICKS (per session, 400),
#        HOLDOUT (sessions held out for validation, 2), THIN_MS (MOVE thinning gap of the build,
#        50: a reach is ~8 moves, not ~40, so each carries more of the aim), ASSETS (target folder),
#        ROUNDS (training rounds, 4), ROUND1_MIN / ROUND_MIN (caps on the training minutes of round 1 /
#        of each later round, 5 / 4; round 1, on the demonstrator's sessions alone, ends by its 40
#        epochs after about a minute), TAKEOVERS (sessions per round, 64), TAKEOVER_WEIGHT (4), SAMPLINGS
#        (sampling temperature candidates; the best in closed loop on seeds 20-29 is stored),
#        DEMO_SESSIONS (a folder of demonstrator sessions from an earlier run's WORKDIR/sessions:
#        copied instead of recording new ones, for trying a training change in ~20 minutes),
#        CONFIG (the training config, configs/sandbox.toml).
# Demonstrator sessions run in real time (600 ms ticks): WORKERS x SESSIONS x TICKS x 0.6 s of
# game time, spread over WORKERS parallel servers. The whole command prints its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PY:-$ROOT/.venv/bin/python}
WORK=${1:-$(mktemp -d -t ilbot-default-model-XXXXXX)}
WORKERS=${WORKERS:-4}
SESSIONS=${SESSIONS:-2}
TICKS=${TICKS:-400}
HOLDOUT=${HOLDOUT:-2}
THIN_MS=${THIN_MS:-50}
SEED0=${SEED0:-100}   # training seeds start here; the bench plays seed 0 (never trained on)
ASSETS=${ASSETS:-$ROOT/ilbot/sandbox/assets}
CONFIG=${CONFIG:-configs/sandbox.toml}
ROUNDS=${ROUNDS:-4}
ROUND1_MIN=${ROUND1_MIN:-5}
ROUND_MIN=${ROUND_MIN:-4}
TAKEOVERS=${TAKEOVERS:-64}
TAKEOVER_WEIGHT=${TAKEOVER_WEIGHT:-4}
# sampling temperature candidates (event,time,position[,cross]), the best by closed-loop fit_score is
# stored; cross=1 draws "act this tick or not" from the model's own odds while the rest is sharp
SAMPLINGS=${SAMPLINGS:-"event=0.7,time=0.7,position=0.7 event=0.5,time=0.5,position=0.5 event=0.5,time=0.3,position=0.5 event=0.5,time=0.5,position=0.3 event=0.5,time=0.5,position=0.5,cross=1 event=0.3,time=0.3,position=0.5,cross=1"}
T0=$(date +%s)
mkdir -p "$WORK"
if [ -n "$(ls -A "$WORK")" ]; then echo "make_default_model: $WORK is not empty; use a new or empty WORKDIR" >&2; exit 2; fi
mkdir -p "$WORK/sessions" "$WORK/logs"
if [ -n "${DEMO_SESSIONS:-}" ]; then
    echo "== 1 demonstrator sessions copied from $DEMO_SESSIONS"
    cp "$DEMO_SESSIONS"/*.ilbot.sqlite "$WORK/sessions/"
else
    echo "== 1 demonstrator: $WORKERS workers x $SESSIONS sessions x $TICKS ticks (~$((SESSIONS * TICKS * 6 / 10 + 20 * SESSIONS)) s) in $WORK"
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
fi

# hold out the last HOLDOUT sessions by seed (whole sessions: validation never sees a training
# tick); a session the demonstrator set aside (*.rejected: it fell behind the game) is not there
hold=$(ls "$WORK/sessions" | grep '\.ilbot\.sqlite$' | sed 's/\.ilbot\.sqlite$//' | sort -V | tail -n "$HOLDOUT" | paste -sd, -)
echo "== 2 build (held out: $hold)"
"$PY" -m ilbot.cli build "$WORK/sessions" --out "$WORK/dataset1" --split-by session --holdout "$hold" --thin-ms "$THIN_MS" --no-progress
echo "== 3 train round 1/$ROUNDS ($CONFIG, $ROUND1_MIN min)"
"$PY" -m ilbot.cli train --data "$WORK/dataset1" --config "$CONFIG" --out "$WORK/run1" --quiet \
    --set max_minutes="$ROUND1_MIN"
echo "   round 1 trained at $(( $(date +%s) - T0 )) s"
takeovers=()
for r in $(seq 2 "$ROUNDS"); do
    prev=$((r - 1))
    echo "== 4 round $r/$ROUNDS: round $prev's model and the demonstrator in turns ($TAKEOVERS sessions), build, train $ROUND_MIN min"
    "$PY" -m ilbot.cli sandbox takeover --model "$WORK/run$prev/last" --sessions "$TAKEOVERS" --seed $((1000 * r)) \
        --out "$WORK/takeover$r" >"$WORK/logs/takeover$r.log"
    tail -n 1 "$WORK/logs/takeover$r.log"
    takeovers+=("$WORK/takeover$r")
    "$PY" -m ilbot.cli build "$WORK/sessions" "${takeovers[@]}" --out "$WORK/dataset$r" --split-by session \
        --holdout "$hold" --thin-ms "$THIN_MS" --segment-weight agent=0 --segment-weight takeover="$TAKEOVER_WEIGHT" \
        --no-progress >/dev/null
    "$PY" -m ilbot.cli train --data "$WORK/dataset$r" --config "$CONFIG" --out "$WORK/run$r" --quiet \
        --set max_minutes="$ROUND_MIN" --set init_from="$WORK/run$prev/last" --set optim.warmup_steps=0
    echo "   round $r trained at $(( $(date +%s) - T0 )) s"
done
RUN="$WORK/run$ROUNDS"
DATA="$WORK/dataset$ROUNDS"
echo "== 5 sampling temperatures chosen in closed loop on seeds 20-29 (not the reported ones), stored with the model"
cands=()
for c in $SAMPLINGS; do cands+=(--sampling "$c"); done
"$PY" -m ilbot.cli eval closed-loop --model "$RUN/last" --first-seed 20 --seeds 10 --ticks 200 --json "${cands[@]}" \
    --store-sampling --out "$WORK/sampling" 2>"$WORK/logs/sampling.log" | tail -n 1
grep "fit_score" "$WORK/logs/sampling.log" || true
echo "== 6 eval (held-out sessions, free running) and closed loop (seeds 0-19 x 200 ticks)"
"$PY" -m ilbot.cli eval --model "$RUN/last" --data "$DATA" --split val --out "$WORK/report" \
    --free-running-ticks 300 --quiet
"$PY" -m ilbot.cli eval closed-loop --model "$RUN/last" --seeds 20 --ticks 200 --json \
    --out "$WORK/closed_loop" 2>"$WORK/logs/closed_loop.log" | tail -n 1
echo "== 7 copy into $ASSETS"
mkdir -p "$ASSETS"
rm -rf "$ASSETS/model" "$ASSETS/dataset"
mkdir -p "$ASSETS/model"
cp "$RUN/last/model.safetensors" "$RUN/last/config.json" "$ASSETS/model/"
cp -r "$DATA" "$ASSETS/dataset"
cp "$WORK/report/report.json" "$ASSETS/eval_report.json"
cp "$WORK/closed_loop/report.json" "$ASSETS/closed_loop.json"
T1=$(date +%s)
echo "make_default_model: done in $((T1 - T0)) s (work folder $WORK)"
du -sh "$ASSETS"/* || true
