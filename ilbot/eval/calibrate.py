"""Fitting the post-hoc calibration of a checkpoint: `ilbot eval calibrate --model M --data DS`.

The model runs teacher-forced (as `ilbot eval` runs it) on windows of one split — by default the
validation split, windows the network was not trained on; for a dataset built with `--calib-frac`,
`--split calib`: windows neither trained nor evaluated on — with its raw heads, and the
parameters of `ilbot.model.calibration.Calibration` are fitted to those slots:

- **events**: temperature T and log-prior correction b minimise the NLL of
  softmax(log p / T + b) over every slot (L-BFGS; a small L2 term on b keeps the correction of a
  type absent from the split finite). Then the decision offsets d by the rule asked for:
  `accuracy` — d = 0, the argmax of the calibrated probabilities (the Bayes decision for
  accuracy); `macro_f1` — d maximising macro-F1 among the offsets whose accuracy is at least a
  floor (coordinate ascent over a grid of −4…4 in steps of 0.1 for CLICK, KEY and SCROLL, MOVE
  the reference; d = 0 is in the grid, so the rule never does worse than the argmax on both).
  The floor is the calibrated argmax's accuracy minus `accuracy_slack`, or, where that is lower,
  the rival's accuracy plus `keep_lead` of the argmax's lead over it. The rival is the Markov
  baseline (the next type given the previous one) fitted on the same slots — in-sample, so its
  accuracy there is if anything optimistic and the floor conservative: the decision may spend
  part of the model's lead over the strongest event baseline on the rare types' recall, never
  all of it (keep_lead = 1 spends none). The floor starts from the calibrated argmax rather than
  the raw model's: the raw argmax of a class-weighted model gives accuracy away for recall.
  This is done once over all slots (the parameters for slots of unknown kind) and once per slot
  kind: T and b fitted on each kind's slots, and both kinds' offsets chosen together for the
  figures over all slots (`Calibration.event_by_kind`), when the split has slots of both kinds.
- **positions**, per slot kind (in-window, look-ahead) and axis: s = the 0.683 quantile of
  |residual| / σ, the residual measured from the mean the report scores (with anchors the most
  probable component's): 1σ then covers 68.3 % of those slots. The NLL fits σ to the residuals'
  spread; heavy-tailed mouse residuals then sit inside 1σ ~80 % of the time.
- **times**, per slot kind, with the quantiles the report scores for that kind (a crossing
  head's in-window or look-ahead set): in log1p(ms), r = (q50 − y)/(q50 − q10) and s_q10 = the
  0.9 quantile of r, so 10 % of slots fall below the scaled q10; likewise s_q90 from
  (y − q50)/(q90 − q50). [q10, q90] then covers 80 %, with 10 % on each side; q50 is unchanged.
  The same fit over all slots together gives the "all" scales, which the planner of a model
  without a crossing head uses (it cannot tell the kinds apart; ilbot.model.calibration).

Every fitted figure is exact on the fitting slots up to ties; held-out coverage is what
`ilbot eval` measures. The calibration is written into the checkpoint's config.json (atomically;
the weights are untouched) or, with `out`, into a new checkpoint folder beside it (a copy of the
weights plus the calibrated config.json, renamed into place whole). It records what it was
fitted on and the figures before and after under `fit`.

`calibrated_prediction` applies a calibration to a raw `Prediction` with the same
`apply_calibration` the evaluator and the planner use, so the "after" figures need no second
pass of the model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.schema import EVENT_NAMES, N_EVENT_TYPES, EventType
from ..errors import UserError
from ..model.calibration import KINDS, Calibration, apply_calibration
from .baselines import Markov
from .metrics import Prediction, event_metrics
from .report import kind_mask, pick_windows, predict_split, scored
from .slots import Slots

ONE_SIGMA = 0.6826894921370859  # P(|z| < 1) of a standard normal
TIME_TAIL = 0.1  # the share of slots below q10, and above q90
DECISION_GRID = np.round(np.arange(-4.0, 4.0001, 0.1), 6)
BIAS_L2 = 1e-4
KEEP_LEAD = 0.75  # the share of its accuracy lead over the Markov baseline the decision rule keeps
LOGP_FLOOR = 1e-40  # log p of a probability that underflowed to 0 in float32
FIGURES = ("event_accuracy", "event_macro_f1", "event_ece", "event_brier", "dt_coverage_q10_q90", "dt_mae_q50_ms",
           "dt_wis_ms", "x_coverage_1sigma", "y_coverage_1sigma", "xy_nll", "x_crps_px", "y_crps_px")


# ---- fitting, on flat slot arrays ------------------------------------------------------------

def coverage_scale(residual: np.ndarray, sigma: np.ndarray, target: float = ONE_SIGMA) -> float:
    """The factor s with P(|residual| ≤ s·σ) = target over the given slots ([S] each)."""
    z = np.abs(np.asarray(residual, np.float64)) / np.maximum(np.asarray(sigma, np.float64), 1e-12)
    if z.size == 0:
        raise ValueError("coverage_scale: no slots")
    return float(min(max(np.quantile(z, target), 1e-3), 1e3))


def quantile_scales(dt: np.ndarray, time_q: np.ndarray, tail: float = TIME_TAIL) -> tuple[float, float]:
    """(s_q10, s_q90): the scales of the gaps q50 − q10 and q90 − q50 in log1p(ms) that put `tail`
    of the slots below the scaled q10 and `tail` above the scaled q90. dt [S] ms, time_q [S, 3]."""
    if len(dt) == 0:
        raise ValueError("quantile_scales: no slots")
    lq = np.log1p(np.maximum(np.asarray(time_q, np.float64), 0.0))
    ly = np.log1p(np.maximum(np.asarray(dt, np.float64), 0.0))
    l10, l50, l90 = lq[:, 0], lq[:, 1], lq[:, 2]
    r_lo = (l50 - ly) / np.maximum(l50 - l10, 1e-9)  # > s_lo: below the scaled q10
    r_hi = (ly - l50) / np.maximum(l90 - l50, 1e-9)  # > s_hi: above the scaled q90
    return (float(np.clip(np.quantile(r_lo, 1.0 - tail), 0.0, 1e3)),
            float(np.clip(np.quantile(r_hi, 1.0 - tail), 0.0, 1e3)))


def log_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(probs, np.float64), LOGP_FLOOR))


def fit_event_scaling(logp: np.ndarray, types: np.ndarray, l2: float = BIAS_L2) -> tuple[float, np.ndarray]:
    """(T, b [4]) minimising the mean NLL of softmax(logp / T + b) over the slots (+ l2·|b|²);
    b is centred (softmax does not see a common shift). logp [S, 4] log-probabilities (or
    logits), types [S]."""
    if len(types) == 0:
        raise ValueError("fit_event_scaling: no slots")
    z = torch.as_tensor(np.asarray(logp, np.float64))
    y = torch.as_tensor(np.asarray(types, np.int64))
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t, b], lr=1.0, max_iter=500, tolerance_grad=1e-10, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(z / log_t.exp() + b, y) + l2 * (b * b).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(np.clip(math.exp(float(log_t.detach())), 0.05, 100.0))
    bias = b.detach().numpy().copy()
    bias = np.clip(bias - bias.mean(), -50.0, 50.0)
    return t, bias


def choose_decision_offset(logp_cal: np.ndarray, types: np.ndarray, rule: str = "macro_f1",
                           accuracy_slack: float = 0.0, rival_accuracy: float | None = None,
                           keep_lead: float = KEEP_LEAD, groups: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Decision offsets d [4] for argmax(logp_cal + d) under `rule` (module docstring), and
    {"accuracy_floor", "accuracy", "macro_f1", "rival_accuracy"} of the chosen decision on these
    slots. rival_accuracy: the strongest baseline's accuracy on them (None: no rival). With
    `groups` [S] (0…G−1, e.g. the slot kind) each group gets its own offsets, d [G, 4], chosen
    together for the figures over all slots."""
    g = np.zeros(len(types), np.int64) if groups is None else np.asarray(groups, np.int64)
    G = int(g.max()) + 1 if len(g) else 1

    def figures(d):
        m = event_metrics(types, np.argmax(logp_cal + d[g], axis=1))
        return m["event_accuracy"], m["event_macro_f1"]

    d = np.zeros((G, N_EVENT_TYPES))
    acc0, f10 = figures(d)
    floor = acc0 - accuracy_slack
    if rival_accuracy is not None and acc0 > rival_accuracy:
        floor = min(floor, rival_accuracy + keep_lead * (acc0 - rival_accuracy))
    if rule == "accuracy":
        return (d[0] if groups is None else d), {"accuracy_floor": None, "accuracy": acc0, "macro_f1": f10,
                                                 "rival_accuracy": rival_accuracy}
    if rule != "macro_f1":
        raise ValueError(f"decision rule must be 'accuracy' or 'macro_f1', got {rule!r}")
    best = (f10, acc0)
    free = [(j, k) for j in range(G) for k in range(N_EVENT_TYPES) if k != int(EventType.MOVE)]
    for _ in range(4):  # coordinate ascent; stops when a pass changes nothing
        changed = False
        for j, k in free:
            for v in DECISION_GRID:
                if v == d[j, k]:
                    continue
                cand = d.copy()
                cand[j, k] = v
                acc, f1 = figures(cand)
                if acc >= floor - 1e-12 and (f1, acc) > best:
                    best, d, changed = (f1, acc), cand, True
        if not changed:
            break
    chosen = {"accuracy_floor": floor, "accuracy": best[1], "macro_f1": best[0], "rival_accuracy": rival_accuracy}
    return (d[0] if groups is None else d), chosen


