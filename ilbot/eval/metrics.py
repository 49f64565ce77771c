"""Slot metrics of DESIGN §10, on flat slot arrays (`ilbot.eval.slots.Slots`).

A predictor (the model or a baseline) gives a `Prediction`: whichever heads it has, per slot.
`compute_metrics` returns every metric those heads allow, under the names of report.json:

- event: `event_accuracy`, `event_macro_f1`, `event_balanced_accuracy`, `event_recall` (per type
  name), `confusion` (4×4, rows = true type, columns = predicted, EventType order);
- time: `dt_mae_q50_ms`, `dt_pinball_ms` {q10, q50, q90}, `dt_coverage_q10_q90` (ideal 0.80),
  `dt_crossing_rate` (must be 0);
- xy: `xy_mae_px` (Euclidean), `x_mae_px`, `y_mae_px`, `xy_nll`, `x/y_coverage_1sigma` (ideal
  0.683), `x/y_coverage_2sigma` (ideal 0.954);
- conditional heads: `button_acc` | CLICK, `key_action_acc`, `key_id_acc` | KEY, `scroll_acc` |
  SCROLL (absent when the slots hold no such event).

Decisions where the design is silent:
- macro-F1 averages the per-class F1 over the classes present in the truth or in the predictions
  (as scikit-learn does), so a type absent from both (KEY in mouse data) does not count; balanced
  accuracy averages recall over the classes present in the truth.
- `xy_nll` is the NLL of the point per slot under the stated distribution (a diagonal Gaussian,
  Laplaces, or the Laplace scale mixture) in normalised window units, the units the model
  predicts and is trained in; lower is better.
- A metric with no slot to measure it on is left out rather than reported as NaN.
- With a position mixture (`Prediction.mix_w`), these metrics score the most probable
  component (its mean and σ); the proper scores of `ilbot.eval.scores` score the whole mixture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..data.schema import EVENT_NAMES, N_EVENT_TYPES, EventType
from ..model.loss import laplace_mix_nll
from ..model.sampling import LAPLACE_K  # σ = K·b for a Laplace prediction
from .slots import Slots

QUANTILES = (0.1, 0.5, 0.9)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@dataclass
class Prediction:
    """Per-slot predictions, aligned with a `Slots`; any head may be None (not predicted)."""

    event_probs: np.ndarray | None = None  # [S, 4] (argmax is the predicted type)
    time_q: np.ndarray | None = None  # [S, 3] q10, q50, q90 of dt, ms
    x_mu: np.ndarray | None = None  # [S] normalised
    y_mu: np.ndarray | None = None
    x_sigma: np.ndarray | None = None  # [S] normalised
    y_sigma: np.ndarray | None = None
    button: np.ndarray | None = None  # [S] predicted class
    key_action: np.ndarray | None = None
    key_id: np.ndarray | None = None
    scroll: np.ndarray | None = None
    xy_laplace: bool = False  # x_sigma, y_sigma belong to a Laplace (ModelConfig.xy_dist), not a Gaussian
    # a position mixture (the model's anchors): component weights and means [S, J], every component
    # with the scale x_sigma, y_sigma; x_mu, y_mu are then the most probable component's mean
    mix_w: np.ndarray | None = None
    mix_x: np.ndarray | None = None
    mix_y: np.ndarray | None = None
    # a Laplace scale mixture (ModelConfig.xy_dist = "laplace_mix"; xy_laplace is then True): the
    # head's shape outputs [S] (ilbot.model.heads.LaplaceMixXYHead); x_sigma, y_sigma are its 68.3 %
    # half-widths as for one Laplace
    xy_wide_logit: np.ndarray | None = None
    x_logrho: np.ndarray | None = None
    y_logrho: np.ndarray | None = None
    # the decided type per slot when it is not argmax(event_probs): a calibrated model's decision
    # rule (ilbot.model.calibration), which accuracy, macro-F1 and the confusion matrix count
    event_pred: np.ndarray | None = None

    def scale_mix(self) -> dict | None:
        """The scale mixture's parameters as the head states them (x_mu, x_logsig, …), or None."""
        if self.xy_wide_logit is None:
            return None
        return {"x_mu": self.x_mu, "y_mu": self.y_mu, "x_logsig": np.log(self.x_sigma), "y_logsig": np.log(self.y_sigma),
                "x_logrho": self.x_logrho, "y_logrho": self.y_logrho, "xy_wide_logit": self.xy_wide_logit}

    def select(self, keep: np.ndarray) -> "Prediction":
        return Prediction(**{k: (v if v is None or isinstance(v, bool) else v[keep]) for k, v in self.__dict__.items()})

    @staticmethod
    def concat(parts: list["Prediction"]) -> "Prediction":
        keys = parts[0].__dict__.keys()
        first = parts[0].__dict__
        return Prediction(**{k: (first[k] if first[k] is None or isinstance(first[k], bool)
                                 else np.concatenate([getattr(p, k) for p in parts])) for k in keys})


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int = N_EVENT_TYPES) -> np.ndarray:
    """[n, n] counts, rows = true class, columns = predicted."""
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def macro_f1(cm: np.ndarray) -> np.ndarray:
    """Macro-F1 of confusion matrices [..., n, n] (rows = true class) → [...]: the mean F1 over
    the classes present in the truth or the predictions (0 where there are none)."""
    cm = np.asarray(cm, np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)  # [..., n]
    n_true, n_pred = cm.sum(axis=-1), cm.sum(axis=-2)  # [..., n]
    recall = np.divide(tp, n_true, out=np.zeros_like(tp), where=n_true > 0)
    precision = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (n_true > 0) | (n_pred > 0)
    n_present = present.sum(axis=-1)
    return np.divide((f1 * present).sum(axis=-1), n_present, out=np.zeros(f1.shape[:-1]), where=n_present > 0)


