"""Valid target slots of dataset windows, flattened to one row per slot (DESIGN §5, §10).

Metrics and baselines work on these flat arrays rather than on `[N, A, ...]` windows: each row
is one valid target slot with its ground truth, its kind (in-window or the look-ahead slot) and
the previous event it follows (the previous target slot, or for slot 0 the last event of the
history), which the markov, dt_quantiles and previous_position baselines condition on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..data.schema import H, TG, EventType

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
    prev_x: np.ndarray  # [S] float64 normalised (0.5 when nothing precedes)
    prev_y: np.ndarray  # [S]

    def __len__(self) -> int:
        return len(self.type)

    def select(self, keep: np.ndarray) -> "Slots":
        return Slots(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @staticmethod
    def concat(parts: list["Slots"]) -> "Slots":
        return Slots(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Slots)})


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


def extract_slots(batch: dict, window_offset: int = 0) -> Slots:
    """Flatten the valid target slots of a batch of windows (numpy arrays under DESIGN §5 names,
    plus optional `user` [N])."""
    targets = np.asarray(batch["targets"], np.float64)  # [N, A, 7]
    mask = np.asarray(batch["target_mask"], bool)  # [N, A]
    n, a = mask.shape
    window_size = np.asarray(batch["window_size"], np.float64)  # [N, 2]
    user = np.asarray(batch["user"], np.int64) if "user" in batch else np.full(n, -1, np.int64)
    types = target_types(targets)  # [N, A]

    # Previous event of every slot: slot i>0 follows target slot i-1; slot 0 follows the history.
    hist_last, has = last_history_event(np.asarray(batch["history"]), np.asarray(batch["history_mask"], bool))
    prev_type = np.empty((n, a), np.int64)
    prev_x = np.empty((n, a), np.float64)
    prev_y = np.empty((n, a), np.float64)
    prev_type[:, 0] = np.where(has, hist_last[:, H["type"]].astype(np.int64), NO_PREV)
    prev_x[:, 0] = np.where(has, hist_last[:, H["x"]], 0.5)
    prev_y[:, 0] = np.where(has, hist_last[:, H["y"]], 0.5)
    prev_type[:, 1:] = types[:, :-1]
    prev_x[:, 1:] = targets[:, :-1, TG["x"]]
    prev_y[:, 1:] = targets[:, :-1, TG["y"]]

    n_valid = mask.sum(axis=1)  # [N]
    slot_idx = np.broadcast_to(np.arange(a), (n, a))  # [N, A]
    lookahead = slot_idx == (n_valid - 1)[:, None]  # [N, A]
    win = np.broadcast_to(np.arange(n)[:, None] + window_offset, (n, a))
    wv = np.broadcast_to(window_size[:, None, 0], (n, a))
    hv = np.broadcast_to(window_size[:, None, 1], (n, a))
    uv = np.broadcast_to(user[:, None], (n, a))
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
    )
