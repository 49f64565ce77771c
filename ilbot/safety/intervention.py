"""`Intervention` (what a safety layer did and why) and `SafetyLayer`, the interface of every layer.

A layer is a small pure class: `filter(action, now_ms)` looks at one action due at the absolute
time `now_ms` (ms on the caller's monotonic clock) and returns it (possibly changed: clamped,
delayed) or None to drop it. It changes no state: `commit(action, now_ms)` is called by the
pipeline once an action has passed *every* layer, so an action a later layer drops never counts
as performed (it neither arms a cooldown nor takes a rate-limit slot nor marks a key held).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable

from ..data.action import PlannedAction
from ..data.schema import EventType, KeyAction


@dataclass(frozen=True)
class Intervention:
    reason: str  # e.g. "non_finite", "out_of_bounds", "time_floor", "key_held", "max_hold"
    action: PlannedAction  # the action as the layer saw it
    layer: str  # the layer's name
    now_ms: float  # when the action was due (caller's monotonic ms); nan when it had no valid time
    dropped: bool  # True: the action was dropped; False: changed (clamped, delayed) or added


def is_release(action: PlannedAction) -> bool:
    """A key release: never dropped by a timing layer (dropping one would leave a key held)."""
    return int(action.type) == EventType.KEY and int(action.key_action) == KeyAction.RELEASE


class SafetyLayer:
    """Base class: counts interventions by reason, keeps the recent ones, forwards them to a sink."""

    name = "layer"

    def __init__(self, log_size: int = 1000) -> None:
        self.counters: Counter[str] = Counter()
        self.interventions: deque[Intervention] = deque(maxlen=log_size)
        self.sink: Callable[[Intervention], None] | None = None

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:  # pragma: no cover - interface
        raise NotImplementedError

    def commit(self, action: PlannedAction, now_ms: float) -> None:
        """The action passed every layer and will be performed at now_ms."""

    def reset(self) -> None:
        """Forget all state (a new run)."""

    def _intervene(self, reason: str, action: PlannedAction, now_ms: float, dropped: bool = True) -> None:
        iv = Intervention(reason, action, self.name, float(now_ms), dropped)
        self.counters[reason] += 1
        self.interventions.append(iv)
        if self.sink is not None:
            self.sink(iv)
