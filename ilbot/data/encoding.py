"""Encoding events into the fixed-size rows of DESIGN §5.

One function per row kind, used both by the dataset builder (offline) and by the live runtime
(building the model's context each tick), so training and play see identical inputs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .schema import A, HISTORY_FIELDS, LOOKAHEAD_CLIP_MS, TARGET_FIELDS, UNKNOWN_POINTER, Event

FEATURE_STD_EPS = 1e-6  # a constant feature (std 0) is centred but not scaled


def _event_row(e: Event, dt_ms: float, w: float, h: float, with_type: bool) -> list[float]:
    x, y = e.x / w, e.y / h  # normalised to the game window: 0..1 inside it
    head = [dt_ms, x, y] + ([float(e.type)] if with_type else [])
    return head + [float(e.button), float(e.key_action), float(e.key_id), float(e.scroll_y)]


def history_rows(events: Sequence[Event], start_ns: int, window_size: tuple[float, float],
                 slots: int = A) -> tuple[np.ndarray, np.ndarray]:
    """The events of one tick window as history rows.

    dt of the first event is measured from the window's start, later ones from the previous
    event. A window with more than `slots` events keeps the last `slots` (the ones nearest the
    tick being predicted). Returns rows [slots, 8] float32 and mask [slots] bool."""
    w, h = float(window_size[0]), float(window_size[1])
    rows = np.zeros((slots, len(HISTORY_FIELDS)), np.float32)
    mask = np.zeros(slots, bool)
    prev = start_ns
    encoded = []
    for e in events:
        encoded.append(_event_row(e, (e.t_ns - prev) / 1e6, w, h, with_type=True))
        prev = e.t_ns
    encoded = encoded[-slots:]
    if encoded:
        rows[: len(encoded)] = encoded
        mask[: len(encoded)] = True
    return rows, mask


def pointer_row(event: Event | None, window_size: tuple[float, float]) -> np.ndarray:
    """The pointer row [3] (POINTER_FIELDS) of the last pointer event before a context's oldest
    history window, or of none (UNKNOWN_POINTER)."""
    if event is None:
        return np.array(UNKNOWN_POINTER, np.float32)
    return np.array([event.x / float(window_size[0]), event.y / float(window_size[1]), 1.0], np.float32)


def target_rows(events: Sequence[Event], lookahead: Event, start_ns: int, window_size: tuple[float, float],
                slots: int = A, clip_ms: float = LOOKAHEAD_CLIP_MS) -> tuple[np.ndarray, np.ndarray, int]:
    """The events of tick t's window plus the look-ahead slot, as target rows.

    `events` are the events inside the window; `lookahead` is the first event after it, whose
    dt (from the last in-window event, or from the window start when the tick is idle) crosses
    the window's end and is clipped at `clip_ms`. At most slots-1 in-window events are kept so
    the look-ahead slot always fits; the rest are dropped (overflow, returned as a count) and the
    look-ahead's dt is still measured from the last *kept* event. Returns rows [slots, 7]
    float32, mask [slots] bool and the overflow count."""
    w, h = float(window_size[0]), float(window_size[1])
    kept = list(events[: slots - 1])
    overflow = len(events) - len(kept)
    rows = np.zeros((slots, len(TARGET_FIELDS)), np.float32)
    mask = np.zeros(slots, bool)
    prev = start_ns
    for i, e in enumerate(kept):
        rows[i] = _event_row(e, (e.t_ns - prev) / 1e6, w, h, with_type=False)
        prev = e.t_ns
    n = len(kept)
    rows[n] = _event_row(lookahead, min((lookahead.t_ns - prev) / 1e6, clip_ms), w, h, with_type=False)
    mask[: n + 1] = True
    return rows, mask, overflow


def normalise_features(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(features - mean) / std, with std floored so constant features stay finite."""
    return ((features - mean) / np.maximum(std, FEATURE_STD_EPS)).astype(np.float32)
