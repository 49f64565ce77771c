"""Layer 6, key pairing: the bookkeeping of what is held, and the rules that keep it sane.

- no press of a key already held ("key_held"), no release of a key not held ("key_not_held");
- at most `max_keys_held` keys down at once ("too_many_keys": a key storm cannot hold the keyboard);
- no CLICK with a button still held by an earlier CLICK's hold time ("button_held");
- a key held `max_hold_ms` is force-released: `due_releases(until_ms)` names those keys and the
  pipeline inserts their releases ("max_hold");
- `release_all()` forgets everything held and returns the keys that were down.

The pipeline holds one of these; it is the single record of what the plan has pressed.
"""

from __future__ import annotations

from ..data.action import PlannedAction
from ..data.schema import EventType, KeyAction
from .intervention import SafetyLayer


class KeyPairing(SafetyLayer):
    name = "key_pairing"

    def __init__(self, max_hold_ms: float, max_keys_held: int, log_size: int = 1000) -> None:
        super().__init__(log_size)
        self.max_hold_ms = float(max_hold_ms)
        self.max_keys_held = int(max_keys_held)
        self.held_keys: dict[int, float] = {}  # key_id → press time (ms)
        self.held_buttons: dict[int, float] = {}  # button → release time (ms) of the CLICK holding it

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        a = action
        if a.type == EventType.KEY:
            k = int(a.key_id)
            if a.key_action == KeyAction.PRESS:
                if k in self.held_keys:
                    self._intervene("key_held", a, now_ms)
                    return None
                if len(self.held_keys) >= self.max_keys_held:
                    self._intervene("too_many_keys", a, now_ms)
                    return None
            elif k not in self.held_keys:
                self._intervene("key_not_held", a, now_ms)
                return None
        elif a.type == EventType.CLICK:
            until = self.held_buttons.get(int(a.button))
            if until is not None and now_ms < until:
                self._intervene("button_held", a, now_ms)
                return None
        return a

    def commit(self, action: PlannedAction, now_ms: float) -> None:
        a = action
        if a.type == EventType.KEY:
            if a.key_action == KeyAction.PRESS:
                self.held_keys[int(a.key_id)] = now_ms
            else:
                self.held_keys.pop(int(a.key_id), None)
        elif a.type == EventType.CLICK:
            self.held_buttons[int(a.button)] = now_ms + float(a.hold_ms)

    def due_releases(self, until_ms: float) -> list[tuple[int, float]]:
        """(key_id, due ms) of the keys whose max hold ends at or before until_ms, earliest first."""
        due = [(k, t + self.max_hold_ms) for k, t in self.held_keys.items() if t + self.max_hold_ms <= until_ms]
        return sorted(due, key=lambda kd: (kd[1], kd[0]))

    def buttons_held_at(self, now_ms: float) -> list[int]:
        return sorted(b for b, until in self.held_buttons.items() if now_ms < until)

    def release_all(self) -> list[int]:
        keys = sorted(self.held_keys, key=lambda k: (self.held_keys[k], k))
        self.held_keys.clear()
        self.held_buttons.clear()
        return keys

    def reset(self) -> None:
        self.release_all()