def rival_accuracy(slots: Slots) -> float:
    """The Markov baseline's event accuracy on `slots`, fitted on them (the decision rule's rival)."""
    probs = Markov().fit(slots).predict(slots).event_probs  # [S, 4]
    return event_metrics(slots.type, np.argmax(probs, axis=1))["event_accuracy"]


def fit_calibration(slots: Slots, raw: Prediction, *, decision: str = "macro_f1", accuracy_slack: float = 0.0,
                    keep_lead: float = KEEP_LEAD) -> Calibration:
    """The calibration of a model whose raw (uncalibrated) teacher-forced predictions on `slots`
    are `raw` (ilbot.eval.report.predict_split). A slot kind without slots keeps scale 1."""
    logp = log_probs(raw.event_probs)
    rival = rival_accuracy(slots)

    def scaled(keep):  # (T, b, calibrated log-probabilities) fitted on the slots `keep`
        t, bias = fit_event_scaling(logp[keep], slots.type[keep])
        z = logp[keep] / t + bias
        return t, bias, z - np.logaddexp.reduce(z, axis=1, keepdims=True)

    t, bias, logp_cal = scaled(np.ones(len(slots.type), bool))  # for slots of unknown kind
    offset, chosen = choose_decision_offset(logp_cal, slots.type, decision, accuracy_slack, rival, keep_lead)
    by_kind = None
    masks = [kind_mask(slots, kind) for kind in KINDS]
    if all(m.any() for m in masks):  # each kind its own T and b, and offsets chosen over all slots
        fits = [scaled(m) for m in masks]
        logp_kind = np.zeros_like(logp)
        for m, (_, _, lp) in zip(masks, fits):
            logp_kind[m] = lp
        groups = np.select(masks, np.arange(len(KINDS)))
        d_kind, chosen_kind = choose_decision_offset(logp_kind, slots.type, decision, accuracy_slack, rival, keep_lead,
                                                     groups=groups)
        by_kind = {kind: {"temperature": ft, "bias": tuple(float(v) for v in fb), "decision_offset": tuple(float(v) for v in dk)}
                   for kind, (ft, fb, _), dk in zip(KINDS, fits, d_kind)}
        chosen = chosen_kind
    sigma, times = {}, {"all": quantile_scales(slots.dt, raw.time_q)}
    for kind in KINDS:
        keep = kind_mask(slots, kind)
        if not keep.any():
            sigma[kind], times[kind] = (1.0, 1.0), (1.0, 1.0)
            continue
        sigma[kind] = (coverage_scale(slots.x[keep] - raw.x_mu[keep], raw.x_sigma[keep]),
                       coverage_scale(slots.y[keep] - raw.y_mu[keep], raw.y_sigma[keep]))
        times[kind] = quantile_scales(slots.dt[keep], raw.time_q[keep])
    return Calibration(event_temperature=t, event_bias=tuple(float(v) for v in bias),
                       decision_offset=tuple(float(v) for v in offset), decision_rule=decision,
                       sigma_scale=sigma, time_scale=times,
                       fit={"decision": {k: (None if v is None else float(v)) for k, v in chosen.items()}},
                       event_by_kind=by_kind)


