"""Session-bootstrap intervals of the model's headline figures: how far each would move on another
draw of sessions.

A figure of the report is measured on the slots of a few sessions (the Balabit session split
evaluates 11). Those slots are not independent draws. One idle stretch repeats its look-ahead
event in every window of the stretch, so a single long pause can carry thousands of look-ahead
slots, and sessions differ in how their user moves. Whether a figure's miss of its band (1σ
coverage 0.683 ± 0.03, say) or a lead over a baseline says anything about the model depends on
that spread, which this module measures.

The resampled unit is the session (`Slots.session`; a slot of unknown session is its own window's
unit). Each of `RESAMPLES` resamples draws as many units as there are, with replacement, and
recomputes every figure from per-unit sufficient statistics: sums and counts for the figures that
are means over slots, confusion matrices for macro-F1. A resample then costs a matrix product,
not a pass over the slots. The interval is the percentile interval at `LEVEL` (5 % … 95 %).

Figures (`intervals` in each slot section of report.json, model only): event accuracy, macro-F1,
the accuracy lead over the Markov baseline (model − markov on the same slots), dt q50 MAE,
[q10, q90] coverage, xy MAE and x / y 1σ coverage, whichever the prediction has.
"""

from __future__ import annotations

import numpy as np

from .metrics import Prediction, decided_types, macro_f1, time_terms, xy_terms
from .slots import Slots

RESAMPLES = 1000
LEVEL = 0.90
CHUNK_ENTRIES = 2_000_000  # resample counts held at once (16 MB), so window units of a large split fit


def units(slots: Slots) -> np.ndarray:
    """The resampled unit of every slot [S] (0…U−1): its session, else its own window."""
    session = slots.session if slots.session is not None else np.full(len(slots), -1, np.int64)
    key = np.where(session >= 0, session, -1 - slots.window)  # windows of unknown session: distinct negative keys
    return np.unique(key, return_inverse=True)[1].reshape(-1)


def mean_terms(slots: Slots, pred: Prediction, markov: Prediction | None) -> dict:
    """{figure: per-slot term [S]} for the figures that are means over slots."""
    terms = {}
    if pred.event_probs is not None:
        correct = (decided_types(pred) == slots.type).astype(np.float64)
        terms["event_accuracy"] = correct
        if markov is not None and markov.event_probs is not None:
            terms["event_accuracy_lead_markov"] = correct - (decided_types(markov) == slots.type)
    if pred.time_q is not None:
        terms |= time_terms(slots.dt, pred.time_q)
    if pred.x_mu is not None and pred.y_mu is not None:
        terms |= {k: v for k, v in xy_terms(slots, pred).items() if k not in ("x_mae_px", "y_mae_px")}
    return terms


def unit_sums(slots: Slots, pred: Prediction, markov: Prediction | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(unit of every slot [S], slots per unit [U], {figure: its per-slot terms summed per unit [U]})
    for the figures that are means over slots; a unit's figure is its sum / its slots."""
    u = units(slots)
    n_units = int(u.max()) + 1 if len(u) else 0
    size = np.bincount(u, minlength=n_units).astype(np.float64)
    return u, size, {name: np.bincount(u, weights=term, minlength=n_units)
                     for name, term in mean_terms(slots, pred, markov).items()}


def session_bootstrap(slots: Slots, pred: Prediction, markov: Prediction | None = None, *,
                      resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0) -> dict:
    """{"unit", "n_units", "level", "resamples", "figures": {figure: [lo, hi]}} for the slots
    given (the caller selects a slot kind). With fewer than two units there is no spread to
    measure, and "figures" is empty."""
    u, slots_per_unit, sums = unit_sums(slots, pred, markov)
    n_units = len(slots_per_unit)
    named = slots.session is not None and bool((slots.session >= 0).any())
    out = {"unit": "session" if named else "window", "n_units": n_units, "level": level, "resamples": resamples,
           "figures": {}}
    if n_units < 2:
        return out
    per_unit = dict(sums)  # {figure: [U]}, and the confusion counts [U, k*k] for macro-F1
    if pred.event_probs is not None:
        k = pred.event_probs.shape[1]
        cell = slots.type * k + decided_types(pred)  # [S] the confusion cell of each slot
        per_unit["event_macro_f1"] = np.bincount(u * k * k + cell, minlength=n_units * k * k).reshape(
            n_units, k * k).astype(np.float64)
    values: dict = {name: [] for name in per_unit}
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_ENTRIES // n_units)  # resamples drawn at once: counts stay ≤ CHUNK_ENTRIES
    for start in range(0, resamples, chunk):
        m = min(chunk, resamples - start)
        # counts[b, j]: how often resample b drew unit j — a multinomial draw of n_units from n_units
        counts = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=m).astype(np.float64)  # [m, U]
        n = counts @ slots_per_unit  # [m] slots in each resample (never 0: every unit has slots)
        for name, stat in per_unit.items():
            drawn = counts @ stat  # [m] sums, or [m, k*k] confusion counts
            values[name].append(macro_f1(drawn.reshape(m, k, k)) if name == "event_macro_f1" else drawn / n)
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    for name, parts in values.items():
        v = np.concatenate(parts)
        out["figures"][name] = [float(np.quantile(v, lo_q)), float(np.quantile(v, hi_q))]
    return out
