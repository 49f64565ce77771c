"""`ilbot bench train [--config C] [--steps N] [--json]`: training throughput in windows per second;
`ilbot bench train --data DS [--config C] [--minutes 10] [--check-every-s 60] [--eval-windows 2000]
[--baseline-windows 50000] [--out RUN] [--stop-when-beaten] [--json]`: the training minutes until
the model beats every baseline.

Throughput (without --data): builds the generated dataset (ilbot.training.synthetic) in a temporary
folder, then times full optimizer steps (batch read, forward with the loss, backward, clipping,
AdamW) of the model a training config describes (default: configs' defaults, i.e. ModelConfig's
default sizes) on the CPU and, when one is at hand, on the GPU (bf16 autocast, as training uses
there). Keys: `windows_per_s` and `device` (the fastest device measured), `per_device` (every
device), the batch size, steps timed and the model's parameter count.

Minutes to beat the baselines (with --data): trains the config on dataset DS exactly as `ilbot
train` does (ilbot.training.loop.train), with its `max_minutes` replaced by --minutes, in a
temporary run folder removed at the end (or in --out, kept; new or empty). Before training, the
baselines of `ilbot eval` (ilbot.eval.baselines) are fitted once on up to --baseline-windows
training windows (seed 0) and scored once on a fixed sample of --eval-windows windows of the
config's validation split (seed 0). Every --check-every-s seconds of training, and once at its end,
the loop's `check` hook scores the current weights on that sample with the same scores `ilbot eval`
reports, and `ilbot.eval.beat_baselines` compares them with the best baseline of each: position
CRPS (x, y) and time WIS, in-window and look-ahead, lower wins; event accuracy on all slots, ≥
wins. The hook's time (scoring) is not training time: the loop takes it off the cap, the
time-based learning rate and every clock. One line per check goes to stderr. Keys:

- `minutes_to_beat_baselines`: training wall minutes (this run's, with its validations and
  checkpoints, without the scoring) at the first check where every comparison is won; null if
  none; `steps_to_beat_baselines` beside it;
- `checks`: per check `minutes`, `step`, `windows_per_s` (so far), `won`, and `comparisons`
  (per comparison: `slots`, `key`, `better`, `model`, `baseline` (the best baseline's name),
  `baseline_value`, `won`);
- `windows_per_s` (windows trained / training seconds), `train_minutes`, `steps`, `end` (the
  loop's end: "cap", "done"; "beaten" with --stop-when-beaten), `scoring_s`, `eval_slots`,
  `baseline_fit`, `device`, `batch_size`, `model_params`, `threads`, `run` (--out, or null).

Reproduce the Balabit figure (a dataset built by scripts/train_balabit.sh):

    ilbot bench train --data runs/balabit/dataset --config configs/balabit.toml --minutes 10 --json
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

DEFAULTS = {"minutes": 10.0, "check_every_s": 60.0, "eval_windows": 2000, "baseline_windows": 50000}
SEED = 0  # the evaluated sample and the baselines' fit


def add_arguments(parser) -> None:
    parser.add_argument("--config", help="training config TOML (its [model], batch size and, with --data, the rest)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per device (after 2 warm-up steps)")
    parser.add_argument("--data", default=None, help="dataset to train on until every baseline is beaten "
                                                     "(without it: throughput on generated windows)")
    parser.add_argument("--minutes", type=float, default=None,
                        help=f"with --data: training minutes (replaces max_minutes; default {DEFAULTS['minutes']:g})")
    parser.add_argument("--check-every-s", type=float, default=None,
                        help=f"with --data: training seconds between checks (default {DEFAULTS['check_every_s']:g})")
    parser.add_argument("--eval-windows", type=int, default=None,
                        help=f"with --data: validation windows scored per check (default {DEFAULTS['eval_windows']})")
    parser.add_argument("--baseline-windows", type=int, default=None,
                        help=f"with --data: training windows the baselines are fitted on "
                             f"(default {DEFAULTS['baseline_windows']})")
    parser.add_argument("--out", default=None, help="with --data: keep the run in this folder (new or empty)")
    parser.add_argument("--stop-when-beaten", action="store_true",
                        help="with --data: stop training at the first check that beats every baseline")


def measure(ds, cfg, device: torch.device, steps: int) -> float:
    import torch  # here: `ilbot` imports every benchmark module at start-up for its arguments

    from ..training.data import iterate_batches
    from ..training.loop import build_model, make_optimizer

    model = build_model(cfg, ds).to(device)
    opt = make_optimizer(model, cfg)
    bs = cfg.data.batch_size
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(ds), size=min(bs, len(ds)), replace=False) for _ in range(steps + 2)]
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" and cfg.bf16 else nullcontext
    n = 0
    t0 = time.perf_counter()
    for i, batch in enumerate(iterate_batches(ds, batches)):
        if i == 2:  # warm-up done (allocator, kernels)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, n = time.perf_counter(), 0
        b = {k: v.to(device) for k, v in batch.items()}
        with autocast():
            out = model(b, targets={"targets": b["targets"], "target_mask": b["target_mask"]})
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        opt.step()
        n += len(b["targets"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def run(args) -> dict:
    from ..training.config import load_config

    _check_args(args)
    cfg = load_config(getattr(args, "config", None), getattr(args, "overrides", []))
    if getattr(args, "data", None):
        return minutes_to_beat(args, cfg)
    return throughput(args, cfg)


def throughput(args, cfg) -> dict:
    import torch

    from ..data.dataset import open_dataset
    from ..training.loop import build_model
    from ..training.synthetic import make_dataset

    steps = max(int(getattr(args, "steps", 10)), 1)
    with tempfile.TemporaryDirectory(prefix="ilbot-bench-train-") as tmp:
        ds = open_dataset(make_dataset(tmp, n_sessions=2, duration_s=60, holdout_frac=0.0))
        devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
        per_device = {d.type: round(measure(ds, cfg, d, steps), 1) for d in devices}
        params = build_model(cfg, ds).num_params()
    best = max(per_device, key=per_device.get)
    return {"windows_per_s": per_device[best], "device": best, "per_device": per_device,
            "batch_size": cfg.data.batch_size, "steps": steps, "model_params": params,
            "threads": torch.get_num_threads()}


def _check_args(args) -> None:
    """Defaults for the --data options; each checked (one-line UserError), and refused without --data."""
    from ..errors import UserError

    given = [k for k in DEFAULTS if getattr(args, k, None) is not None]
    given += [k for k in ("out", "stop_when_beaten") if getattr(args, k, None)]
    if not getattr(args, "data", None):
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} needs --data (the dataset to train on)")
        return
    for k, v in DEFAULTS.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    checks = [("minutes", math.isfinite(args.minutes) and args.minutes > 0, "a number > 0"),
              ("check_every_s", math.isfinite(args.check_every_s) and args.check_every_s > 0, "a number > 0"),
              ("eval_windows", args.eval_windows >= 1, "an integer >= 1"),
              ("baseline_windows", args.baseline_windows >= 1, "an integer >= 1")]
    for key, ok, want in checks:
        if not ok:
            raise UserError(f"--{key.replace('_', '-')} must be {want}, got {getattr(args, key)!r}")


def _say(text: str) -> None:
    print(f"bench train: {text}", file=sys.stderr, flush=True)


def _sections(slots, pred, masks: dict) -> dict:
    """{slot kind: M} of one predictor (the report's metrics and proper scores, without the tables)."""
    from ..eval.report import scored

    return {kind: scored(slots.select(keep), pred.select(keep), detail=False) for kind, keep in masks.items()}


def minutes_to_beat(args, cfg) -> dict:
    import torch

    from ..eval.beat_baselines import beats_baselines, compare_with_baselines, summary_line
    from ..eval.report import SLOT_KINDS, fit_on_training, kind_mask, pick_windows, predict_split
    from ..errors import ConfigError
    from ..training.loop import open_split, train

    if not cfg.data.val_split:
        raise ConfigError("config key 'data.val_split' is empty: bench train --data scores validation windows")
    cfg.max_minutes = float(args.minutes)
    ds_train = open_split(args.data, cfg.data.train_split, "data.train_split")
    ds_val = open_split(args.data, cfg.data.val_split, "data.val_split")

    t0 = time.monotonic()
    idx = pick_windows(len(ds_val), args.eval_windows, SEED)
    slots, _ = predict_split(None, ds_val, idx)
    masks = {kind: kind_mask(slots, kind) for kind in SLOT_KINDS}
    baselines, fit_note = fit_on_training(ds_train, ds_val, slots, args.baseline_windows, SEED)
    rivals = {name: _sections(slots, b.predict(slots), masks) for name, b in baselines.items()}
    baseline_scores = {kind: {name: m[kind] for name, m in rivals.items()} for kind in SLOT_KINDS}
    _say(f"{len(idx)} {cfg.data.val_split} windows ({len(slots)} slots), baselines fitted on the {fit_note} "
         f"in {time.monotonic() - t0:.1f}s; training {args.minutes:g} min, a check every {args.check_every_s:g}s")

    checks: list[dict] = []
    found = {"params": None, "device": "cpu", "beaten": False, "scoring_s": 0.0}

    def check(model, info: dict) -> None:
        if found["beaten"] and args.stop_when_beaten:
            return  # the stop asked for is on its way
        ts = time.monotonic()
        device = next(model.parameters()).device
        found["params"], found["device"] = model.num_params(), device.type
        _, pred = predict_split(model, ds_val, idx, device=device)
        report = {kind: {"model": m, "baselines": baseline_scores[kind]}
                  for kind, m in _sections(slots, pred, masks).items()}
        rows = compare_with_baselines(report)
        won = beats_baselines(rows)
        minutes = info["train_s"] / 60
        rate = info["windows"] / info["train_s"] if info["train_s"] > 0 else 0.0
        checks.append({"minutes": round(minutes, 4), "step": info["step"], "windows_per_s": round(rate, 1),
                       "won": won, "comparisons": rows})
        found["beaten"] = found["beaten"] or won
        found["scoring_s"] += time.monotonic() - ts
        _say(f"{minutes:.2f} min, step {info['step']}, {rate:.0f} windows/s: {summary_line(report)}")

    keep = getattr(args, "out", None)
    out = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="ilbot-bench-train-"))
    try:
        summary = train(args.data, out, cfg, show_progress=False, check=check, check_every_s=args.check_every_s,
                        should_stop=(lambda: found["beaten"]) if args.stop_when_beaten else None)
    finally:
        if not keep:
            shutil.rmtree(out, ignore_errors=True)
    first = next((c for c in checks if c["won"]), None)
    last = checks[-1] if checks else {"minutes": 0.0, "windows_per_s": 0.0}
    end = "beaten" if args.stop_when_beaten and summary["end"] == "cancelled" else summary["end"]
    return {"minutes_to_beat_baselines": None if first is None else first["minutes"],
            "steps_to_beat_baselines": None if first is None else first["step"],
            "windows_per_s": last["windows_per_s"], "train_minutes": last["minutes"], "steps": summary["steps"],
            "end": end, "checks": checks, "scoring_s": round(found["scoring_s"], 1),
            "eval_slots": {kind: int(m.sum()) for kind, m in masks.items()}, "baseline_fit": fit_note,
            "minutes_cap": cfg.max_minutes, "check_every_s": args.check_every_s, "device": found["device"],
            "batch_size": cfg.data.batch_size, "model_params": found["params"], "threads": torch.get_num_threads(),
            "run": str(out) if keep else None}
