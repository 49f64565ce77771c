"""Synthetic dataset windows (DESIGN §5 layout) for tests and the latency benchmark.

Each window's history ticks and targets hold a random number of events with plausible fields:
mostly MOVEs with some CLICKs, KEY presses/releases and SCROLLs, dt of a few to a few hundred ms,
positions inside the window; the targets end with a look-ahead slot whose dt crosses the tick.
"""

from __future__ import annotations

import numpy as np

from ..data.schema import A, F, HISTORY_FIELDS, TARGET_FIELDS, TICK_MS, UNKNOWN_POINTER, T, EventType, H, TG


def _events(rng: np.random.Generator, n: int, vocab: int) -> np.ndarray:
    """n random events as history rows [n, 8] (dt filled by the caller)."""
    rows = np.zeros((n, len(HISTORY_FIELDS)), np.float32)
    types = rng.choice(4, size=n, p=[0.1, 0.08, 0.05, 0.77])
    rows[:, H["x"]], rows[:, H["y"]] = rng.uniform(0.05, 0.95, n), rng.uniform(0.05, 0.95, n)
    rows[:, H["type"]] = types
    rows[:, H["button"]] = np.where(types == EventType.CLICK, rng.integers(1, 4, n), 0)
    rows[:, H["key_action"]] = np.where(types == EventType.KEY, rng.integers(1, 3, n), 0)
    rows[:, H["key_id"]] = np.where(types == EventType.KEY, rng.integers(1, vocab, n), 0)
    rows[:, H["scroll_y"]] = np.where(types == EventType.SCROLL, rng.integers(1, 3, n), 0)
    return rows


def synthetic_windows(n: int, *, seed: int = 0, max_events: int = 20, vocab: int = 98,
                      n_ticks: int = T, n_features: int = F, n_slots: int = A, tick_ms: float = TICK_MS) -> dict:
    """n windows as numpy arrays named like a dataset: gamestate [n,T,F], history [n,T,A,8],
    history_mask [n,T,A], targets [n,A,7], target_mask [n,A], window_size [n,2], pointer [n,3]."""
    rng = np.random.default_rng(seed)
    out = {
        "gamestate": rng.standard_normal((n, n_ticks, n_features)).astype(np.float32),
        "history": np.zeros((n, n_ticks, n_slots, len(HISTORY_FIELDS)), np.float32),
        "history_mask": np.zeros((n, n_ticks, n_slots), bool),
        "targets": np.zeros((n, n_slots, len(TARGET_FIELDS)), np.float32),
        "target_mask": np.zeros((n, n_slots), bool),
        "window_size": np.tile(np.array([[800.0, 600.0]], np.float32), (n, 1)),
        "pointer": np.tile(np.array([UNKNOWN_POINTER], np.float32), (n, 1)),
    }
    for i in range(n):
        for t in range(n_ticks):
            k = int(rng.integers(0, min(max_events, n_slots) + 1))
            rows = _events(rng, k, vocab)
            rows[:, H["dt_ms"]] = rng.uniform(1.0, tick_ms / max(k, 1), k)
            out["history"][i, t, :k], out["history_mask"][i, t, :k] = rows, True
        k = int(rng.integers(0, min(max_events, n_slots - 1) + 1))
        rows = _events(rng, k + 1, vocab)
        dts = rng.uniform(1.0, tick_ms / max(k, 1), k + 1)
        dts[k] = tick_ms - dts[:k].sum() + rng.uniform(1.0, 2000.0)  # the look-ahead crosses the tick's end
        tg = np.delete(rows, H["type"], axis=1)
        tg[:, TG["dt_ms"]] = dts
        out["targets"][i, : k + 1], out["target_mask"][i, : k + 1] = tg, True
    return out
