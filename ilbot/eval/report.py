"""The evaluation report (DESIGN §10): model and baselines, side by side, on the same slots.

`evaluate(...)` reads the evaluated split in batches, runs the model teacher-forced (every head
on every valid target slot, given the true previous slots), fits the baselines on the
training split, and computes every metric (ilbot.eval.metrics) and proper score
(ilbot.eval.scores) three ways (all slots, in-window slots, the look-ahead slot) and per user.
Layout of report.json:

    {"n_slots": {"all", "in_window", "lookahead"}, "all": R, "in_window": R, "lookahead": R,
     "per_user": {user: {"n_slots": ..., "all": R, "in_window": R, "lookahead": R}},
     "free_running": {...}, "meta": {...}}
    R = {"model": M, "baselines": {"majority": M, "markov": M, "dt_quantiles": M,
                                   "previous_position": M, "last_click": M},
         "intervals": I}
    I = the model's session-bootstrap intervals (ilbot.eval.intervals): {"unit", "n_units",
        "level", "resamples", "figures": {figure: [lo, hi]}}; in the three slot sections only

The tables behind the plots (PIT histograms, reliability bins) are in the three slot sections,
not per user.

Decisions: the baselines are fitted on at most `baseline_windows` training windows (a seeded
random subset; the fit is a few counts and quantiles, so 50 k windows pin them down); the
evaluated split can be capped at `max_windows` (a seeded random subset, sorted for read
locality). A dataset without a training split (only one split) fits the baselines on the
evaluated windows themselves, and the report says so in meta.baseline_fit. A model with a
crossing time head (ModelConfig.time_head) is scored with the quantiles of each slot's kind
(in-window or look-ahead), the conditioning the dt_quantiles baseline has; its crossing
probability itself is scored by the training loss. A model with position anchors has its point
metrics (MAE, NLL, coverage) at its most probable component's mean, with that component's σ,
and its proper scores (CRPS, PIT) on the whole mixture. A calibrated model (`model.calibration`,
ilbot.model.calibration) is scored with its calibrated heads, and its events with its decision
rule (accuracy, macro-F1, confusion) and its calibrated probabilities (Brier, ECE, reliability).
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.schema import CONTEXT_FIELDS
from ..model.anchors import best_component_xy
from ..model.calibration import apply_calibration
from ..model.loss import lookahead_slots
from .baselines import fit_baselines
from .intervals import session_bootstrap
from .metrics import Prediction, compute_metrics
from .scores import proper_scores
from .slots import Slots, extract_slots

SLOT_KINDS = ("all", "in_window", "lookahead")
MODEL_KEYS = CONTEXT_FIELDS + ("targets", "target_mask")  # what the model reads in teacher forcing


def read_windows(ds, indices: np.ndarray) -> dict:
    """A batch of windows as numpy arrays, with window_size, user and session."""
    idx = np.sort(np.asarray(indices, np.int64))
    b = dict(ds.batch(idx))
    for key in ("window_size", "user", "session"):
        if key not in b:
            b[key] = np.asarray(ds[key][idx])
    return b


def pick_windows(n: int, cap: int, seed: int) -> np.ndarray:
    """All of range(n), or a seeded random subset of `cap`, sorted."""
    if not cap or cap >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=cap, replace=False))


def collect_slots(ds, indices: np.ndarray, batch_size: int = 512, progress=None) -> Slots:
    parts = []
    for start in range(0, len(indices), batch_size):
        b = read_windows(ds, indices[start:start + batch_size])
        parts.append(extract_slots(b, window_offset=start))
        if progress is not None:
            progress.update(len(b["targets"]))
    return Slots.concat(parts)


@torch.no_grad()
def model_prediction(model, batch: dict, device="cpu") -> Prediction:
    """Teacher-forced heads of `model` on a numpy batch, for its valid slots, in the row-major
    slot order `extract_slots` uses."""
    t = {k: torch.from_numpy(np.ascontiguousarray(batch[k])).to(device) for k in MODEL_KEYS if k in batch}
    out = model(t)  # teacher-forced: targets and target_mask are in the batch
    m = t["target_mask"].bool()  # [B, A]
    # post-hoc calibration (ilbot.model.calibration; the planner applies the same), slot kind from the data
    out = apply_calibration(out, getattr(model, "calibration", None), lookahead_slots(m))

    def pick(name):  # [B, A, ...] → [S, ...] numpy float64
        return out[name][m].float().cpu().numpy().astype(np.float64)

    def argmax(name):
        return out[name][m].argmax(-1).cpu().numpy().astype(np.int64)

    if "cross_logit" in out:  # a crossing time head: each slot's quantiles given its kind, as dt_quantiles has it
        la = lookahead_slots(m).unsqueeze(-1)  # [B, A, 1]
        out = {**out, "time_q": torch.where(la, out["time_q_la"], out["time_q"])}
    mix = {}
    if "anchor_logits" in out:  # the whole mixture, for the proper scores
        mix = {"mix_w": torch.softmax(out["anchor_logits"][m].float(), -1).cpu().numpy().astype(np.float64),
               "mix_x": pick("x_mu")[:, None] + pick("anchor_shift")[..., 0],  # [S, J]
               "mix_y": pick("y_mu")[:, None] + pick("anchor_shift")[..., 1]}
    if "xy_wide_logit" in out:  # a Laplace scale mixture: its shape
        mix = {k: pick(k) for k in ("xy_wide_logit", "x_logrho", "y_logrho")}
    xy = best_component_xy(out)  # [B, A, 2]: with anchors, the most probable component's mean
    out = {**out, "x_mu": xy[..., 0], "y_mu": xy[..., 1]}
    return Prediction(**mix,
        event_probs=torch.softmax(out["event_logits"][m].float(), -1).cpu().numpy().astype(np.float64),
        time_q=pick("time_q"),
        x_mu=pick("x_mu"), y_mu=pick("y_mu"),
        x_sigma=np.exp(pick("x_logsig")), y_sigma=np.exp(pick("y_logsig")),
        button=argmax("button_logits"), key_action=argmax("key_action_logits"),
        key_id=argmax("key_id_logits"), scroll=argmax("scroll_y_logits"),
        event_pred=out["event_decision"][m].cpu().numpy().astype(np.int64) if "event_decision" in out else None,
        xy_laplace=model.cfg.xy_dist in ("laplace", "laplace_mix"),
    )


def predict_split(model, ds, indices: np.ndarray, batch_size: int = 256, device="cpu", progress=None) -> tuple[Slots, Prediction | None]:
    """Slots of the windows `indices` and, when `model` is given, its predictions for them."""
    slots, preds = [], []
    if model is not None:
        model.eval()
    for start in range(0, len(indices), batch_size):
        b = read_windows(ds, indices[start:start + batch_size])
        slots.append(extract_slots(b, window_offset=start))
        if model is not None:
            preds.append(model_prediction(model, b, device))
        if progress is not None:
            progress.update(len(b["targets"]))
    return Slots.concat(slots), (Prediction.concat(preds) if preds else None)


def kind_mask(slots: Slots, kind: str) -> np.ndarray:
    if kind == "all":
        return np.ones(len(slots), bool)
    if kind == "in_window":
        return ~slots.lookahead
    if kind == "lookahead":
        return slots.lookahead.copy()
    raise ValueError(kind)


def scored(s: Slots, p: Prediction, detail: bool) -> dict:
    """M: the slot metrics and the proper scores of one predictor."""
    return compute_metrics(s, p) | proper_scores(s, p, detail=detail)


def section(slots: Slots, model_pred: Prediction | None, baseline_preds: dict[str, Prediction], keep: np.ndarray,
            detail: bool = True) -> dict:
    """R = {"model": M, "baselines": {name: M}} on the slots `keep` (detail: with the PIT and
    reliability tables)."""
    s = slots.select(keep)
    r: dict = {}
    if model_pred is not None:
        r["model"] = scored(s, model_pred.select(keep), detail)
    r["baselines"] = {name: scored(s, p.select(keep), detail) for name, p in baseline_preds.items()}
    return r


def build_report(slots: Slots, model_pred: Prediction | None, baselines: dict) -> dict:
    """The report's slot sections (n_slots, all/in_window/lookahead, per_user)."""
    bpreds = {name: b.predict(slots) for name, b in baselines.items()}
    report: dict = {"n_slots": {k: int(kind_mask(slots, k).sum()) for k in SLOT_KINDS}}
    for kind in SLOT_KINDS:
        keep = kind_mask(slots, kind)
        report[kind] = section(slots, model_pred, bpreds, keep)
        if model_pred is not None and keep.any():
            markov = bpreds["markov"].select(keep) if "markov" in bpreds else None
            report[kind]["intervals"] = session_bootstrap(slots.select(keep), model_pred.select(keep), markov)
    per_user: dict = {}
    users = np.unique(slots.user)
    if len(users) and not (len(users) == 1 and users[0] < 0):
        for u in users:
            is_u = slots.user == u
            entry = {"n_slots": {k: int((kind_mask(slots, k) & is_u).sum()) for k in SLOT_KINDS}}
            for kind in SLOT_KINDS:
                entry[kind] = section(slots, model_pred, bpreds, kind_mask(slots, kind) & is_u, detail=False)
            per_user[str(int(u))] = entry
    report["per_user"] = per_user
    return report


def fit_on_training(ds_train, ds_eval, eval_slots: Slots, cap: int, seed: int, progress=None) -> tuple[dict, str]:
    """Fit the baselines on the training split (or, lacking one, on the evaluated slots)."""
    if ds_train is None:
        return fit_baselines(eval_slots), "evaluated split (the dataset has no separate training split)"
    idx = pick_windows(len(ds_train), cap, seed)
    train_slots = collect_slots(ds_train, idx, progress=progress)
    return fit_baselines(train_slots), f"training split, {len(idx)} windows, {len(train_slots)} slots"
