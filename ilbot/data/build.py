"""Building dataset windows from session stores (DESIGN §5): `build_dataset(...)`.

The full windows (`history [N, T, A, 8]` is 32 KB per window) would take tens of GB for a real
data set, so the builder stores the *flat* pieces, memory-mapped `.npy` files, and
`ilbot.data.dataset` gathers `[B, T, A, 8]` batches from them on demand:

| file | shape | holds |
| --- | --- | --- |
| `events.npy` | [E, 8] float32 | every kept event, already a history row (dt_ms, x, y normalised, type, button, key_action, key_id, scroll_y); dt from the previous event of the same tick window, or from the window start |
| `tick_offsets.npy` | [n_ticks + 1] int64 | events of global tick g are rows `tick_offsets[g] : tick_offsets[g+1]` |
| `tick_feature.npy` | [n_ticks] int32 | row of `features.npy` holding tick g's features |
| `features.npy` | [U, F] float32 | distinct feature rows, normalised with the training split's mean/std (row 0: zeros, for ticks without game state) |
| `window_anchor.npy` | [N] int64 | global tick t of each window |
| `window_first_tick.npy` | [N] int64 | its session's first global tick (context before it is padding) |
| `window_lookahead.npy` | [N, 7] float32 | the look-ahead target row (dt clipped at the horizon) |
| `window_session.npy`, `window_user.npy`, `window_split.npy` | [N] | session index, user id (-1 unknown), split code |
| `window_size.npy` | [N, 2] float32 | game window width, height in pixels |

plus `meta.json`, `stats.json` and `key_vocab.json`. Rows are exactly what
`ilbot.data.encoding.history_rows` / `target_rows` produce for the same events (tested).

Decisions where DESIGN is silent:
- Ticks: a session's recorded ticks when it has any (events before the first or after the last
  tick's end are dropped and counted), else 600 ms ticks (or the session's `tick_ms`) from t=0.
- Windows start at a session's first tick; context before it is padding (gamestate 0 in
  normalised units, history masked out), as the live runtime sees at its start.
- A window exists for every tick that has a next event after it (its look-ahead); the trailing
  ticks after the last event produce none.
- stats.json's top level is computed on the training split only (normalisation, class weights and
  hold times never see held-out data); `splits` and `all` hold the counts of each split and the
  whole set.
- Sessions are taken in sorted path order, so session indices and splits are reproducible.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from .encoding import normalise_features
from .featurespec import load_spec
from .keys import KEY_VOCAB, KEY_VOCAB_VERSION
from .progress import Progress
from .schema import A, EVENT_NAMES, F, LOOKAHEAD_CLIP_MS, T, TICK_MS, EventType
from .store import open_session
from .thinning import DEFAULT_MIN_GAP_MS, thin_events

DATASET_FORMAT = 1
SPLIT_NAMES = ("train", "val")
TARGET_COLS = [0, 1, 2, 4, 5, 6, 7]  # history-row columns that make a target row (type dropped)
DEFAULT_HOLD_MS = 110.0  # DESIGN §2: median hold in real data, used when a split has no clicks
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


@dataclass
class BuildConfig:
    """How windows are built. `holdout`: user ids (split_by="user") or session file names/stems
    (split_by="session"); `holdout_frac`: share of sessions held out at random (split_by="session")."""

    thin_ms: float = DEFAULT_MIN_GAP_MS
    tick_ms: float | None = None  # None: each session's recorded ticks, else its meta tick_ms
    lookahead_clip_ms: float = LOOKAHEAD_CLIP_MS
    split_by: str | None = None  # None | "session" | "user"
    holdout: tuple = ()
    holdout_frac: float = 0.0
    seed: int = 0
    progress: bool = True


@dataclass
class _SessionPart:
    rows: np.ndarray  # [E, 8] float32 history rows
    offsets: np.ndarray  # [n_ticks + 1] int64 local
    features: np.ndarray | None  # [n_ticks, F] float32 or None (no game state)
    anchors: np.ndarray  # [N] int64 local tick indices
    lookahead: np.ndarray  # [N, 7] float32
    window_size: tuple[float, float]
    hold_ms: np.ndarray  # [clicks] float64
    lookahead_dt: np.ndarray  # [N] float64 (clipped)
    counts: dict[str, Any] = field(default_factory=dict)


def _window_size(meta: dict, ev: np.ndarray, path: Path) -> tuple[float, float]:
    win = meta.get("window")
    if isinstance(win, dict) and win.get("width") and win.get("height"):
        return float(win["width"]), float(win["height"])
    if len(ev) == 0:
        return 1.0, 1.0
    return float(ev[:, 2].max() + 1.0), float(ev[:, 3].max() + 1.0)  # largest coordinates seen, plus one


def _build_session(path: Path, cfg: BuildConfig) -> tuple[_SessionPart, dict]:
    with open_session(path) as s:
        meta = dict(s.meta)
        ev = s.event_array()  # [n, 9] t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms
        rec_ticks, rec_t, rec_feat = s.tick_arrays()
    counts: dict[str, Any] = {}
    types = ev[:, 1].astype(np.int64)
    counts["events_raw"] = {n: int((types == i).sum()) for i, n in enumerate(EVENT_NAMES)}
    t_ns = ev[:, 0].astype(np.int64)
    keep, dropped = thin_events(t_ns, types, cfg.thin_ms)
    counts["thinned"] = dropped
    ev, t_ns = ev[keep], t_ns[keep]

    tick_ms = float(cfg.tick_ms if cfg.tick_ms is not None else meta.get("tick_ms") or TICK_MS)
    tick_ns = int(round(tick_ms * 1e6))
    if cfg.tick_ms is None and len(rec_t):
        starts = rec_t  # [n_ticks] the session's recorded tick starts
        bounds = np.append(starts, starts[-1] + tick_ns)  # [n_ticks + 1]
        if np.any(np.diff(bounds) <= 0):
            raise DataError(f"{path}: recorded tick times are not increasing")
        features = rec_feat
    else:
        last = int(t_ns[-1]) if len(t_ns) else 0
        n_ticks = last // tick_ns + 1
        bounds = np.arange(n_ticks + 1, dtype=np.int64) * tick_ns  # [n_ticks + 1]
        features = None
    n_ticks = len(bounds) - 1
    tick_of = np.searchsorted(bounds, t_ns, side="right") - 1  # [E] tick window holding each event
    inside = (tick_of >= 0) & (tick_of < n_ticks)
    counts["dropped_outside_ticks"] = int((~inside).sum())
    ev, t_ns, tick_of = ev[inside], t_ns[inside], tick_of[inside]
    E = len(ev)
    offsets = np.searchsorted(tick_of, np.arange(n_ticks + 1), side="left").astype(np.int64)  # [n_ticks + 1]

    # dt: from the previous event of the same window, the first one from the window's start.
    prev = bounds[tick_of].copy()  # [E]
    same = np.zeros(E, bool)
    same[1:] = tick_of[1:] == tick_of[:-1]
    prev[1:][same[1:]] = t_ns[:-1][same[1:]]
    dt_ms = (t_ns - prev) / 1e6  # [E] float64
    w, h = _window_size(meta, ev, path)
    rows = np.empty((E, 8), np.float64)  # [E, 8] history rows, computed in float64 like encoding.py
    rows[:, 0] = dt_ms
    rows[:, 1] = ev[:, 2] / w
    rows[:, 2] = ev[:, 3] / h
    rows[:, 3:8] = ev[:, [1, 4, 5, 6, 7]]
    rows = rows.astype(np.float32)

    # Windows: every tick with a next event after its window (the look-ahead).
    ticks = np.arange(n_ticks)
    anchors = ticks[offsets[1:] < E]  # [N]
    la = offsets[anchors + 1]  # [N] index of the look-ahead event
    n_in = offsets[anchors + 1] - offsets[anchors]  # [N] events inside the window
    kept = np.minimum(n_in, A - 1)  # [N] in-window events that fit before the look-ahead slot
    last_kept = offsets[anchors] + kept - 1
    prev_t = np.where(kept > 0, t_ns[np.maximum(last_kept, 0)] if E else 0, bounds[anchors])  # [N]
    la_dt = np.minimum((t_ns[la] - prev_t) / 1e6, cfg.lookahead_clip_ms) if len(la) else np.zeros(0)
    lookahead = np.empty((len(anchors), 7), np.float64)  # [N, 7]
    if len(anchors):
        lookahead[:, 0] = la_dt
        lookahead[:, 1] = ev[la, 2] / w
        lookahead[:, 2] = ev[la, 3] / h
        lookahead[:, 3:7] = ev[la][:, [4, 5, 6, 7]]
    per_tick = np.diff(offsets)  # [n_ticks]
    counts.update({
        "events": {n: int((rows[:, 3] == i).sum()) for i, n in enumerate(EVENT_NAMES)},
        "n_ticks": int(n_ticks), "n_windows": int(len(anchors)),
        "idle_windows": int((n_in[:] == 0).sum()), "overflow": int(np.maximum(n_in - (A - 1), 0).sum()),
        "overflow_windows": int((n_in > A - 1).sum()),
        "history_overflow": int(np.maximum(per_tick - A, 0).sum()),
        "events_per_tick_hist": np.bincount(np.minimum(per_tick[anchors], A), minlength=A + 1).tolist(),
        "tick_ms": tick_ms,
    })
    clicks = ev[:, 1] == EventType.CLICK
    part = _SessionPart(rows=rows, offsets=offsets, features=features, anchors=anchors.astype(np.int64),
                        lookahead=lookahead.astype(np.float32), window_size=(w, h), hold_ms=ev[clicks, 8],
                        lookahead_dt=la_dt, counts=counts)
    return part, meta


def _assign_splits(paths: list[Path], metas: list[dict], cfg: BuildConfig) -> np.ndarray:
    """Split code per session (0 train, 1 val)."""
    n = len(paths)
    codes = np.zeros(n, np.int8)
    if cfg.split_by in (None, "none"):
        return codes
    if cfg.split_by == "user":
        users = [m.get("user") for m in metas]
        for p, u in zip(paths, users):
            if u is None:
                raise DataError(f"{p}: no user in its meta; cannot split by user (use --split-by session)")
        want = {str(u) for u in cfg.holdout}
        have = {str(u) for u in users}
        unknown = sorted(want - have)
        if unknown:
            raise DataError(f"--holdout: no session of user(s) {', '.join(unknown)} (users: {', '.join(sorted(have))})")
        codes[[i for i, u in enumerate(users) if str(u) in want]] = 1
    elif cfg.split_by == "session":
        names = [p.name.removesuffix(".ilbot.sqlite") for p in paths]
        if cfg.holdout:
            want = {str(h).removesuffix(".ilbot.sqlite") for h in cfg.holdout}
            unknown = sorted(want - set(names))
            if unknown:
                raise DataError(f"--holdout: no session named {', '.join(unknown)}")
            codes[[i for i, nm in enumerate(names) if nm in want]] = 1
        if cfg.holdout_frac > 0:
            k = int(round(cfg.holdout_frac * n))
            k = min(max(k, 1), n - 1) if n > 1 else 0
            pick = np.random.default_rng(cfg.seed).permutation(n)[:k]
            codes[pick] = 1
    else:
        raise DataError(f"--split-by: expected 'session' or 'user', got {cfg.split_by!r}")
    if n > 1 and codes.all():
        raise DataError("the holdout takes every session: nothing left to train on")
    return codes


def _quantiles(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {f"q{round(q * 100):02d}": 0.0 for q in QUANTILES}
    vals = np.quantile(x, QUANTILES)
    return {f"q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, vals)}


def _summary(parts: list[_SessionPart]) -> dict[str, Any]:
    """Counts over a set of sessions."""
    def add(key):
        return {n: sum(p.counts[key][n] for p in parts) for n in EVENT_NAMES}
    hist = np.zeros(A + 1, np.int64)
    for p in parts:
        hist += np.asarray(p.counts["events_per_tick_hist"], np.int64)
    dts = np.concatenate([p.rows[:, 0] for p in parts]) if parts else np.zeros(0)
    la = np.concatenate([p.lookahead_dt for p in parts]) if parts else np.zeros(0)
    holds = np.concatenate([p.hold_ms for p in parts]) if parts else np.zeros(0)
    return {
        "sessions": len(parts),
        "n_windows": int(sum(p.counts["n_windows"] for p in parts)),
        "n_ticks": int(sum(p.counts["n_ticks"] for p in parts)),
        "idle_windows": int(sum(p.counts["idle_windows"] for p in parts)),
        "event_counts": add("events"),
        "event_counts_raw": add("events_raw"),
        "thinned": {k: int(sum(p.counts["thinned"].get(k, 0) for p in parts)) for k in ("MOVE", "SCROLL")},
        "dropped_outside_ticks": int(sum(p.counts["dropped_outside_ticks"] for p in parts)),
        "dt_quantiles": _quantiles(dts),
        "dt_zero_frac": float((dts == 0).mean()) if len(dts) else 0.0,
        "lookahead_dt_quantiles": _quantiles(la),
        "lookahead_clipped_frac": float((la >= LOOKAHEAD_CLIP_MS).mean()) if len(la) else 0.0,
        "events_per_tick_hist": hist.tolist(),
        "overflow": int(sum(p.counts["overflow"] for p in parts)),
        "overflow_windows": int(sum(p.counts["overflow_windows"] for p in parts)),
        "history_overflow": int(sum(p.counts["history_overflow"] for p in parts)),
        "hold_ms": ({"median": float(np.median(holds)), "q10": float(np.quantile(holds, 0.1)),
                     "q90": float(np.quantile(holds, 0.9)), "n": int(len(holds))} if len(holds)
                    else {"median": DEFAULT_HOLD_MS, "q10": DEFAULT_HOLD_MS, "q90": DEFAULT_HOLD_MS, "n": 0}),
    }


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise DataError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / "meta.json").exists() and not (out / ".building").exists():
            raise DataError(f"{out}: folder is not empty and is not an ilbot dataset (refusing to overwrite)")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / ".building").write_text("incomplete build\n")


def build_dataset(session_paths: Sequence[str | Path], out_dir: str | Path, config: BuildConfig | None = None,
                  **overrides) -> dict[str, Any]:
    """Build the windows of `session_paths` into `out_dir`; returns the stats dict (also in stats.json).

    `overrides` set BuildConfig fields (e.g. `split_by="user", holdout=(7, 9)`)."""
    cfg = config or BuildConfig()
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise TypeError(f"build_dataset: unknown option {k!r}")
        setattr(cfg, k, v)
    paths = sorted({Path(p) for p in session_paths}, key=str)
    if not paths:
        raise DataError("build: no session stores given")
    out = Path(out_dir)

    parts: list[_SessionPart] = []
    metas: list[dict] = []
    with Progress(len(paths), "build: sessions", enabled=cfg.progress) as bar:
        for p in paths:
            part, meta = _build_session(p, cfg)
            parts.append(part)
            metas.append(meta)
            bar.update(1, p.name)
    empty_hash = load_spec("empty").hash
    for m, part in zip(metas, parts):  # a store without spec and without ticks has no game state: the empty spec
        if not m.get("feature_spec_hash") and part.features is None:
            m["feature_spec_hash"], m["feature_spec"] = empty_hash, "empty"
    hashes = {m.get("feature_spec_hash") for m in metas}
    if len(hashes) > 1:
        by = {m.get("feature_spec_hash"): p for p, m in zip(paths, metas)}
        raise DataError("sessions use different feature specs: " +
                        ", ".join(f"{p.name} ({h})" for h, p in by.items()))
    spec_hash = hashes.pop()
    split_of = _assign_splits(paths, metas, cfg)  # [S]
    n_windows = sum(len(p.anchors) for p in parts)
    if n_windows == 0:
        raise DataError("build: the sessions hold no window (every window needs a next event for its look-ahead)")

    # Global concatenation.
    ev_base = np.cumsum([0] + [len(p.rows) for p in parts])  # [S+1]
    tick_base = np.cumsum([0] + [len(p.offsets) - 1 for p in parts])  # [S+1]
    offsets = np.concatenate([p.offsets[:-1] + ev_base[i] for i, p in enumerate(parts)] + [ev_base[-1:]])
    feat_rows = [np.zeros((1, F), np.float32)]  # row 0: no game state
    tick_feature = []
    feat_base = 1
    for p in parts:
        n = len(p.offsets) - 1
        if p.features is None:
            tick_feature.append(np.zeros(n, np.int32))
        else:
            feat_rows.append(p.features.astype(np.float32))
            tick_feature.append(np.arange(feat_base, feat_base + n, dtype=np.int32))
            feat_base += n
    features = np.concatenate(feat_rows)  # [U, F] raw
    tick_feature = np.concatenate(tick_feature)  # [n_ticks]
    # Feature mean/std over the training split's ticks (each tick weighted once).
    tick_split = np.repeat(split_of, np.diff(tick_base))  # [n_ticks]
    train_ticks = tick_feature[tick_split == 0]
    weights = np.bincount(train_ticks, minlength=len(features)).astype(np.float64)  # [U]
    mean = (weights[:, None] * features).sum(0) / max(weights.sum(), 1.0)  # [F]
    var = (weights[:, None] * (features - mean) ** 2).sum(0) / max(weights.sum(), 1.0)  # [F]
    std = np.sqrt(var)
    features_norm = normalise_features(features, mean.astype(np.float32), std.astype(np.float32))

    users = []
    for m in metas:
        try:
            users.append(int(m.get("user")) if m.get("user") is not None else -1)
        except (TypeError, ValueError):
            users.append(-1)
    per_window = {
        "window_anchor": np.concatenate([p.anchors + tick_base[i] for i, p in enumerate(parts)]).astype(np.int64),
        "window_first_tick": np.concatenate([np.full(len(p.anchors), tick_base[i], np.int64)
                                             for i, p in enumerate(parts)]),
        "window_lookahead": np.concatenate([p.lookahead for p in parts]).astype(np.float32),
        "window_session": np.concatenate([np.full(len(p.anchors), i, np.int32) for i, p in enumerate(parts)]),
        "window_user": np.concatenate([np.full(len(p.anchors), users[i], np.int32) for i, p in enumerate(parts)]),
        "window_split": np.concatenate([np.full(len(p.anchors), split_of[i], np.int8) for i, p in enumerate(parts)]),
        "window_size": np.concatenate([np.tile(np.asarray(p.window_size, np.float32), (len(p.anchors), 1))
                                       for p in parts]),
    }

    train_parts = [p for p, c in zip(parts, split_of) if c == 0]
    split_names = [SPLIT_NAMES[0]] + ([SPLIT_NAMES[1]] if split_of.any() else [])
    stats = _summary(train_parts)
    stats.update({
        "feature_mean": mean.astype(float).tolist(), "feature_std": std.astype(float).tolist(),
        "tick_ms": parts[0].counts["tick_ms"], "thin_ms": cfg.thin_ms, "lookahead_clip_ms": cfg.lookahead_clip_ms,
        "computed_on": "train",
        "splits": {name: _summary([p for p, c in zip(parts, split_of) if c == code])
                   for code, name in enumerate(split_names)},
        "all": _summary(parts),
    })
    sessions = []
    for i, (p, m, part) in enumerate(zip(paths, metas, parts)):
        sessions.append({"index": i, "path": str(p), "name": p.name, "user": users[i],
                         "split": SPLIT_NAMES[split_of[i]], "source": m.get("source"),
                         "n_events": int(len(part.rows)), "n_ticks": int(len(part.offsets) - 1),
                         "n_windows": int(len(part.anchors)), "window_size": list(part.window_size),
                         "import_counts": m.get("import_counts")})
    meta = {"format": DATASET_FORMAT, "T": T, "A": A, "F": F, "spec_hash": spec_hash,
            "feature_spec": metas[0].get("feature_spec"), "key_vocab_version": KEY_VOCAB_VERSION,
            "split_by": cfg.split_by, "split_names": split_names, "n_windows": int(n_windows),
            "n_events": int(ev_base[-1]), "n_ticks": int(tick_base[-1]),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "sessions": sessions}

    _prepare_out(out)
    arrays = {"events": np.concatenate([p.rows for p in parts]), "tick_offsets": offsets.astype(np.int64),
              "tick_feature": tick_feature, "features": features_norm, **per_window}
    for name, arr in arrays.items():
        np.save(out / f"{name}.npy", arr)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    (out / "key_vocab.json").write_text(json.dumps({"version": KEY_VOCAB_VERSION, "keys": list(KEY_VOCAB)}))
    (out / "meta.json").write_text(json.dumps(meta, indent=1))  # written last: its presence marks a complete build
    (out / ".building").unlink()
    return stats
