"""A small generated dataset with learnable structure, for tests and `ilbot bench train`.

A scripted "player" follows a tick-locked routine (600 ms ticks): in an active tick it moves to
point P1, clicks there, jumps to P2, presses a key and releases it, each at its own time in the
tick (with a few ms and pixels of jitter); about a third of the ticks are idle. Every baseline misses a
part of the routine: markov cannot tell which event follows a MOVE (the CLICK after the first,
the KEY after the second), dt_quantiles mixes the slots' distinct gaps, previous_position misses
every jump between P1 and P2 — while all of it is plain to a model that sees the slot order and
the history.

The sessions are real session stores (ilbot.data.store) and the dataset is built by the real
builder (ilbot.data.build), split by session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.schema import Event, KeyAction

WIDTH, HEIGHT = 800, 600
TICK_S = 0.6
# (type, time in the tick s) of the routine's events; positions: P1 for the first two, P2 after
P1, P2, KEY = (200.0, 150.0), (600.0, 420.0), 7
ROUTINE = (("move", 0.05), ("click", 0.15), ("move", 0.17), ("press", 0.40), ("release", 0.48))


def player_events(rng: np.random.Generator, duration_s: float, idle_p: float = 0.33) -> list[Event]:
    p1, p2, key = np.array(P1), np.array(P2), KEY
    events: list[Event] = []
    for tick in range(int(duration_s / TICK_S)):
        if rng.random() < idle_p:
            continue
        t0 = tick * TICK_S
        for i, (kind, at) in enumerate(ROUTINE):
            t = t0 + at + rng.normal(0, 0.004)
            x, y = (p1 if i < 2 else p2) + rng.normal(0, 3, 2)
            ns = int(t * 1e9)
            if kind == "move":
                events.append(Event.make(ns, x, y))
            elif kind == "click":
                events.append(Event.make(ns, x, y, button=1, hold_ms=float(rng.uniform(80, 140))))
            else:
                action = KeyAction.PRESS if kind == "press" else KeyAction.RELEASE
                events.append(Event.make(ns, x, y, key_action=int(action), key_id=key))
    return events


def make_sessions(out_dir, n_sessions: int = 4, duration_s: float = 180.0, seed: int = 0) -> list[Path]:
    """Write `n_sessions` session stores (users alternate 1, 2) into `out_dir`."""
    from ..data.store import SessionWriter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_sessions):
        rng = np.random.default_rng([seed, i])
        path = out / f"synthetic_{i}.ilbot.sqlite"
        meta = {"source": "synthetic", "user": 1 + i % 2,
                "window": {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}, "feature_spec": "empty"}
        with SessionWriter(path, meta, overwrite=True) as w:
            w.add_events(player_events(rng, duration_s))
        paths.append(path)
    return paths


def make_dataset(out_dir, n_sessions: int = 4, duration_s: float = 180.0, seed: int = 0, holdout_frac: float = 0.25) -> Path:
    """Sessions under `out_dir/sessions`, the dataset in `out_dir/dataset` (split by session)."""
    from ..data.build import build_dataset

    out = Path(out_dir)
    paths = make_sessions(out / "sessions", n_sessions, duration_s, seed)
    build_dataset(paths, out / "dataset", split_by="session", holdout_frac=holdout_frac, seed=seed, progress=False)
    return out / "dataset"
