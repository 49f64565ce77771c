"""`ilbot eval --model RUN_OR_CHECKPOINT --data DATASET [--split NAME] --out REPORT_DIR [--overwrite]`,
`ilbot eval calibrate --model RUN_OR_CHECKPOINT --data DATASET [--split val|calib] [--out CHECKPOINT_DIR]`
(ilbot.eval.calibrate: fits the post-hoc calibration and stores it with the checkpoint) and
`ilbot eval closed-loop` (ilbot.eval.closed_loop).

Writes REPORT_DIR/report.json (layout in ilbot.eval.report) and the PNG plots of
ilbot.eval.plots, atomically (ilbot.data.atomic): the folder appears whole or not at all, an
existing report is replaced only with `--overwrite`, any other folder is refused. `--split`
names a split the dataset has (train, val, calib: the last only in a dataset built with
`--calib-frac`); any other name is refused in one line naming the dataset and its splits, never
mapped to another. The baselines are fitted on the dataset's training split and evaluated on the
same slots as the model."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from ..data.progress import Progress
from . import beat_baselines, closed_loop
from .headline import HEADLINE


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model against the baselines (or in closed loop, or calibrate it): "
                                    "report.json + plots",
                       description="ilbot eval --model M --data DS: teacher-forced and free-running figures against "
                                   "the baselines on a dataset split. ilbot eval calibrate --model M --data DS: fit "
                                   "the post-hoc calibration of the model's heads on a split (default val) and store "
                                   "it with the checkpoint (ilbot.eval.calibrate). ilbot eval closed-loop: the agent "
                                   "plays the sandbox beside the demonstrator on N seeds (ilbot.eval.closed_loop).")
    p.add_argument("kind", nargs="?", choices=("closed-loop", "calibrate"), default=None,
                   help="closed-loop: play the sandbox beside the demonstrator instead of scoring a dataset; "
                        "calibrate: fit and store the calibration of --model on --split")
    p.add_argument("--model", default=None, help="checkpoint folder or training run folder (its best/); "
                                                 "closed-loop default: the shipped sandbox model")
    p.add_argument("--data", default=None, help="dataset folder")
    p.add_argument("--split", default=None, help="split to evaluate or calibrate on (default: val; calibrate: calib "
                        "when the dataset has it — the split a build with --calib-frac holds out — else val)")
    p.add_argument("--out", default=None, help="report folder (new, empty, or an ilbot report with --overwrite); "
                                               "calibrate: a new checkpoint folder for a calibrated copy "
                                               "(default: write into --model's checkpoint)")
    p.add_argument("--overwrite", action="store_true", help="replace the ilbot report (calibrate: checkpoint) already in --out")
    p.add_argument("--decision", choices=("macro-f1", "accuracy"), default="macro-f1",
                   help="calibrate: the event decision rule — macro-f1 (default): the offsets that maximise "
                        "macro-F1 while keeping accuracy above a floor (see --accuracy-slack, --keep-lead); "
                        "accuracy: the calibrated argmax")
    p.add_argument("--accuracy-slack", type=float, default=0.0,
                   help="calibrate, --decision macro-f1: accuracy below the calibrated argmax's the rule may give "
                        "up for macro-F1 (default 0)")
    p.add_argument("--keep-lead", type=float, default=None,
                   help="calibrate, --decision macro-f1: the share of the calibrated argmax's accuracy lead over "
                        "the Markov baseline the rule keeps at least (default 0.75; 1: the argmax's accuracy)")
    p.add_argument("--max-windows", type=int, default=0, help="evaluate a seeded random subset of this many windows (0: all)")
    p.add_argument("--baseline-windows", type=int, default=50000, help="training windows the baselines are fitted on")
    p.add_argument("--free-running-ticks", type=int, default=300, help="ticks sampled by the planner (0: skip)")
    p.add_argument("--temperature", type=float, default=1.0, help="planner temperature for free running and closed loop: multiplies the checkpoint's own sampling temperatures (default 1.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    closed_loop.add_arguments(p)
    p.set_defaults(func=run)


MAX_SEEDS, MAX_TICKS = 10_000, 1_000_000  # closed loop: game seeds, ticks per seed


def _check_closed_loop_args(args) -> None:
    """Upper bounds of closed-loop's counts and temperature (its own check has the lower ones)."""
    from ..errors import UserError
    from ..model.sampling import MAX_TEMPERATURE
    if args.seeds > MAX_SEEDS or args.ticks > MAX_TICKS:
        raise UserError(f"--seeds must be at most {MAX_SEEDS} and --ticks at most {MAX_TICKS}, "
                        f"got {args.seeds} and {args.ticks}")
    if not (math.isfinite(args.temperature) and 0 < args.temperature <= MAX_TEMPERATURE):
        raise UserError(f"--temperature must be a number in (0, {MAX_TEMPERATURE:g}], got {args.temperature!r}")


