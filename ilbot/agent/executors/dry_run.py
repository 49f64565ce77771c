"""`DryRunExecutor`: performs nothing, records what would have happened (the default mode).

It keeps the same held-key/button bookkeeping a real executor would (so `release_all()`,
`held()` and `release()` answer what a live run would have held and released) and a bounded log
of `Performed` records; listeners (the overlay) draw them. A CLICK holds its button until
`hold_ms` after it was performed. A release of a key it does not hold changes nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from ...data.action import PlannedAction
from ...data.keys import KEY_VOCAB
from ...data.schema import Button, EventType, KeyAction
from .base import Executor, Performed


class DryRunExecutor(Executor):
    name = "dry_run"

    def __init__(self, log_size: int = 10_000) -> None:
        super().__init__()
        self.log: deque[Performed] = deque(maxlen=log_size)
        self.held_keys: set[int] = set()
        self._key_since: dict[int, int] = {}  # key → monotonic ns of its press
        self._button_until: dict[int, tuple[int, int]] = {}  # button → (press ns, ns its hold ends)
        self._lock = threading.Lock()
        self.add_listener(self.log.append)

    def _perform(self, action: PlannedAction, sx: int, sy: int) -> None:
        now = time.monotonic_ns()
        with self._lock:
            if action.type == EventType.KEY:
                k = int(action.key_id)
                if action.key_action == KeyAction.PRESS:
                    if k not in self.held_keys:
                        self._key_since[k] = now
                    self.held_keys.add(k)
                else:
                    self.held_keys.discard(k)
                    self._key_since.pop(k, None)
            elif action.type == EventType.CLICK:
                self._button_until[int(action.button)] = (now, now + int(action.hold_ms * 1e6))

    @property
    def held_buttons(self) -> set[int]:
        now = time.monotonic_ns()
        with self._lock:
            return {b for b, (_, until) in self._button_until.items() if until > now}

    def held(self) -> dict[tuple[str, int], int]:
        now = time.monotonic_ns()
        with self._lock:
            out = {("key", k): self._key_since[k] for k in self.held_keys}
            out.update({("button", b): since for b, (since, until) in self._button_until.items() if until > now})
            return out

    def release(self, what: tuple[str, int], since_ns: int | None = None) -> bool:
        kind, n = what
        now = time.monotonic_ns()
        with self._lock:
            if kind == "key" and n in self.held_keys and since_ns in (None, self._key_since.get(n)):
                self.held_keys.discard(n)
                self._key_since.pop(n, None)
                return True
            hold = self._button_until.get(n) if kind == "button" else None
            if hold is not None and hold[1] > now and since_ns in (None, hold[0]):
                del self._button_until[n]
                return True
            return False

    def release_all(self) -> list[str]:
        buttons = self.held_buttons
        with self._lock:
            released = [KEY_VOCAB[k] for k in sorted(self.held_keys)] + [Button(b).name.lower() for b in sorted(buttons)]
            self.held_keys.clear()
            self._key_since.clear()
            self._button_until.clear()
        return released
