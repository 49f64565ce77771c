"""Valid target slots of dataset windows, flattened to one row per slot (DESIGN §5, §10).

Metrics and baselines work on these flat arrays rather than on `[N, A, ...]` windows: each row
is one valid target slot with its ground truth, its kind (in-window or the look-ahead slot) and
the previous event it follows (the previous target slot, or for slot 0 the last event of the
history; with an empty history its type is unknown and its position the pointer row's, where the
last pointer event before the context left the cursor), which the markov, dt_quantiles and
previous_position baselines condition on, and the last CLICK before it (among the history and
the window's earlier target slots: what the model sees under teacher forcing), which the
last_click baseline predicts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..data.schema import TG, UNKNOWN_POINTER, EventType, H

NO_PREV = 4  # prev_type of a slot that follows no known event (empty history)


def target_types(targets: np.ndarray) -> np.ndarray:
    """Event type of every target row (DESIGN §2 derivation, vectorised). [..., 7] → [...] int64."""
    button = targets[..., TG["button"]]
    key_action = targets[..., TG["key_action"]]
    scroll = targets[..., TG["scroll_y"]]
    out = np.full(targets.shape[:-1], int(EventType.MOVE), np.int64)
    out[scroll != 0] = int(EventType.SCROLL)
    out[key_action != 0] = int(EventType.KEY)
    out[button != 0] = int(EventType.CLICK)
    return out


@dataclass
class Slots:
    """One row per valid target slot. Positions are normalised to the window (0..1 inside);
    `w`, `h` turn them back into pixels."""

    type: np.ndarray  # [S] int64 EventType
    dt: np.ndarray  # [S] float64 ms
    x: np.ndarray  # [S] float64 normalised
    y: np.ndarray  # [S]
    w: np.ndarray  # [S] window width, px
    h: np.ndarray  # [S] window height, px
    button: np.ndarray  # [S] int64
    key_action: np.ndarray  # [S] int64
    key_id: np.ndarray  # [S] int64
    scroll: np.ndarray  # [S] int64
    lookahead: np.ndarray  # [S] bool, the window's last valid slot
    slot: np.ndarray  # [S] int64 slot index inside its window
    window: np.ndarray  # [S] int64 window index (row of the evaluated set)
    user: np.ndarray  # [S] int64 (-1 unknown)
    prev_type: np.ndarray  # [S] int64, NO_PREV when nothing precedes
    prev_x: np.ndarray  # [S] float64 normalised (the pointer row, or 0.5 when nothing is known)
    prev_y: np.ndarray  # [S]
    # the last CLICK before the slot (history or earlier target slots); None when not extracted
    has_click: np.ndarray | None = None  # [S] bool
    click_x: np.ndarray | None = None  # [S] float64 normalised (prev_x where there is none)
    click_y: np.ndarray | None = None  # [S]
    session: np.ndarray | None = None  # [S] int64 the slot's session in the dataset (-1 unknown); None when not extracted

    def __len__(self) -> int:
        return len(self.type)

    def select(self, keep: np.ndarray) -> "Slots":
        return Slots(**{f.name: (None if (v := getattr(self, f.name)) is None else v[keep]) for f in fields(self)})

    @staticmethod
    def concat(parts: list["Slots"]) -> "Slots":
        def join(name):
            vals = [getattr(p, name) for p in parts]
            return None if any(v is None for v in vals) else np.concatenate(vals)
        return Slots(**{f.name: join(f.name) for f in fields(Slots)})


def last_history_event(history: np.ndarray, history_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The latest valid event of each window's history.

    history [N,T,A,8], history_mask [N,T,A] → (rows [N,8], has [N] bool). Ticks and slots are in
    time order, so the last True of the flattened [T*A] mask is the latest event."""
    n = history.shape[0]
    flat_mask = history_mask.reshape(n, -1)  # [N, T*A]
    flat = history.reshape(n, flat_mask.shape[1], history.shape[-1])  # [N, T*A, 8]
    has = flat_mask.any(axis=1)  # [N]
    last = flat_mask.shape[1] - 1 - np.argmax(flat_mask[:, ::-1], axis=1)  # [N]
    rows = flat[np.arange(n), last]  # [N, 8]
    return rows, has