def _check_args(args) -> None:
    from ..data.schema import SEED_MAX
    from ..errors import UserError
    from ..model.sampling import MAX_TEMPERATURE
    checks = [("--seed", 0 <= args.seed <= SEED_MAX, f"an integer in 0..{SEED_MAX}"),
              ("--max-windows", args.max_windows >= 0, "an integer >= 0"),
              ("--baseline-windows", args.baseline_windows >= 0, "an integer >= 0"),
              ("--free-running-ticks", args.free_running_ticks >= 0, "an integer >= 0"),
              ("--batch-size", args.batch_size >= 1, "an integer >= 1"),
              ("--temperature", math.isfinite(args.temperature) and 0 < args.temperature <= MAX_TEMPERATURE,
               f"a number in (0, {MAX_TEMPERATURE:g}]")]
    for flag, ok, want in checks:
        if not ok:
            raise UserError(f"{flag} must be {want}, got {getattr(args, flag[2:].replace('-', '_'))!r}")


def run(args) -> int:
    from ..errors import UserError

    if args.kind == "closed-loop":
        _check_closed_loop_args(args)
        return closed_loop.run(args)
    if args.kind == "calibrate":
        from . import calibrate

        if args.split is None and args.data is not None:
            from ..data.dataset import open_dataset

            try:
                has_calib = "calib" in open_dataset(args.data).split_names
            except Exception:  # noqa: BLE001 - the calibration's own opening of the dataset says what is wrong
                has_calib = False
            args.split = "calib" if has_calib else "val"
        _check_args(args)
        return calibrate.run(args)
    args.split = args.split or "val"
    missing = [f"--{k}" for k in ("model", "data", "out") if getattr(args, k) is None]
    if missing:
        raise UserError(f"eval needs {', '.join(missing)} (or: ilbot eval closed-loop)")
    _check_args(args)
    report = evaluate_to_dir(args.model, args.data, args.out, split=args.split, max_windows=args.max_windows,
                             baseline_windows=args.baseline_windows, free_running_ticks=args.free_running_ticks,
                             temperature=args.temperature, seed=args.seed, batch_size=args.batch_size,
                             show_progress=not args.quiet, overwrite=args.overwrite)
    print(summary_table(report))
    print(beat_baselines.summary_line(report))  # position CRPS, time WIS, accuracy (ilbot.eval.beat_baselines)
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def evaluate_to_dir(model_path, data_path, out_dir, *, split: str = "val", max_windows: int = 0,
                    baseline_windows: int = 50000, free_running_ticks: int = 300, temperature: float = 1.0,
                    seed: int = 0, batch_size: int = 128, show_progress: bool = True, overwrite: bool = False) -> dict:
    """Evaluate and write the report folder `out_dir` atomically; returns the report dict."""
    from ..data.atomic import atomic_dir, prepare_output, write_private_text
    from ..data.dataset import open_dataset
    from ..model.checkpoint import load_checkpoint
    from .free_running import free_running
    from .plots import write_plots
    from .report import build_report, fit_on_training, pick_windows, predict_split

    t0 = time.monotonic()
    out = Path(out_dir)
    prepare_output(out, "report", overwrite=overwrite)  # refuse before the work
    ds = open_dataset(data_path, split=split)
    ck = load_checkpoint(model_path, expect_spec_hash=ds.spec_hash if ds.spec_hash is not None else None,
                         expect_key_vocab=ds.key_vocab)
    model = ck.model
    ds_train = open_dataset(data_path, split="train") if ("train" in ds.split_names and ds.split != "train"
                                                          and len(ds.split_names) > 1) else None

    idx = pick_windows(len(ds), max_windows, seed)
    bar = Progress(len(idx), f"eval {split}", enabled=show_progress)
    slots, model_pred = predict_split(model, ds, idx, batch_size=batch_size, progress=bar)
    bar.close()
    bar = Progress(min(baseline_windows or len(ds_train or []), len(ds_train or [])) if ds_train is not None else 0,
                   "baselines: fit", enabled=show_progress and ds_train is not None)
    baselines, fit_note = fit_on_training(ds_train, ds, slots, baseline_windows, seed, progress=bar)
    bar.close()
    report = build_report(slots, model_pred, baselines)

    free_raw = None
    if free_running_ticks:
        fidx = pick_windows(len(ds), free_running_ticks, seed + 1)
        tick_ms = float(ds.stats.get("tick_ms") or ck.stats.get("tick_ms") or 600.0)
        bar = Progress(len(fidx), "free running", enabled=show_progress)
        report["free_running"], free_raw = free_running(model, ds, fidx, tick_ms=tick_ms, temperature=temperature,
                                                        seed=seed, progress=bar)
        bar.close()
    else:
        report["free_running"] = {}
    report["meta"] = {
        "model": str(ck.path), "data": str(data_path), "split": ds.split, "n_windows": int(len(idx)),
        "windows_in_split": len(ds), "baseline_fit": fit_note, "free_running_temperature": temperature,
        "seed": seed, "checkpoint_extra": ck.meta.get("extra", {}), "elapsed_s": time.monotonic() - t0,
        "calibration": ck.meta.get("calibration"),  # the post-hoc calibration the model was scored with (None: raw heads)
    }
    text = json.dumps(report, indent=1, allow_nan=False, default=_json_default)
    preds = {"model": model_pred} | {name: b.predict(slots) for name, b in baselines.items()}
    with atomic_dir(out, "report", overwrite=overwrite) as tmp:
        write_private_text(tmp / "report.json", text)
        write_plots(tmp, report, slots, preds, free_raw)
    return report


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")