def calibrated_prediction(raw: Prediction, cal: Calibration, lookahead: np.ndarray) -> Prediction:
    """`raw` as the calibrated model predicts it: apply_calibration on the flat slots (lookahead
    [S] bool; `raw.time_q` holds each slot's own kind's quantiles, as the report picks them)."""
    heads = {"event_logits": log_probs(raw.event_probs), "time_q": raw.time_q,
             "x_logsig": np.log(raw.x_sigma), "y_logsig": np.log(raw.y_sigma)}
    c = apply_calibration(heads, cal, np.asarray(lookahead, bool))
    z = c["event_logits"]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    return dataclasses.replace(raw, event_probs=p / p.sum(axis=1, keepdims=True), time_q=c["time_q"],
                               x_sigma=np.exp(c["x_logsig"]), y_sigma=np.exp(c["y_logsig"]),
                               event_pred=np.asarray(c["event_decision"], np.int64))


def figures(slots: Slots, pred: Prediction) -> dict:
    """The headline figures (FIGURES) per slot kind (all, in_window, lookahead), plus the argmax's
    accuracy and macro-F1 when the decision is not the argmax."""
    out = {}
    for kind in ("all",) + KINDS:
        keep = kind_mask(slots, kind)
        if not keep.any():
            continue
        s, p = slots.select(keep), pred.select(keep)
        m = scored(s, p, detail=False)
        f = {k: _finite(m[k]) for k in FIGURES if k in m}
        if p.event_pred is not None and p.event_probs is not None:
            am = event_metrics(s.type, np.argmax(p.event_probs, axis=1))
            f["event_accuracy_argmax"] = am["event_accuracy"]
            f["event_macro_f1_argmax"] = am["event_macro_f1"]
        f["slots"] = int(keep.sum())
        out[kind] = f
    return out


