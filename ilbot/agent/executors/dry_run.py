"""`DryRunExecutor`: performs nothing, records what would have happened (the default mode).

It keeps the same held-key/button bookkeeping a real executor would (so `release_all()` answers
what a live run would have released) and a bounded log of `Performed` records; listeners (the
overlay) draw them. A CLICK holds its button until `hold_ms` after it was performed.
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
        self._button_until: dict[int, int] = {}  # button → monotonic ns its hold ends
        self._lock = threading.Lock()
        self.add_listener(self.log.append)

    def _perform(self, action: PlannedAction, sx: int, sy: int) -> None:
        with self._lock:
            if action.type == EventType.KEY:
                if action.key_action == KeyAction.PRESS:
                    self.held_keys.add(int(action.key_id))
                else:
                    self.held_keys.discard(int(action.key_id))
            elif action.type == EventType.CLICK:
                self._button_until[int(action.button)] = time.monotonic_ns() + int(action.hold_ms * 1e6)

    @property
    def held_buttons(self) -> set[int]:
        now = time.monotonic_ns()
        with self._lock:
            return {b for b, until in self._button_until.items() if until > now}

    def release_all(self) -> list[str]:
        buttons = self.held_buttons
        with self._lock:
            released = [KEY_VOCAB[k] for k in sorted(self.held_keys)] + [Button(b).name.lower() for b in sorted(buttons)]
            self.held_keys.clear()
            self._button_until.clear()
        return released
