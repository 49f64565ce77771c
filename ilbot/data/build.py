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
| `window_weight.npy` (optional) | [N] float32 | training weight: `segment_weights[kind]` of the marked segment (a correction, a takeover) holding the window's tick, else 1; written only when some weight is not 1 |

plus `meta.json`, `stats.json`, `key_vocab.json` and the ownership marker `.ilbot-output.json`.
The folder is written beside its target and renamed into place (ilbot.data.atomic): a failed build
leaves the previous dataset whole, an existing dataset is replaced only with `overwrite=True`,
and a folder that is not an ilbot dataset is never touched. Rows are exactly what
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
- A share of the sessions (the session split's `holdout_frac`, the calib split's `calib_frac`)
  is drawn spread over the sessions' users (`_spread_pick`): each user gives its share of the
  held-out sessions, and keeps a training session while any user has one to spare. A session
  split then measures unseen sessions of users the model was trained on, every user among them,
  rather than whichever users a plain draw happens to favour. With one user (or none known) it
  is the plain seeded draw.
- A session split needs two sessions: with one session and `holdout_frac`, the session is cut in
  two by time, the tail holding that share of its windows (at least one); the parts are built as
  separate sessions (the tail's context starts as padding), so neither side sees the other's
  events; meta.json's `sessions` lists both parts (`part` head/tail) and `split_note` says so.
  `ilbot build` of one session without split options asks for this with DEFAULT_TIME_HOLDOUT
  (`auto_holdout`): a session too short to cut is then built whole, train only, and the note
  says why.
- Calibration split: with `calib_frac`, after the val sessions are chosen, round(calib_frac × the
  remaining training sessions) of them (at least one, never all) are held out at random,
  spread over their users (seeded by `seed`, independent of the val pick) as split 2,
  "calib": windows neither trained nor validated on, for `ilbot eval calibrate --split
  calib`. With a user split they are
  sessions of training users (held-out users stay wholly in val). The one-session time split
  has no calib part: `calib_frac` there is refused (it needs at least two training sessions).
  `split_names` lists the splits present, in code order: ["train"], ["train", "val"] or
  ["train", "val", "calib"].
- Stores are checked as they are read: an unknown event type or class, or a non-finite time or
  position, refuses the build naming the store, the row (`seq`) and the value.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .atomic import atomic_dir, open_private, prepare_output, write_private_text
from .encoding import normalise_features
from .featurespec import load_spec
from .keys import KEY_VOCAB, KEY_VOCAB_VERSION, VOCAB_SIZE
from .progress import Progress
from .schema import (A, EVENT_NAMES, F, LOOKAHEAD_CLIP_MS, MAX_TICK_MS, MIN_TICK_MS, SEED_MAX, T, TICK_MS, Button,
                     EventType, KeyAction, ScrollY, tick_ms_problem)
from .store import EVENT_COLUMNS, open_session
from .thinning import DEFAULT_MIN_GAP_MS, thin_events

DATASET_FORMAT = 1
SPLIT_NAMES = ("train", "val", "calib")  # split codes 0, 1, 2
DATASET_FILES = ("events", "tick_offsets", "tick_feature", "features", "window_anchor", "window_first_tick",
                 "window_lookahead", "window_session", "window_user", "window_split", "window_size")
TARGET_COLS = [0, 1, 2, 4, 5, 6, 7]  # history-row columns that make a target row (type dropped)
DEFAULT_TIME_HOLDOUT = 0.2  # share of a single session's windows `ilbot build` holds out by default
DEFAULT_HOLD_MS = 110.0  # DESIGN §2: median hold in real data, used when a split has no clicks
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99)