def _finite(v):
    return float(v) if isinstance(v, (int, float, np.floating)) and math.isfinite(v) else None


# ---- the command -----------------------------------------------------------------------------

def _check_copy_target(out: Path, overwrite: bool) -> None:
    """`out` may take a calibrated copy: absent, an empty folder, or (with overwrite) an ilbot
    checkpoint folder. Anything else is a one-line refusal."""
    from ..model.checkpoint import CONFIG, WEIGHTS, read_checkpoint_meta

    if out.is_symlink():
        raise UserError(f"{out}: is a symbolic link; give the real path, ilbot does not write through links")
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; the calibrated checkpoint goes into a folder")
    names = {p.name for p in out.iterdir()}
    if not names:
        return
    if not names <= {CONFIG, WEIGHTS}:
        raise UserError(f"{out}: folder is not empty and is not an ilbot checkpoint; refusing to touch it, choose another folder")
    try:
        read_checkpoint_meta(out)
    except UserError as e:
        raise UserError(f"{out}: not a readable ilbot checkpoint, refusing to replace it ({e})") from None
    if not overwrite:
        raise UserError(f"{out}: a checkpoint already exists there; use --overwrite to replace it")


def write_copy(src_dir: Path, out: Path, cal: Calibration, overwrite: bool) -> Path:
    """A new checkpoint folder `out`: src_dir's weights and config.json with `cal`, built in a temp
    folder beside it and renamed into place (an existing checkpoint there, with overwrite, is
    renamed aside first and removed last)."""
    from ..data.atomic import make_private, private_dir
    from ..model.checkpoint import CONFIG, WEIGHTS, write_calibration

    _check_copy_target(out, overwrite)
    parent = private_dir(out.parent if str(out.parent) else Path("."))
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.tmp-"))
    old = None
    try:
        shutil.copyfile(src_dir / WEIGHTS, tmp / WEIGHTS)
        shutil.copyfile(src_dir / CONFIG, tmp / CONFIG)
        make_private(tmp)
        write_calibration(tmp, cal)
        _check_copy_target(out, overwrite)  # again: it may have changed meanwhile
        if out.exists():
            if any(out.iterdir()):
                old = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.old-"))
                os.rename(out, old)
            else:
                os.rmdir(out)
        os.rename(tmp, out)
    except OSError as e:
        if old is not None and not out.exists():
            os.rename(old, out)
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{out}: writing the calibrated checkpoint failed ({e.strerror or e}); nothing there was changed") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def calibrate(model_path, data_path, *, split: str = "val", out=None, overwrite: bool = False, max_windows: int = 0,
              seed: int = 0, decision: str = "macro_f1", accuracy_slack: float = 0.0, keep_lead: float = KEEP_LEAD, batch_size: int = 256,
              progress=None) -> dict:
    """Fit the calibration of the checkpoint at `model_path` on `split` windows of the dataset and
    write it (into that checkpoint, or into the new checkpoint folder `out`). Returns
    {"checkpoint": folder written, "calibration": Calibration, "before": figures, "after": figures}."""
    from ..data.dataset import open_dataset
    from ..model.checkpoint import load_checkpoint, write_calibration

    if out is not None:
        _check_copy_target(Path(out), overwrite)  # refuse before the work
    ds = open_dataset(data_path, split=split)
    ck = load_checkpoint(model_path, expect_spec_hash=ds.spec_hash, expect_key_vocab=ds.key_vocab)
    idx = pick_windows(len(ds), max_windows, seed)
    if len(idx) == 0:
        raise UserError(f"{data_path}: split {split!r} has no windows to calibrate on")
    model = ck.model
    model.calibration = None  # fit on the raw heads (a calibration already there is replaced, not compounded)
    slots, raw = predict_split(model, ds, idx, batch_size=batch_size, progress=progress)
    cal = fit_calibration(slots, raw, decision=decision, accuracy_slack=accuracy_slack, keep_lead=keep_lead)
    before, after = figures(slots, raw), figures(slots, calibrated_prediction(raw, cal, slots.lookahead))
    fit = dict(cal.fit) | {"split": ds.split, "data": str(data_path), "windows": int(len(idx)), "seed": seed,
                           "windows_in_split": len(ds), "decision_rule": decision, "accuracy_slack": accuracy_slack,
                           "keep_lead": keep_lead,
                           "before": before, "after": after}
    cal = dataclasses.replace(cal, fit=json.loads(json.dumps(fit, allow_nan=False)))
    written = write_copy(ck.path, Path(out), cal, overwrite) if out is not None else write_calibration(ck.path, cal)
    return {"checkpoint": written, "calibration": cal, "before": before, "after": after}