def _fmt(metric: dict, key: str, fmt: str | None) -> str:
    if key not in metric:
        return "—"
    v = metric[key]
    if isinstance(v, dict):
        return "/".join(f"{x:.1f}" for x in v.values())
    return fmt.format(v)


def interval_line(iv: dict) -> str:
    """The model's session-bootstrap intervals (ilbot.eval.intervals) as one line."""
    if not iv["figures"]:
        return f"\nmodel: one {iv['unit']} evaluated: no {iv['unit']}-bootstrap intervals (no spread between {iv['unit']}s to measure)"
    labels = {key: (label, fmt) for key, label, fmt in HEADLINE if fmt} | {
        "event_accuracy": ("accuracy", "{:.3f}"), "event_accuracy_lead_markov": ("accuracy − markov", "{:+.4f}")}
    parts = [f"{labels[k][0]} {labels[k][1].format(lo)}…{labels[k][1].format(hi)}"
             for k, (lo, hi) in iv["figures"].items() if k in labels]
    return (f"\nmodel, {iv['level']:.0%} intervals over {iv['n_units']} resampled {iv['unit']}s: " + ", ".join(parts))


def summary_table(report: dict, kinds=("in_window", "lookahead")) -> str:
    """A Markdown table per slot kind: rows = metrics, columns = model and the baselines."""
    lines = []
    for kind in kinds:
        r = report[kind]
        cols = (["model"] if "model" in r else []) + list(r["baselines"])
        get = {"model": r.get("model", {})} | r["baselines"]
        lines.append(f"\n{kind} ({report['n_slots'][kind]} slots)\n")
        lines.append("| metric | " + " | ".join(cols) + " |")
        lines.append("| --- |" + " --- |" * len(cols))
        for key, label, fmt in HEADLINE:
            lines.append(f"| {label} | " + " | ".join(_fmt(get[c], key, fmt) for c in cols) + " |")
        if "intervals" in r:
            lines.append(interval_line(r["intervals"]))
    for key in ("button_acc", "key_action_acc", "key_id_acc", "scroll_acc"):
        if key in report["all"].get("model", {}):
            lines.append(f"\n{key} (all slots): model {report['all']['model'][key]:.3f}, "
                         f"majority {report['all']['baselines']['majority'].get(key, float('nan')):.3f}")
    fr = report.get("free_running") or {}
    if fr:
        lines.append(f"\nfree running ({fr['n_ticks']} ticks): events/tick W1 {fr['events_per_tick_wasserstein']:.3f}, "
                     f"dt W1 {fr['dt_wasserstein_ms'] if fr['dt_wasserstein_ms'] is None else round(fr['dt_wasserstein_ms'], 1)} ms, "
                     f"idle rate model {fr['idle_tick_rate']['model']:.3f} vs real {fr['idle_tick_rate']['real']:.3f}")
    return "\n".join(lines)