@dataclass
class BuildConfig:
    """How windows are built. `holdout`: user ids (split_by="user") or session file names/stems
    (split_by="session"); `holdout_frac`: share of the sessions (split_by="session") or of the users
    (split_by="user") held out at random, besides any `holdout`;
    `calib_frac`: share of the remaining training sessions held out at random as the "calib" split
    (needs a val split)."""

    thin_ms: float = DEFAULT_MIN_GAP_MS
    tick_ms: float | None = None  # None: each session's recorded ticks, else its meta tick_ms
    lookahead_clip_ms: float = LOOKAHEAD_CLIP_MS
    split_by: str | None = None  # None | "session" | "user"
    holdout: tuple = ()
    holdout_frac: float = 0.0
    calib_frac: float = 0.0
    seed: int = 0
    progress: bool = True
    segment_weights: dict = field(default_factory=dict)  # segment kind → weight of its windows (e.g. correction: 3)
    # the time split of a single session was not asked for (the CLI's default): a session too short
    # to cut is built whole (train only) instead of refused, and the note says so
    auto_holdout: bool = False


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
    bounds: np.ndarray | None = None  # [n_ticks + 1] int64 tick boundaries (ns)


def _window_size(meta: dict, ev: np.ndarray, path: Path) -> tuple[float, float]:
    win = meta.get("window")
    if isinstance(win, dict) and win.get("width") and win.get("height"):
        try:
            w, h = float(win["width"]), float(win["height"])
        except (TypeError, ValueError):
            raise DataError(f"{path}: meta 'window' has a non-numeric width/height "
                            f"({win.get('width')!r}, {win.get('height')!r})") from None
        if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
            raise DataError(f"{path}: meta 'window' width/height must be positive, got {w!r}, {h!r}")
        return w, h
    if len(ev) == 0:
        return 1.0, 1.0
    return float(ev[:, 2].max() + 1.0), float(ev[:, 3].max() + 1.0)  # largest coordinates seen, plus one


# categorical columns of the event array: (column, name, number of valid values 0..n-1)
_EVENT_CHECKS = ((1, "type", len(EVENT_NAMES)), (4, "button", len(Button)), (5, "key_action", len(KeyAction)),
                 (6, "key_id", VOCAB_SIZE), (7, "scroll_y", len(ScrollY)))


