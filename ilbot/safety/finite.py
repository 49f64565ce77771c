"""Layer 1, finite values and valid fields: a model output with NaN/inf anywhere is dropped.

Also dropped (a model or plan bug, never something to repair): a type that is not an EventType,
the fields the type uses out of their ranges (CLICK button 1..3; KEY action press/release and a
key id inside the vocabulary other than UNK; SCROLL up/down), a negative time (before its tick
started), a time beyond `max_plan_ms`, and any press or release of a key in `blocked_keys`
("blocked_key": the lock keys by default; OS chords are the `OsChords` layer). The action that passes has `type` as an `EventType`.
"""

from __future__ import annotations

import math

from ..data.action import PlannedAction
from ..data.keys import UNK, VOCAB_SIZE
from ..data.schema import Button, EventType, KeyAction, ScrollY
from .intervention import SafetyLayer


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError, OverflowError):
        return False


def _int_in(v, lo: int, hi: int) -> bool:
    try:
        return float(v) == int(v) and lo <= int(v) <= hi
    except (TypeError, ValueError, OverflowError):
        return False


class FiniteCheck(SafetyLayer):
    name = "finite"

    def __init__(self, max_plan_ms: float, log_size: int = 1000, blocked_keys: frozenset[int] = frozenset()) -> None:
        super().__init__(log_size)
        self.max_plan_ms = float(max_plan_ms)
        self.blocked_keys = frozenset(blocked_keys)

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        a = action
        scalars = (a.t_ms, a.x, a.y, a.sigma_x, a.sigma_y, a.hold_ms)
        try:
            vectors = tuple(a.event_probs) + tuple(a.time_q)
        except TypeError:
            vectors = (None,)
        if not all(_finite(v) for v in scalars + vectors):
            self._intervene("non_finite", a, now_ms)
            return None
        if not _int_in(a.type, 0, len(EventType) - 1):
            self._intervene("invalid_field", a, now_ms)
            return None
        kind = EventType(int(a.type))
        ok = {
            EventType.CLICK: lambda: _int_in(a.button, Button.LEFT, Button.MIDDLE),
            EventType.KEY: lambda: (_int_in(a.key_action, KeyAction.PRESS, KeyAction.RELEASE)
                                    and _int_in(a.key_id, UNK + 1, VOCAB_SIZE - 1)),
            EventType.SCROLL: lambda: _int_in(a.scroll_y, ScrollY.UP, ScrollY.DOWN),
            EventType.MOVE: lambda: True,
        }[kind]()
        if not ok:
            self._intervene("invalid_field", a, now_ms)
            return None
        if kind == EventType.KEY and int(a.key_id) in self.blocked_keys:
            self._intervene("blocked_key", a, now_ms)
            return None
        if a.t_ms < 0:
            self._intervene("negative_time", a, now_ms)
            return None
        if a.t_ms > self.max_plan_ms:
            self._intervene("too_far_ahead", a, now_ms)
            return None
        return a if a.type is kind else a.with_(type=kind)
