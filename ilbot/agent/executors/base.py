"""`Executor`: the one interface every way of performing actions implements (DESIGN §7).

`perform(action, origin)` performs one action *now* (the scheduler decides when); positions are
window-relative pixels and `origin` is the window's client-area origin on the screen, so the
screen position is `origin + (round(x), round(y))`. `release_all()` lets go of every key and
button this executor holds and returns what it released; `close()` releases and frees resources.
Listeners (`add_listener(fn)`) get a `Performed` record for every performed action — the overlay
and the GUI's log use them. A new executor is one file: subclass, implement `_perform`,
`release_all` and (if needed) `close`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from ...data.action import PlannedAction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Performed:
    t_ns: int  # time.monotonic_ns() when performed
    action: PlannedAction
    screen_x: int  # where it happened on the screen
    screen_y: int


def screen_position(action: PlannedAction, origin: tuple[float, float]) -> tuple[int, int]:
    """Window-relative pixels → whole screen pixels."""
    return int(round(origin[0] + round(action.x))), int(round(origin[1] + round(action.y)))


class Executor:
    name = "executor"

    def __init__(self) -> None:
        self.listeners: list = []
        self.performed = 0
        self._listeners_lock = threading.Lock()

    def add_listener(self, fn) -> None:
        with self._listeners_lock:
            self.listeners.append(fn)

    def remove_listener(self, fn) -> None:
        with self._listeners_lock:
            if fn in self.listeners:
                self.listeners.remove(fn)

    def perform(self, action: PlannedAction, origin: tuple[float, float] = (0, 0)) -> Performed:
        sx, sy = screen_position(action, origin)
        self._perform(action, sx, sy)
        rec = Performed(time.monotonic_ns(), action, sx, sy)
        self.performed += 1
        with self._listeners_lock:
            listeners = list(self.listeners)
        for fn in listeners:
            try:
                fn(rec)
            except Exception:
                log.exception("executor listener failed")
        return rec

    def _perform(self, action: PlannedAction, sx: int, sy: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def release_all(self) -> list[str]:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        self.release_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