def _check_events(s, path: Path, ev: np.ndarray) -> None:
    """Refuse a store whose events hold an unknown type/class or a non-finite time or position,
    naming the first such row (its `seq`) and value."""
    bad = ~np.isfinite(ev[:, [0, 2, 3, 8]]).all(1)  # [n] t_ns, x, y, hold_ms
    what = "a non-finite t_ns, x, y or hold_ms"
    for col, name, n in _EVENT_CHECKS:
        v = ev[:, col]
        wrong = ~((v >= 0) & (v < n) & (v == np.floor(v)))
        if wrong.any():
            bad, what = wrong, f"unknown {name} (valid: 0..{n - 1})"
            break
    if not bad.any():
        return
    i = int(np.flatnonzero(bad)[0])
    if what.startswith("unknown"):
        v = float(ev[i, col])
        value = int(v) if v.is_integer() else v
    else:
        value = dict(zip(("t_ns", "x", "y", "hold_ms"), ev[i, [0, 2, 3, 8]].tolist()))
    seq = None
    try:  # the first bad row in the store's recording order, for the message
        for row in s._query(f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events ORDER BY seq"):
            if np.array_equal(np.asarray(row[1:], np.float64), ev[i], equal_nan=True):
                seq = row[0]
                break
    except (DataError, TypeError, ValueError):
        pass
    where = f"events row seq={seq}" if seq is not None else f"event at t_ns={ev[i, 0]!r}"
    raise DataError(f"{path}: {where}: {what}: {value!r} (a damaged store; re-import or re-record it)")


def _load_session(path: Path) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """(meta, events [n, 9] in time order, recorded tick starts [n_ticks], tick features [n_ticks, F])."""
    with open_session(path) as s:
        meta = dict(s.meta)
        meta["segments"] = s.segments()  # [] without a segments table
        try:
            ev = s.event_array()  # [n, 9] t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms
            rec_ticks, rec_t, rec_feat = s.tick_arrays()
        except (TypeError, ValueError) as e:
            raise DataError(f"{path}: a non-numeric value in the events or ticks table ({e})") from None
        _check_events(s, path, ev)
    return meta, ev, rec_t, rec_feat


def _segment_weights(segments: list[dict], t_ns: np.ndarray, weights: dict) -> np.ndarray:
    """Per window [N]: the largest weight of the weighted segments holding its tick start t_ns
    [N] (ns), 1 where none does."""
    best = np.full(len(t_ns), -np.inf)  # [N] the largest weight of a segment holding the window
    for seg in segments:
        if seg["kind"] in weights:
            inside = (t_ns >= seg["t_start_ns"]) & (t_ns < seg["t_end_ns"])
            best[inside] = np.maximum(best[inside], float(weights[seg["kind"]]))
    return np.where(np.isfinite(best), best, 1.0).astype(np.float32)


def _session_tick_ms(meta: dict, cfg: "BuildConfig", path: Path) -> float:
    if cfg.tick_ms is not None:
        return float(cfg.tick_ms)
    v = meta.get("tick_ms") or TICK_MS
    problem = tick_ms_problem(v)
    if problem:
        raise DataError(f"{path}: meta tick_ms: {problem} (or pass --tick-ms)")
    return float(v)


def _build_session(path: Path, cfg: BuildConfig, meta: dict, ev: np.ndarray, rec_t: np.ndarray,
                   rec_feat: np.ndarray, window_size: tuple[float, float], origin_ns: int = 0) -> _SessionPart:
    """The windows of one session (or of its part from `origin_ns` on: events and recorded ticks
    passed are that part's; without recorded ticks the tick grid starts at `origin_ns`)."""
    counts: dict[str, Any] = {}
    types = ev[:, 1].astype(np.int64)
    counts["events_raw"] = {n: int((types == i).sum()) for i, n in enumerate(EVENT_NAMES)}
    t_ns = ev[:, 0].astype(np.int64)
    keep, dropped = thin_events(t_ns, types, cfg.thin_ms)
    counts["thinned"] = dropped
    ev, t_ns = ev[keep], t_ns[keep]

    tick_ms = _session_tick_ms(meta, cfg, path)
    tick_ns = int(round(tick_ms * 1e6))
    if cfg.tick_ms is None and len(rec_t):
        starts = rec_t  # [n_ticks] the session's recorded tick starts
        bounds = np.append(starts, starts[-1] + tick_ns)  # [n_ticks + 1]
        if np.any(np.diff(bounds) <= 0):
            raise DataError(f"{path}: recorded tick times are not increasing")
        features = rec_feat
    else:
        last = int(t_ns[-1]) if len(t_ns) else origin_ns
        n_ticks = max(last - origin_ns, 0) // tick_ns + 1
        bounds = origin_ns + np.arange(n_ticks + 1, dtype=np.int64) * tick_ns  # [n_ticks + 1]
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
    w, h = window_size
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
                        lookahead_dt=la_dt, counts=counts, bounds=bounds)
    return part


def _share(frac: float, n: int) -> int:
    """round(frac × n), at least one and never all n (0 when n < 2): how many of n items a held-out
    share takes."""
    return min(max(int(round(frac * n)), 1), n - 1) if n > 1 else 0


def _seeded_pick(frac: float, n: int, seed: int) -> np.ndarray:
    """The indices of the `_share(frac, n)` items of n held out at random, seeded by `seed`."""
    return np.random.default_rng(seed).permutation(n)[:_share(frac, n)]


