"""Free-running evaluation (DESIGN §10): the model samples whole ticks with its Planner, and the
sampled ticks are compared with the real ones of the same windows.

For each evaluated window the planner (its batched `sample_slots` path) gets the real context (game state and history) and plans
tick t on its own (no teacher forcing): events are drawn slot by slot until their cumulative
time crosses the tick's end. Compared with tick t's real events:

- `events_per_tick_wasserstein`: W1 distance between the events-per-tick distributions;
- `dt_wasserstein_ms`: W1 between the dt (ms) of the in-tick events, sampled vs real;
- `idle_tick_rate`: share of ticks with no event, {"model", "real"};
- `events_per_tick_mean`: {"model", "real"}.
"""

from __future__ import annotations

import numpy as np

from ..data.schema import CONTEXT_FIELDS
from .metrics import wasserstein_1d


def real_ticks(batch: dict) -> tuple[np.ndarray, list[np.ndarray]]:
    """Events per tick [B] and each tick's in-window dts from a numpy batch."""
    mask = np.asarray(batch["target_mask"], bool)  # [B, A]
    n_in = mask.sum(axis=1) - 1  # [B] (the last valid slot is the look-ahead)
    dts = [np.asarray(batch["targets"][i, :n, 0], np.float64) for i, n in enumerate(n_in)]
    return n_in, dts


def sampled_ticks(planner, batch: dict, tick_ms: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Events per planned tick [B] and each plan's dts (ms; the first from the tick start), from
    the planner's batched path (one decoder step serves every row)."""
    s = planner.sample_slots({k: batch[k] for k in CONTEXT_FIELDS}, tick_ms=tick_ms)
    counts = np.asarray(s["n_events"], np.int64)  # [B]
    dts = [np.asarray(s["dt_ms"][i][s["performed"][i]], np.float64) for i in range(len(counts))]
    return counts, dts


def compare(real_counts: np.ndarray, real_dts: list[np.ndarray], model_counts: np.ndarray, model_dts: list[np.ndarray]) -> dict:
    rd = np.concatenate(real_dts) if real_dts else np.zeros(0)
    md = np.concatenate(model_dts) if model_dts else np.zeros(0)
    return {
        "n_ticks": int(len(real_counts)),
        "events_per_tick_wasserstein": wasserstein_1d(real_counts, model_counts),
        "dt_wasserstein_ms": wasserstein_1d(rd, md) if len(rd) and len(md) else None,
        "idle_tick_rate": {"model": float((model_counts == 0).mean()), "real": float((real_counts == 0).mean())},
        "events_per_tick_mean": {"model": float(model_counts.mean()), "real": float(real_counts.mean())},
    }


def free_running(model, ds, indices: np.ndarray, *, tick_ms: float, temperature: float = 1.0, seed: int = 0,
                 batch_size: int = 64, progress=None) -> tuple[dict, dict]:
    """Plan the ticks of windows `indices`; returns (report section, raw arrays for the plots)."""
    from ..model.planner import Planner
    from .report import read_windows

    planner = Planner(model, temperature=temperature, seed=seed)
    real_c, real_d, model_c, model_d = [], [], [], []
    for start in range(0, len(indices), batch_size):
        b = read_windows(ds, indices[start:start + batch_size])
        c, d = real_ticks(b)
        real_c.append(c)
        real_d += d
        mc, md = sampled_ticks(planner, b, tick_ms)
        model_c.append(mc)
        model_d += md
        if progress is not None:
            progress.update(len(c))
    rc = np.concatenate(real_c) if real_c else np.zeros(0, np.int64)
    mc = np.concatenate(model_c) if model_c else np.zeros(0, np.int64)
    section = compare(rc, real_d, mc, model_d)
    raw = {"real_counts": rc, "model_counts": mc,
           "real_dts": np.concatenate(real_d) if real_d else np.zeros(0),
           "model_dts": np.concatenate(model_d) if model_d else np.zeros(0)}
    return section, raw