def event_metrics(true: np.ndarray, pred: np.ndarray) -> dict:
    cm = confusion_matrix(true, pred)  # [4, 4]
    tp = np.diag(cm).astype(np.float64)
    n_true = cm.sum(axis=1).astype(np.float64)  # per true class
    in_truth = n_true > 0
    recall = np.divide(tp, n_true, out=np.zeros_like(tp), where=n_true > 0)
    return {
        "event_accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "event_macro_f1": float(macro_f1(cm)),
        "event_balanced_accuracy": float(recall[in_truth].mean()) if in_truth.any() else 0.0,
        "event_recall": {EVENT_NAMES[i]: float(recall[i]) for i in range(N_EVENT_TYPES) if in_truth[i]},
        "confusion": cm.tolist(),
    }


def pinball(y: np.ndarray, q_pred: np.ndarray, q: float) -> np.ndarray:
    """Pinball (quantile) loss per element: q·(y−ŷ) above the prediction, (1−q)·(ŷ−y) below."""
    diff = y - q_pred
    return np.maximum(q * diff, (q - 1) * diff)


def time_terms(dt: np.ndarray, time_q: np.ndarray) -> dict:
    """Per-slot terms [S] whose means are time figures: |dt − q50| and dt inside [q10, q90]."""
    return {"dt_mae_q50_ms": np.abs(dt - time_q[:, 1]),
            "dt_coverage_q10_q90": ((dt >= time_q[:, 0]) & (dt <= time_q[:, 2])).astype(np.float64)}


def time_metrics(dt: np.ndarray, time_q: np.ndarray) -> dict:
    q10, q50, q90 = time_q[:, 0], time_q[:, 1], time_q[:, 2]
    return {k: float(v.mean()) for k, v in time_terms(dt, time_q).items()} | {
        "dt_pinball_ms": {f"q{int(q * 100)}": float(pinball(dt, time_q[:, i], q).mean()) for i, q in enumerate(QUANTILES)},
        "dt_crossing_rate": float(((q10 > q50) | (q50 > q90)).mean()),
    }


