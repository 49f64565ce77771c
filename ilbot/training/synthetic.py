"""A small generated dataset with learnable structure, for tests and `ilbot bench train`.

A scripted "player" repeats one action: a straight run of `moves` MOVEs towards a target at a
constant pace (each action draws its own pace, 20–80 ms), a CLICK on the target, a KEY press and
its release ~90 ms later (the key follows the target's screen quadrant), then a pause of
0.3–2 s. Everything a good model needs is in the history (pace, direction, how many moves so
far), while each baseline misses a part: markov cannot count moves to the click, dt_quantiles
cannot know this action's pace, previous_position lags the moving cursor by one step.

The sessions are real session stores (ilbot.data.store) and the dataset is built by the real
builder (ilbot.data.build), split by session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.schema import Event, KeyAction

WIDTH, HEIGHT = 800, 600
QUADRANT_KEYS = (2, 3, 4, 5)  # key ids by target quadrant (any valid ids of the vocabulary)


def player_events(rng: np.random.Generator, duration_s: float, moves: int = 8) -> list[Event]:
    events: list[Event] = []
    t = 0.2
    x, y = WIDTH / 2, HEIGHT / 2
    while t < duration_s:
        tx, ty = rng.uniform(40, WIDTH - 40), rng.uniform(40, HEIGHT - 40)
        pace = rng.uniform(0.020, 0.080)  # s between moves, constant within the action
        for k in range(1, moves + 1):
            t += pace
            events.append(Event.make(int(t * 1e9), x + (tx - x) * k / moves, y + (ty - y) * k / moves))
        x, y = tx, ty
        t += pace
        events.append(Event.make(int(t * 1e9), x, y, button=1, hold_ms=float(rng.uniform(80, 140))))
        key = QUADRANT_KEYS[int(x > WIDTH / 2) + 2 * int(y > HEIGHT / 2)]
        t += rng.uniform(0.05, 0.07)
        events.append(Event.make(int(t * 1e9), x, y, key_action=int(KeyAction.PRESS), key_id=key))
        t += 0.09
        events.append(Event.make(int(t * 1e9), x, y, key_action=int(KeyAction.RELEASE), key_id=key))
        t += rng.uniform(0.3, 2.0)
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