def last_history_click(history: np.ndarray, history_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The latest CLICK of each window's history: (xy [N,2] normalised, has [N] bool)."""
    n = history.shape[0]
    is_click = np.asarray(history_mask, bool) & (history[..., H["type"]] == int(EventType.CLICK))  # [N,T,A]
    rows, has = last_history_event(history, is_click)
    return rows[:, [H["x"], H["y"]]].astype(np.float64).reshape(n, 2), has


def last_click_before(types: np.ndarray, mask: np.ndarray, xy: np.ndarray, hist_xy: np.ndarray,
                      hist_has: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every target slot, the position of the last CLICK before it: the latest earlier target
    slot that is a CLICK, else the history's last CLICK. types, mask [N,A], xy [N,A,2], hist_xy
    [N,2], hist_has [N] → (xy [N,A,2], has [N,A] bool; xy is 0 where has is False)."""
    n, a = types.shape
    is_click = mask & (types == int(EventType.CLICK))  # [N,A]
    upto = np.maximum.accumulate(np.where(is_click, np.arange(a), -1), axis=1)  # [N,A] last click at or before i
    before = np.concatenate([np.full((n, 1), -1), upto[:, :-1]], axis=1)  # [N,A] strictly before i
    in_window = before >= 0
    picked = np.take_along_axis(xy, np.maximum(before, 0)[..., None], axis=1)  # [N,A,2]
    has = in_window | hist_has[:, None]
    out = np.where(in_window[..., None], picked, np.where(hist_has[:, None, None], hist_xy[:, None, :], 0.0))
    return out, has


def extract_slots(batch: dict, window_offset: int = 0) -> Slots:
    """Flatten the valid target slots of a batch of windows (numpy arrays under DESIGN §5 names,
    plus optional `user` [N] and `session` [N])."""
    targets = np.asarray(batch["targets"], np.float64)  # [N, A, 7]
    mask = np.asarray(batch["target_mask"], bool)  # [N, A]
    n, a = mask.shape
    window_size = np.asarray(batch["window_size"], np.float64)  # [N, 2]
    user = np.asarray(batch["user"], np.int64) if "user" in batch else np.full(n, -1, np.int64)
    session = np.asarray(batch["session"], np.int64) if "session" in batch else np.full(n, -1, np.int64)
    types = target_types(targets)  # [N, A]

    # Previous event of every slot: slot i>0 follows target slot i-1; slot 0 follows the history.
    hist_last, has = last_history_event(np.asarray(batch["history"]), np.asarray(batch["history_mask"], bool))
    prev_type = np.empty((n, a), np.int64)
    prev_x = np.empty((n, a), np.float64)
    prev_y = np.empty((n, a), np.float64)
    # with no event in the history, the position is the pointer row's where it is known (the
    # dataset's and the runtime's `pointer`), else the window centre; the type stays unknown
    pointer = np.asarray(batch["pointer"], np.float64) if "pointer" in batch else np.tile(UNKNOWN_POINTER, (n, 1))
    start_xy = np.where(pointer[:, 2:3] > 0.5, pointer[:, :2], 0.5)  # [N, 2]
    prev_type[:, 0] = np.where(has, hist_last[:, H["type"]].astype(np.int64), NO_PREV)
    prev_x[:, 0] = np.where(has, hist_last[:, H["x"]], start_xy[:, 0])
    prev_y[:, 0] = np.where(has, hist_last[:, H["y"]], start_xy[:, 1])
    prev_type[:, 1:] = types[:, :-1]
    prev_x[:, 1:] = targets[:, :-1, TG["x"]]
    prev_y[:, 1:] = targets[:, :-1, TG["y"]]
    hist_click, hist_has_click = last_history_click(np.asarray(batch["history"]), np.asarray(batch["history_mask"], bool))
    click_xy, has_click = last_click_before(types, mask, targets[..., [TG["x"], TG["y"]]], hist_click, hist_has_click)
    click_x = np.where(has_click, click_xy[..., 0], prev_x)  # [N,A]: the previous position where there is none
    click_y = np.where(has_click, click_xy[..., 1], prev_y)

    n_valid = mask.sum(axis=1)  # [N]
    slot_idx = np.broadcast_to(np.arange(a), (n, a))  # [N, A]
    lookahead = slot_idx == (n_valid - 1)[:, None]  # [N, A]
    win = np.broadcast_to(np.arange(n)[:, None] + window_offset, (n, a))
    wv = np.broadcast_to(window_size[:, None, 0], (n, a))
    hv = np.broadcast_to(window_size[:, None, 1], (n, a))
    uv = np.broadcast_to(user[:, None], (n, a))
    sv = np.broadcast_to(session[:, None], (n, a))
    m = mask
    return Slots(
        type=types[m], dt=targets[..., TG["dt_ms"]][m], x=targets[..., TG["x"]][m], y=targets[..., TG["y"]][m],
        w=wv[m], h=hv[m],
        button=targets[..., TG["button"]][m].astype(np.int64),
        key_action=targets[..., TG["key_action"]][m].astype(np.int64),
        key_id=targets[..., TG["key_id"]][m].astype(np.int64),
        scroll=targets[..., TG["scroll_y"]][m].astype(np.int64),
        lookahead=lookahead[m], slot=slot_idx[m].astype(np.int64), window=win[m].astype(np.int64),
        user=uv[m], prev_type=prev_type[m], prev_x=prev_x[m], prev_y=prev_y[m],
        has_click=has_click[m], click_x=click_x[m], click_y=click_y[m], session=sv[m],
    )