def _spread_pick(candidates: np.ndarray, users: list, k: int, rng: np.random.Generator) -> np.ndarray:
    """k of the sessions `candidates` [M] held out at random, spread over their users (`users`:
    one per session, None where unknown, which counts as one user) in proportion to each user's
    candidates, and never a user's last candidate while another user has one to spare: a held-out
    session's user keeps sessions in training. Each user's quota is k·n_u/M rounded down, and the
    rest go one each to the users with the largest remainders (ties in a random order); only
    when every user is down to one candidate do users leave wholly. With one user this is a plain
    seeded draw, `candidates[rng.permutation(M)[:k]]`."""
    keys = [str(users[i]) for i in candidates]
    names = sorted(set(keys))
    members = [candidates[[j for j, key in enumerate(keys) if key == nm]] for nm in names]
    members = [m[rng.permutation(len(m))] for m in members]  # each user's candidates in a random order
    n_u = np.array([len(m) for m in members])  # [U]
    quota = k * n_u / len(candidates)
    take = np.minimum(np.floor(quota).astype(np.int64), n_u - 1)
    order = np.lexsort((rng.permutation(len(names)), -(quota - take)))  # largest remainder first, ties random
    for room in (n_u - 1, n_u):  # one more each in that order, keeping a session of every user, then not
        while take.sum() < k and (take < room).any():
            for u in order:
                if take.sum() < k and take[u] < room[u]:
                    take[u] += 1
    return np.concatenate([m[:t] for m, t in zip(members, take)]).astype(np.int64)


def _time_split(path: Path, cfg: BuildConfig, meta: dict, ev: np.ndarray, rec_t: np.ndarray, rec_feat: np.ndarray,
                window_size: tuple[float, float], whole: _SessionPart) -> tuple[_SessionPart, _SessionPart, int]:
    """The session cut in two by time: (head, tail, cut time ns). The tail starts at the tick
    that leaves `holdout_frac` of the session's windows (at least one) after it; each part is
    built like a session of its own, so no window of one part sees the other's events (the
    tail's context starts as padding, the head's last look-ahead stays inside the head)."""
    n = len(whole.anchors)
    k = _share(cfg.holdout_frac, n)
    if k < 1:
        raise DataError(f"{path}: {n} window(s): too few to hold out the last part of the session by time")
    b = int(whole.anchors[n - k])  # first tick of the held-out part
    cut = int(whole.bounds[b])
    recorded = cfg.tick_ms is None and len(rec_t)
    head = _build_session(path, cfg, meta, ev[ev[:, 0] < cut], rec_t[:b] if recorded else rec_t,
                          rec_feat[:b] if recorded else rec_feat, window_size)
    tail = _build_session(path, cfg, meta, ev[ev[:, 0] >= cut], rec_t[b:] if recorded else rec_t,
                          rec_feat[b:] if recorded else rec_feat, window_size, origin_ns=cut)
    if len(head.anchors) == 0 or len(tail.anchors) == 0:
        raise DataError(f"{path}: cutting the session at t={cut} ns leaves no window on one side; "
                        f"record a longer session or change --holdout-frac")
    return head, tail, cut


def _assign_splits(paths: list[Path], metas: list[dict], cfg: BuildConfig) -> np.ndarray:
    """Split code per session (0 train, 1 val, 2 calib)."""
    n = len(paths)
    codes = np.zeros(n, np.int8)
    if cfg.split_by in (None, "none"):
        return codes
    users = [m.get("user") for m in metas]
    if cfg.split_by == "user":
        for p, u in zip(paths, users):
            if u is None:
                raise DataError(f"{p}: no user in its meta; cannot split by user (use --split-by session)")
        want = {str(u) for u in cfg.holdout}
        have = sorted({str(u) for u in users})
        unknown = sorted(want - set(have))
        if unknown:
            raise DataError(f"--holdout: no session of user(s) {', '.join(unknown)} (users: {', '.join(have)})")
        if cfg.holdout_frac > 0:  # a share of the users, drawn like a share of the sessions below
            want |= {have[i] for i in _seeded_pick(cfg.holdout_frac, len(have), cfg.seed)}
        codes[[i for i, u in enumerate(users) if str(u) in want]] = 1
    elif cfg.split_by == "session":
        names = [p.name.removesuffix(".ilbot.sqlite") for p in paths]
        if cfg.holdout:
            want = {str(h).removesuffix(".ilbot.sqlite") for h in cfg.holdout}
            unknown = sorted(want - set(names))
            if unknown:
                raise DataError(f"--holdout: no session named {', '.join(unknown)}")
            codes[[i for i, nm in enumerate(names) if nm in want]] = 1
        if cfg.holdout_frac > 0:  # a share of the sessions, spread over their users
            codes[_spread_pick(np.arange(n), users, _share(cfg.holdout_frac, n), np.random.default_rng(cfg.seed))] = 1
    else:
        raise DataError(f"--split-by: expected 'session' or 'user', got {cfg.split_by!r}")
    if codes.all():
        raise DataError("the holdout takes every session: nothing left to train on"
                        + (" (with one session, --holdout-frac F holds out its last part by time)" if n == 1 else ""))
    if cfg.calib_frac > 0:
        _pick_calib(codes, users, cfg)
    return codes


