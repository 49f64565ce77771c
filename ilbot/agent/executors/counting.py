"""`CountingExecutor`: the wrapper every run puts around its real executor.

It counts what was performed (by type) and remembers where the agent last put the pointer (screen
pixels), under one lock, so the human-override check never races a half-done move. With an
`AgentEcho` it notes each action *before* performing it, so the human-input listeners can tell
the agent's own injected events from the person's. Anything else (`held`, `log`, listeners, ...)
is the wrapped executor's.
"""

from __future__ import annotations

import threading

from ...data.action import PlannedAction
from ...data.schema import POINTER_TYPES, EventType


class CountingExecutor:
    def __init__(self, inner, echo=None):
        self.inner = inner
        self.echo = echo
        self.lock = threading.RLock()
        self.performed = 0
        self.by_type = {e.name: 0 for e in EventType}
        self.pointer: tuple[float, float] | None = None  # where the agent last put the pointer

    def perform(self, action: PlannedAction, origin):
        with self.lock:
            sx, sy = origin[0] + round(action.x), origin[1] + round(action.y)
            if action.type in POINTER_TYPES:
                self.pointer = (sx, sy)
            if self.echo is not None:
                self.echo.note_action(action, int(round(sx)), int(round(sy)))
            rec = self.inner.perform(action, origin)
            self.performed += 1
            self.by_type[EventType(action.type).name] += 1
        return rec

    def forget_pointer(self) -> None:
        """After a pause: the agent has not put the pointer anywhere since (the person may have)."""
        with self.lock:
            self.pointer = None

    def release_all(self):
        return self.inner.release_all()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name):
        return getattr(self.inner, name)
