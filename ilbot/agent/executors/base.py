"""`Executor`: the one interface every way of performing actions implements (DESIGN §7).

`perform(action, origin)` performs one action *now* (the scheduler decides when); positions are
window-relative pixels and `origin` is the window's client-area origin on the screen, so the
screen position is `origin + (round(x), round(y))`. `release_all()` lets go of every key and
button this executor holds and returns what it released; `close()` releases and frees resources.

What it holds, and since when: `held()` → {what: since_ns}, where `what` is `("key", key_id)` or
`("button", button)` and `since_ns` the `time.monotonic_ns()` of the press; `release(what,
since_ns=None)` lets go of one of them (only if it is still the same press when `since_ns` is
given, so a release decided on an old reading never hits a newer press) and returns whether it
did. The safety clock (`ilbot.safety.clock`) force-releases through these two.
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


def held_name(what: tuple[str, int]) -> str:
    """A held thing as a name for logs: the key's vocabulary name or "left"/"right"/"middle"."""
    from ...data.keys import KEY_VOCAB
    from ...data.schema import Button

    kind, n = what
    return KEY_VOCAB[int(n)] if kind == "key" else Button(int(n)).name.lower()


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

    def held(self) -> dict[tuple[str, int], int]:  # pragma: no cover - interface
        """{("key", key_id) | ("button", button): monotonic ns of its press} for what is down now."""
        raise NotImplementedError

    def release(self, what: tuple[str, int], since_ns: int | None = None) -> bool:  # pragma: no cover - interface
        """Release one held key or button (if since_ns is given: only the press made then)."""
        raise NotImplementedError

    def close(self) -> None:
        self.release_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