def xy_terms(s: Slots, p: Prediction) -> dict:
    """Per-slot terms [S] whose means are position figures: the errors in px and, with σ, the
    point inside ±1σ."""
    dx_px = (p.x_mu - s.x) * s.w  # [S]
    dy_px = (p.y_mu - s.y) * s.h
    out = {"xy_mae_px": np.hypot(dx_px, dy_px), "x_mae_px": np.abs(dx_px), "y_mae_px": np.abs(dy_px)}
    if p.x_sigma is not None and p.y_sigma is not None:
        out["x_coverage_1sigma"] = (np.abs((s.x - p.x_mu) / p.x_sigma) <= 1).astype(np.float64)
        out["y_coverage_1sigma"] = (np.abs((s.y - p.y_mu) / p.y_sigma) <= 1).astype(np.float64)
    return out


def xy_metrics(s: Slots, p: Prediction) -> dict:
    out = {k: float(v.mean()) for k, v in xy_terms(s, p).items()}
    if p.x_sigma is not None and p.y_sigma is not None:
        zx = (s.x - p.x_mu) / p.x_sigma
        zy = (s.y - p.y_mu) / p.y_sigma
        if p.xy_wide_logit is not None:  # the scale mixture's joint likelihood
            nll = laplace_mix_nll(p.scale_mix(), s.x, s.y)
        elif p.xy_laplace:  # b = σ/K per coordinate: |z|·K + log(2σ/K)
            nll = 2 * math.log(2.0 / LAPLACE_K) + np.log(p.x_sigma) + np.log(p.y_sigma) + LAPLACE_K * (np.abs(zx) + np.abs(zy))
        else:
            nll = 2 * HALF_LOG_2PI + np.log(p.x_sigma) + np.log(p.y_sigma) + 0.5 * (zx ** 2 + zy ** 2)
        out.update({
            "xy_nll": float(nll.mean()),
            "x_coverage_2sigma": float((np.abs(zx) <= 2).mean()),
            "y_coverage_2sigma": float((np.abs(zy) <= 2).mean()),
        })
    return out


def conditional_metrics(s: Slots, p: Prediction) -> dict:
    out = {}
    heads = [("button_acc", p.button, s.button, EventType.CLICK),
             ("key_action_acc", p.key_action, s.key_action, EventType.KEY),
             ("key_id_acc", p.key_id, s.key_id, EventType.KEY),
             ("scroll_acc", p.scroll, s.scroll, EventType.SCROLL)]
    for name, pred, true, etype in heads:
        sel = s.type == int(etype)
        if pred is not None and sel.any():
            out[name] = float((pred[sel] == true[sel]).mean())
    return out


def decided_types(p: Prediction) -> np.ndarray:
    """The type each slot is predicted to be [S]: the decision rule's, else the argmax."""
    return np.argmax(p.event_probs, axis=1) if p.event_pred is None else p.event_pred


def compute_metrics(s: Slots, p: Prediction) -> dict:
    """Every metric the prediction's heads allow, on the slots `s` (see the module docstring)."""
    if len(s) == 0:
        return {}
    out: dict = {}
    if p.event_probs is not None:
        out.update(event_metrics(s.type, decided_types(p)))
    if p.time_q is not None:
        out.update(time_metrics(s.dt, p.time_q))
    if p.x_mu is not None and p.y_mu is not None:
        out.update(xy_metrics(s, p))
    out.update(conditional_metrics(s, p))
    return out


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """Earth mover's distance between two 1-D empirical distributions: ∫|F_a − F_b| over the
    merged support (what scipy.stats.wasserstein_distance computes, without scipy)."""
    a = np.sort(np.asarray(a, np.float64))
    b = np.sort(np.asarray(b, np.float64))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    support = np.concatenate([a, b])
    support.sort()
    widths = np.diff(support)  # [n-1]
    cdf_a = np.searchsorted(a, support[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, support[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * widths))
