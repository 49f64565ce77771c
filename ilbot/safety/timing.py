"""Layers 3-5, timing limits: the time floor, per-type cooldowns and the rate limit.

All three keep only what was *committed* (performed), on the caller's monotonic ms clock, across
ticks. A key release is never dropped by them (that would leave a key held): the time floor
delays it to the first allowed time instead, cooldowns ignore releases, and the rate limit counts
them without ever dropping one (see `RateLimit`).
"""

from __future__ import annotations

from collections import deque

from ..data.action import PlannedAction
from ..data.schema import EVENT_NAMES, EventType, KeyAction
from .intervention import SafetyLayer, is_release


class TimeFloor(SafetyLayer):
    """At least `min_dt_ms` between any two performed actions; also keeps performed times ordered
    (an action due before the last performed one is dropped, whatever the gap)."""

    name = "time_floor"

    def __init__(self, min_dt_ms: float, log_size: int = 1000) -> None:
        super().__init__(log_size)
        self.min_dt_ms = float(min_dt_ms)
        self.last_ms: float | None = None

    def next_allowed_ms(self) -> float:
        return float("-inf") if self.last_ms is None else self.last_ms + self.min_dt_ms

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        earliest = self.next_allowed_ms()
        if now_ms >= earliest:
            return action
        if is_release(action):
            self._intervene("time_floor_delayed", action, now_ms, dropped=False)
            return action.with_(t_ms=action.t_ms + (earliest - now_ms))
        self._intervene("time_floor", action, now_ms)
        return None

    def commit(self, action: PlannedAction, now_ms: float) -> None:
        self.last_ms = now_ms

    def reset(self) -> None:
        self.last_ms = None


class Cooldowns(SafetyLayer):
    """At least `cooldown_ms[type]` between two performed actions of the same type (KEY: presses)."""

    name = "cooldown"

    def __init__(self, cooldown_ms: dict[str, float], log_size: int = 1000) -> None:
        super().__init__(log_size)
        self.cooldown_ms = [float(cooldown_ms.get(n, 0.0)) for n in EVENT_NAMES]  # by EventType index
        self.last_ms: list[float | None] = [None] * len(EVENT_NAMES)

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        if is_release(action):
            return action
        t = int(action.type)
        last = self.last_ms[t]
        if last is not None and now_ms - last < self.cooldown_ms[t]:
            self._intervene("cooldown", action, now_ms)
            return None
        return action

    def commit(self, action: PlannedAction, now_ms: float) -> None:
        if not is_release(action):
            self.last_ms[int(action.type)] = now_ms

    def reset(self) -> None:
        self.last_ms = [None] * len(EVENT_NAMES)


class RateLimit(SafetyLayer):
    """At most `max_actions_per_s` actions of every kind, key releases included, in any sliding 1 s
    window (t - 1000, t], and at most `max_per_s[type]` non-release actions of a type.

    A release is never dropped, so room is kept for them: a non-release action passes only if the
    window has room for it *and* for a release of every key held after it (`held_keys()`, the
    key-pairing layer's record; without one, nothing is counted as held). Whatever releases
    follow in the window were then counted when the window's last non-release action passed."""

    name = "rate_limit"
    WINDOW_MS = 1000.0

    def __init__(self, max_actions_per_s: float, max_per_s: dict[str, float], log_size: int = 1000,
                 held_keys=None) -> None:
        super().__init__(log_size)
        self.held_keys = held_keys
        self.max_total = float(max_actions_per_s)
        self.max_type = [max_per_s.get(n) for n in EVENT_NAMES]  # None: no per-type limit
        self.total: deque[float] = deque()
        self.by_type: list[deque[float]] = [deque() for _ in EVENT_NAMES]

    def _count(self, times: deque[float], now_ms: float) -> int:
        while times and times[0] <= now_ms - self.WINDOW_MS:
            times.popleft()
        return len(times)

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        if is_release(action):
            return action
        t = int(action.type)
        limit = self.max_type[t]
        held = 0
        if self.held_keys is not None:
            held = len(self.held_keys()) + (t == EventType.KEY and int(action.key_action) == KeyAction.PRESS)
        if self._count(self.total, now_ms) + 1 + held > self.max_total or (
                limit is not None and self._count(self.by_type[t], now_ms) + 1 > limit):
            self._intervene("rate_limit", action, now_ms)
            return None
        return action

    def commit(self, action: PlannedAction, now_ms: float) -> None:
        self.total.append(now_ms)
        if not is_release(action):
            self.by_type[int(action.type)].append(now_ms)

    def reset(self) -> None:
        self.total.clear()
        for d in self.by_type:
            d.clear()