def _pick_calib(codes: np.ndarray, users: list, cfg: BuildConfig) -> None:
    """Mark round(calib_frac × training sessions) of the training sessions (code 0), at least one
    and never all, as calib (code 2), in place, spread over their users (`_spread_pick`); the draw
    is seeded by `seed` apart from the val pick."""
    if not (codes == 1).any():
        raise DataError("--calib-frac needs a val split: hold out sessions or users with --holdout or --holdout-frac")
    train = np.flatnonzero(codes == 0)  # [M] training sessions, in sorted path order
    m = len(train)
    k = max(int(round(cfg.calib_frac * m)), 1)
    if k >= m:
        raise DataError(f"--calib-frac {cfg.calib_frac:g}: holding out {k} of the {m} training session(s) for "
                        f"calibration leaves none to train on (needs at least 2 training sessions)")
    rng = np.random.default_rng([cfg.seed, 2])  # its own stream: the val pick above is unchanged by calib_frac
    codes[_spread_pick(train, users, k, rng)] = 2


def _quantiles(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {f"q{round(q * 100):02d}": 0.0 for q in QUANTILES}
    vals = np.quantile(x, QUANTILES)
    return {f"q{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, vals)}


def _summary(parts: list[_SessionPart], users: list[int]) -> dict[str, Any]:
    """Counts over a set of sessions; `users` [one per part] their user ids (-1 unknown)."""
    def add(key):
        return {n: sum(p.counts[key][n] for p in parts) for n in EVENT_NAMES}
    hist = np.zeros(A + 1, np.int64)
    for p in parts:
        hist += np.asarray(p.counts["events_per_tick_hist"], np.int64)
    dts = np.concatenate([p.rows[:, 0] for p in parts]) if parts else np.zeros(0)
    la = np.concatenate([p.lookahead_dt for p in parts]) if parts else np.zeros(0)
    holds = np.concatenate([p.hold_ms for p in parts]) if parts else np.zeros(0)
    known = sorted(u for u in users if u >= 0)
    return {
        "sessions": len(parts),
        "sessions_by_user": {str(u): known.count(u) for u in dict.fromkeys(known)},  # the known users' sessions
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


def _legacy_dataset(folder: Path) -> bool:
    """A dataset built before output markers existed: meta.json of this format and nothing but
    the builder's files."""
    known = {f"{n}.npy" for n in DATASET_FILES} | {"meta.json", "stats.json", "key_vocab.json"}
    try:
        names = {e.name for e in os.scandir(folder)}
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return names <= known and isinstance(meta, dict) and meta.get("format") == DATASET_FORMAT and "spec_hash" in meta


def _finite(name: str, v, lo: float, lo_open: bool, hi: float | None = None, hi_open: bool = True) -> None:
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    ok = ok and (v > lo if lo_open else v >= lo) and (hi is None or (v < hi if hi_open else v <= hi))
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}{')' if hi_open or hi is None else ']'}"
        raise ConfigError(f"build option {name} must be a number in {rng}, got {v!r}")


def check_config(cfg: BuildConfig) -> None:
    """Range checks of a BuildConfig, each naming its option and value (ConfigError)."""
    _finite("thin_ms (--thin-ms)", cfg.thin_ms, 0.0, False, MAX_TICK_MS, False)
    if cfg.tick_ms is not None:
        _finite("tick_ms (--tick-ms)", cfg.tick_ms, MIN_TICK_MS, False, MAX_TICK_MS, False)
    _finite("lookahead_clip_ms", cfg.lookahead_clip_ms, 0.0, True)
    _finite("holdout_frac (--holdout-frac)", cfg.holdout_frac, 0.0, False, 1.0, True)
    _finite("calib_frac (--calib-frac)", cfg.calib_frac, 0.0, False, 1.0, True)
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int) or not 0 <= cfg.seed <= SEED_MAX:
        raise ConfigError(f"build option seed (--seed) must be an integer in 0..{SEED_MAX}, got {cfg.seed!r}")


def build_dataset(session_paths: Sequence[str | Path], out_dir: str | Path, config: BuildConfig | None = None,
                  *, overwrite: bool = False, **overrides) -> dict[str, Any]:
    """Build the windows of `session_paths` into `out_dir`; returns the stats dict (also in stats.json).

    `overrides` set BuildConfig fields (e.g. `split_by="user", holdout=(7, 9)`). The folder is
    written atomically (ilbot.data.atomic): an existing dataset there is replaced only with
    `overwrite`, anything else that is not empty is refused and left untouched. A
    `holdout_frac` without `split_by` splits by session; with a single session its last part
    (that share of its windows) is held out by time and `stats["split_note"]` says so; a
    `calib_frac` holds out that share of the training sessions as the "calib" split (not with a
    time split)."""
    cfg = replace(config) if config is not None else BuildConfig()
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise TypeError(f"build_dataset: unknown option {k!r}")
        setattr(cfg, k, v)
    check_config(cfg)
    if cfg.split_by is None and cfg.holdout_frac > 0:
        cfg.split_by = "session"
    if cfg.calib_frac > 0 and cfg.split_by in (None, "none"):
        raise ConfigError("build option calib_frac (--calib-frac) needs a split: --holdout-frac F, or "
                          "--split-by session|user with --holdout")
    paths = sorted({Path(p) for p in session_paths}, key=str)
    if not paths:
        raise DataError("build: no session stores given")
    out = Path(out_dir)
    prepare_output(out, "dataset", overwrite=overwrite, looks_owned=_legacy_dataset)  # fail before the work

    parts: list[_SessionPart] = []
    metas: list[dict] = []
    time_split = cfg.split_by == "session" and cfg.holdout_frac > 0 and not cfg.holdout and len(paths) < 2
    if time_split and cfg.calib_frac > 0:
        raise DataError("--calib-frac needs at least 3 sessions (2 training sessions after the val pick): "
                        "one session is cut by time into train and val only")
    loaded = []  # the raw arrays, kept only for a time split
    with Progress(len(paths), "build: sessions", enabled=cfg.progress) as bar:
        for p in paths:
            meta, ev, rec_t, rec_feat = _load_session(p)
            size = _window_size(meta, ev, p)
            parts.append(_build_session(p, cfg, meta, ev, rec_t, rec_feat, size))
            metas.append(meta)
            if time_split:
                loaded.append((ev, rec_t, rec_feat, size))
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
    split_note = None
    part_info: list[dict] = [{} for _ in paths]
    cuts = []
    if time_split:
        try:
            cuts = [_time_split(p, cfg, m, ev, rec_t, rec_feat, size, whole)
                    for p, m, whole, (ev, rec_t, rec_feat, size) in zip(paths, metas, parts, loaded)]
        except DataError as e:
            if not cfg.auto_holdout:
                raise
            time_split, cfg.split_by = False, None  # not asked for: the session is built whole
            split_note = f"one session, too short to hold out its end by time ({e}): all windows train"
    if time_split:  # too few sessions for a session split: hold out the last part of each session by time
        new_parts, new_paths, new_metas, part_info = [], [], [], []
        for p, m, (head, tail, cut) in zip(paths, metas, cuts):
            new_parts += [head, tail]
            new_paths += [p, p]
            new_metas += [m, m]
            part_info += [{"part": "head", "t_end_ns": cut}, {"part": "tail", "t_start_ns": cut}]
        parts, paths, metas = new_parts, new_paths, new_metas
        split_of = np.array([0, 1] * (len(parts) // 2), np.int8)  # [S]
        n_tr = sum(len(q.anchors) for q in parts[0::2])
        n_va = sum(len(q.anchors) for q in parts[1::2])
        split_note = (f"only {len(parts) // 2} session: too few for a session split, so the last "
                      f"{cfg.holdout_frac:.0%} of its windows by time are held out as 'val' "
                      f"({n_tr} train / {n_va} val windows)")
    else:
        split_of = _assign_splits(paths, metas, cfg)  # [S]
    del loaded
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
    weight = np.concatenate([_segment_weights(m.get("segments", []), p.bounds[p.anchors], cfg.segment_weights)
                             for p, m in zip(parts, metas)])  # [N]
    if (weight != 1.0).any():
        per_window["window_weight"] = weight

    present = set(split_of.tolist())
    split_names = [name for code, name in enumerate(SPLIT_NAMES) if code == 0 or code in present]  # code order

    def summary(code=None):  # counts over the sessions of split `code` (None: all)
        keep = [code is None or c == code for c in split_of]
        return _summary([p for p, k in zip(parts, keep) if k], [u for u, k in zip(users, keep) if k])

    stats = summary(0)
    stats.update({
        "feature_mean": mean.astype(float).tolist(), "feature_std": std.astype(float).tolist(),
        "tick_ms": parts[0].counts["tick_ms"], "thin_ms": cfg.thin_ms, "lookahead_clip_ms": cfg.lookahead_clip_ms,
        "computed_on": "train", **({"split_note": split_note} if split_note else {}),
        "splits": {name: summary(code) for code, name in enumerate(split_names)},
        "all": summary(),
    })
    sessions = []
    for i, (p, m, part) in enumerate(zip(paths, metas, parts)):
        sessions.append({"index": i, "path": str(p), "name": p.name, "user": users[i],
                         "split": SPLIT_NAMES[split_of[i]], "source": m.get("source"),
                         "n_events": int(len(part.rows)), "n_ticks": int(len(part.offsets) - 1),
                         "n_windows": int(len(part.anchors)), "window_size": list(part.window_size),
                         "import_counts": m.get("import_counts"),
                         "segments": {k: sum(sg["kind"] == k for sg in m.get("segments", []))
                                      for k in {sg["kind"] for sg in m.get("segments", [])}},
                         **part_info[i]})
    meta = {"format": DATASET_FORMAT, "T": T, "A": A, "F": F, "spec_hash": spec_hash,
            "feature_spec": metas[0].get("feature_spec"), "key_vocab_version": KEY_VOCAB_VERSION,
            "split_by": "time" if time_split else cfg.split_by, "split_note": split_note,
            "split_names": split_names, "n_windows": int(n_windows),
            "weighted_windows": int((weight != 1.0).sum()),
            "n_events": int(ev_base[-1]), "n_ticks": int(tick_base[-1]),
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
            "sessions": sessions}

    arrays = {"events": np.concatenate([p.rows for p in parts]), "tick_offsets": offsets.astype(np.int64),
              "tick_feature": tick_feature, "features": features_norm, **per_window}
    with atomic_dir(out, "dataset", overwrite=overwrite, looks_owned=_legacy_dataset) as tmp:
        for name, arr in arrays.items():
            with open_private(tmp / f"{name}.npy", "wb") as f:
                np.save(f, arr)
        write_private_text(tmp / "stats.json", json.dumps(stats, indent=1))
        write_private_text(tmp / "key_vocab.json", json.dumps({"version": KEY_VOCAB_VERSION, "keys": list(KEY_VOCAB)}))
        write_private_text(tmp / "meta.json", json.dumps(meta, indent=1))
    return stats
