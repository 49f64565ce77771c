"""The live model context: ring buffers of the last T ticks and of the actions that happened.

Each tick the runtime pushes the new tick's start time and game-state features; every action
that happens goes in as an `Event` on the same clock: the agent's own performed actions and, in
live mode, the human's observed input. `context()` turns the buffers into exactly the arrays the
dataset builder makes for a sample anchored at the newest tick t (DESIGN §5):

- `gamestate [T, F]`: features of ticks t-9 … t, normalised with the checkpoint's stats;
- `history [T, A, 8]`, `history_mask [T, A]`: for tick k the events of the window just before it,
  `[start(k-1), start(k))`, encoded by `ilbot.data.encoding.history_rows` — so the history of
  tick t is the window t-1 and nothing of tick t's own window leaks in.

Decisions where the design is silent:
- Before T ticks have been seen, the missing older ticks are padding: features all zero after
  normalisation (i.e. the dataset mean) and an empty history. A window whose start is unknown
  (the one before the first tick) has no events.
- Non-finite features (a broken feature spec or game state) become 0 after normalisation and
  are counted in `.counters["bad_features"]`, so one bad document cannot poison the model.
- Events older than the oldest window still needed are dropped as ticks advance: memory stays
  bounded however long the agent runs. The last pointer event among them is kept for
  `pointer [3]` (ilbot.data.encoding.pointer_row): where the cursor was before the context, as
  the dataset reads it from the events before a window's oldest history window.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from typing import Sequence

import numpy as np

from ..data.encoding import history_rows, normalise_features, pointer_row
from ..data.schema import A, HISTORY_FIELDS, POINTER_TYPES, T, Event


class ContextBuffer:
    """Ring buffers of tick starts, features and events → the model context of the newest tick."""

    def __init__(self, feature_mean: Sequence[float], feature_std: Sequence[float],
                 window_size: tuple[float, float], *, ticks: int = T, slots: int = A):
        self.mean = np.asarray(feature_mean, np.float32)  # [F]
        self.std = np.asarray(feature_std, np.float32)  # [F]
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f"feature mean/std must be two vectors of one length, got {self.mean.shape} and {self.std.shape}")
        self.n_features = int(self.mean.shape[0])
        self.window_size = (float(window_size[0]), float(window_size[1]))
        self.ticks = ticks
        self.slots = slots
        self._starts: deque[int] = deque(maxlen=ticks + 1)  # start ns of ticks t-T … t
        self._features: deque[np.ndarray] = deque(maxlen=ticks)  # normalised [F] of ticks t-T+1 … t
        self._events: list[Event] = []  # time order
        self._pointer: Event | None = None  # the last pointer event before the oldest window kept
        self.counters = {"ticks": 0, "events": 0, "bad_features": 0, "late_events": 0}

    def __len__(self) -> int:
        return len(self._features)

    @property
    def tick_start_ns(self) -> int | None:
        """Start of the newest tick, or None before the first."""
        return self._starts[-1] if self._starts else None

    def push_tick(self, start_ns: int, features: np.ndarray) -> None:
        """A new tick starts at `start_ns` with these raw game-state features [F]."""
        f = np.asarray(features, np.float32).reshape(-1)  # [F]
        if f.shape[0] != self.n_features:
            raise ValueError(f"game state has {f.shape[0]} features, the checkpoint expects {self.n_features}")
        if self._starts and start_ns < self._starts[-1]:
            raise ValueError(f"tick start {start_ns} ns is before the previous tick's {self._starts[-1]} ns")
        z = normalise_features(f, self.mean, self.std)  # [F]
        bad = ~np.isfinite(z)
        if bad.any():
            self.counters["bad_features"] += int(bad.sum())
            z = np.where(bad, 0.0, z).astype(np.float32)
        self._starts.append(int(start_ns))
        self._features.append(z)
        self.counters["ticks"] += 1
        self._prune()

    def add_event(self, event: Event) -> None:
        """An action that happened (or is due) at `event.t_ns` on the tick clock."""
        if self._starts and event.t_ns < self._starts[0]:
            self.counters["late_events"] += 1  # older than every window still kept
            if self._full():
                self._remember_pointer([event])
            return
        if not self._events or event.t_ns >= self._events[-1].t_ns:
            self._events.append(event)
        else:  # a listener's event can arrive after a scheduled one with a later due time
            i = bisect_left([e.t_ns for e in self._events], event.t_ns + 1)
            self._events.insert(i, event)
        self.counters["events"] += 1

    def discard_after(self, t_ns: int) -> int:
        """Forget events due after `t_ns` (scheduled but cancelled by a pause or stop)."""
        keep = [e for e in self._events if e.t_ns <= t_ns]
        dropped = len(self._events) - len(keep)
        self._events = keep
        return dropped

    def events(self) -> list[Event]:
        return list(self._events)

    def _full(self) -> bool:
        """Whether the oldest window's start is known (before that, the session has no earlier events)."""
        return len(self._starts) == self._starts.maxlen

    def _remember_pointer(self, dropped: list[Event]) -> None:
        for e in dropped:
            if e.type in POINTER_TYPES and (self._pointer is None or e.t_ns >= self._pointer.t_ns):
                self._pointer = e

    def _prune(self) -> None:
        if self._full():  # events are in time order: the dropped ones are a prefix
            i = bisect_left([e.t_ns for e in self._events], self._starts[0])
            self._remember_pointer(self._events[:i])
            self._events = self._events[i:]

    def context(self) -> dict[str, np.ndarray]:
        """The model context of the newest tick t: gamestate [T,F], history [T,A,8], history_mask
        [T,A], pointer [3]."""
        n = len(self._features)
        gamestate = np.zeros((self.ticks, self.n_features), np.float32)  # [T, F]
        history = np.zeros((self.ticks, self.slots, len(HISTORY_FIELDS)), np.float32)  # [T, A, 8]
        mask = np.zeros((self.ticks, self.slots), bool)  # [T, A]
        pointer = pointer_row(self._pointer, self.window_size)  # [3]
        if n == 0:
            return {"gamestate": gamestate, "history": history, "history_mask": mask, "pointer": pointer}
        gamestate[self.ticks - n:] = np.stack(list(self._features))  # newest tick last
        starts = list(self._starts)  # len n or n+1 (n+1 once the window before the oldest is known)
        times = [e.t_ns for e in self._events]
        # Row r of the context holds tick k = t-(T-1-r); its history is window k-1 = [start(k-1), start(k)).
        for back in range(n):  # back = 0 is the newest tick t
            r = self.ticks - 1 - back
            hi_i = len(starts) - 1 - back  # index of start(k)
            lo_i = hi_i - 1  # index of start(k-1)
            if lo_i < 0:
                continue  # the window before the first tick seen: unknown, empty
            lo, hi = starts[lo_i], starts[hi_i]
            window = self._events[bisect_left(times, lo):bisect_left(times, hi)]
            history[r], mask[r] = history_rows(window, lo, self.window_size, self.slots)  # [A, 8], [A]
        return {"gamestate": gamestate, "history": history, "history_mask": mask, "pointer": pointer}