ROWS = [("event_accuracy", "accuracy (decision)", "{:.3f}"), ("event_accuracy_argmax", "accuracy (argmax)", "{:.3f}"),
        ("event_macro_f1", "macro-F1 (decision)", "{:.3f}"), ("event_macro_f1_argmax", "macro-F1 (argmax)", "{:.3f}"),
        ("event_ece", "event ECE", "{:.3f}"), ("event_brier", "event Brier", "{:.3f}"),
        ("dt_coverage_q10_q90", "[q10,q90] cov (0.80)", "{:.3f}"), ("dt_wis_ms", "dt WIS ms", "{:.1f}"),
        ("x_coverage_1sigma", "x 1σ cov (0.683)", "{:.3f}"), ("y_coverage_1sigma", "y 1σ cov (0.683)", "{:.3f}"),
        ("xy_nll", "xy NLL", "{:.3f}"), ("x_crps_px", "x CRPS px", "{:.2f}"), ("y_crps_px", "y CRPS px", "{:.2f}")]


def summary(result: dict) -> str:
    """The fitted parameters and a before → after table per slot kind."""
    cal, before, after = result["calibration"], result["before"], result["after"]
    names = [EVENT_NAMES[k] for k in range(N_EVENT_TYPES)]

    def events(t, b, d):
        return (f"temperature {t:.3f}, log-prior correction " + ", ".join(f"{n} {v:+.2f}" for n, v in zip(names, b))
                + ", offsets " + ", ".join(f"{n} {v:+.1f}" for n, v in zip(names, d)))

    lines = [f"events (decision rule {cal.decision_rule}), slots of unknown kind: " + events(*cal.events(None))]
    for kind in KINDS:
        if cal.event_by_kind is not None:
            lines.append(f"events, {kind}: " + events(*cal.events(kind)))
    for kind in KINDS:
        sx, sy = cal.sigma_scale[kind]
        s10, s90 = cal.time_scale[kind]
        lines.append(f"{kind}: σ scale x {sx:.3f} y {sy:.3f}; time scale q10 {s10:.3f} q90 {s90:.3f}")
    s10, s90 = cal.time_scale["all"]
    lines.append(f"all slots (the planner's waits without a crossing head): time scale q10 {s10:.3f} q90 {s90:.3f}")
    kinds = [k for k in ("all",) + KINDS if k in before]
    lines.append("")
    lines.append("| figure | " + " | ".join(f"{k} ({before[k]['slots']} slots): raw → calibrated" for k in kinds) + " |")
    lines.append("| --- |" + " --- |" * len(kinds))
    for key, label, fmt in ROWS:
        cells = []
        for k in kinds:
            b = before[k].get(key if key in before[k] else key.removesuffix("_argmax"))
            a = after[k].get(key)
            cells.append(f"{_fmt(b, fmt)} → {_fmt(a, fmt)}")
        if any(c != "— → —" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(v, fmt: str) -> str:
    return "—" if v is None else fmt.format(v)


def run(args) -> int:
    """`ilbot eval calibrate` (ilbot.eval.commands)."""
    from ..data.progress import Progress

    missing = [f"--{k}" for k in ("model", "data") if getattr(args, k) is None]
    if missing:
        raise UserError(f"eval calibrate needs {', '.join(missing)}")
    if not (math.isfinite(args.accuracy_slack) and 0.0 <= args.accuracy_slack <= 1.0):
        raise UserError(f"--accuracy-slack must be a share in [0, 1], got {args.accuracy_slack!r}")
    keep_lead = KEEP_LEAD if args.keep_lead is None else args.keep_lead
    if not (math.isfinite(keep_lead) and 0.0 <= keep_lead <= 1.0):
        raise UserError(f"--keep-lead must be a share in [0, 1], got {keep_lead!r}")
    bar = Progress(0, "calibrate: predict", enabled=False)
    if not args.quiet:
        from ..data.dataset import open_dataset

        n = len(pick_windows(len(open_dataset(args.data, split=args.split)), args.max_windows, args.seed))
        bar = Progress(n, f"calibrate {args.split}", enabled=True)
    try:
        result = calibrate(args.model, args.data, split=args.split, out=args.out, overwrite=args.overwrite,
                           max_windows=args.max_windows, seed=args.seed, decision=args.decision.replace("-", "_"),
                           accuracy_slack=args.accuracy_slack, keep_lead=keep_lead, batch_size=args.batch_size,
                           progress=bar)
    finally:
        bar.close()
    print(summary(result))
    print(f"calibration written to {Path(result['checkpoint']) / 'config.json'}")
    if args.json:
        print(json.dumps({"checkpoint": str(result["checkpoint"]), "calibration": result["calibration"].to_dict()},
                         allow_nan=False))
    return 0
