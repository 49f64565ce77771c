"""`GesturePerformer`: the demonstrator's gestures performed as real input through the agent's
`PynputExecutor` — the one input path the agent's live play uses too.

A gesture (a list of `Step`s from `DemoPolicy`) becomes planned actions (`gesture_actions`),
each performed at `start_ns + t_ms` on the monotonic clock by `executor.perform(action, origin)`
(window-relative pixels; `origin` is the client area's screen position). The executor moves the
pointer for a CLICK or SCROLL only when it is elsewhere, and releases a CLICK's button `hold_ms`
after the press on its own release thread. A gesture is over when its last input is: the
release of its last click, and at least `RELEASE_MARGIN_MS` after its last action's due time,
so the next decision sees the game after this gesture. `position()` reads the cursor back from
the X server (a person may have moved it); `release_all()` (the kill switch) lets go of every
key and button the executor holds.
"""

from __future__ import annotations

import threading
import time

from ..data.action import PlannedAction
from ..data.schema import EventType
from ..sandbox.demonstrator import Step, gesture_actions

RELEASE_MARGIN_MS = 20.0  # after a gesture's last input, before the next decision or the end
RELEASE_WAIT_S = 0.1  # at most this long for the executor's release thread after a click's hold


class GesturePerformer:
    """Performs gestures through an executor (a new `PynputExecutor` on this DISPLAY by default)."""

    def __init__(self, origin: tuple[int, int] = (0, 0), executor=None):
        from pynput import mouse  # needs a display: imported only when performing

        from ..agent.executors.pynput_exec import PynputExecutor

        self.origin = origin
        self.executor = executor if executor is not None else PynputExecutor()
        self._pointer = mouse.Controller()  # reads the cursor only; every input goes through the executor

    @property
    def performed(self) -> int:
        return self.executor.performed

    def position(self) -> tuple[float, float]:
        x, y = self._pointer.position
        return float(x - self.origin[0]), float(y - self.origin[1])

    def perform(self, action: PlannedAction):
        """Performs one action now (a CLICK's release follows `hold_ms` later); the `Performed` record."""
        return self.executor.perform(action, self.origin)

    def perform_gesture(self, steps: list[Step], start_ns: int, stop: threading.Event | None = None) -> int:
        """Performs each action at start_ns + t_ms; returns when the gesture is over (see the
        module) or, once `stop` is set, without performing the rest. Returns the number of actions."""
        actions = gesture_actions(steps)
        end_ns = start_ns + int(RELEASE_MARGIN_MS * 1e6)
        clicked = False
        for a in actions:
            if stop is not None and stop.is_set():
                return len(actions)
            due_ns = start_ns + int(a.t_ms * 1e6)
            delay = (due_ns - time.monotonic_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            rec = self.perform(a)
            end_ns = max(end_ns, due_ns + int(RELEASE_MARGIN_MS * 1e6))
            if a.type == EventType.CLICK and a.hold_ms > 0:
                end_ns = max(end_ns, rec.t_ns + int(a.hold_ms * 1e6))
                clicked = True
        delay = (end_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        if clicked:  # the executor's release thread lets go at the deadline: wait until it has
            deadline = time.monotonic() + RELEASE_WAIT_S
            while getattr(self.executor, "held_buttons", None) and time.monotonic() < deadline:
                time.sleep(0.0005)
        return len(actions)

    def release_all(self) -> list[str]:
        return self.executor.release_all()

    def close(self) -> None:
        """Releases everything and closes the executor's X connections."""
        self.executor.close()
        self._pointer = None
