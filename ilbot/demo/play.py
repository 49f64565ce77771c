"""The demonstrator's loop: game state in through a capture adapter, gestures out.

- `StateFeed`: polls a capture adapter (json-dir: the path a real game's plugin uses) on its own
  thread; keeps the newest capture and hands each to `on_capture`.
- `Demonstrator`: decides on each state published *after* its previous gesture ended (so it
  never acts twice on the same stale state) with a `DemoPolicy`, and performs the gesture with a
  `GesturePerformer`.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Callable

from ..sandbox.demonstrator import DemoPolicy
from .perform import GesturePerformer


class StateFeed:
    """Polls a capture adapter on a thread; keeps the newest capture and hands each to `on_capture`."""

    def __init__(self, adapter, on_capture: Callable | None = None, poll_ms: float = 5.0):
        self.adapter = adapter
        self.on_capture = on_capture
        self.poll_s = poll_ms / 1000.0
        self.latest = None
        self.seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-demo-feed", daemon=True)

    def start(self) -> "StateFeed":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            cap = self.adapter.poll()
            if cap is not None:
                with self._lock:
                    self.latest = cap
                    self.seen += 1
                if self.on_capture is not None:
                    self.on_capture(cap)
            else:
                self._stop.wait(self.poll_s)

    def newest(self):
        with self._lock:
            return self.latest

    def wait_first(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            cap = self.newest()
            if cap is not None:
                return cap
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class Demonstrator:
    """The decide-and-perform loop over a state feed."""

    def __init__(self, policy: DemoPolicy, performer: GesturePerformer, feed: StateFeed):
        self.policy = policy
        self.performer = performer
        self.feed = feed
        self.gestures = 0
        self.decisions = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, until_tick: int, timeout_s: float, alive: Callable[[], bool] | None = None) -> dict:
        """Plays until the game publishes `until_tick`, `alive()` turns false, or the timeout;
        returns the last state seen."""
        deadline = time.monotonic() + timeout_s
        acted_ns = 0  # decisions only on states observed after the previous gesture ended
        last_tick = parsed_tick = None
        state: dict = {}
        while not self._stop.is_set() and time.monotonic() < deadline:
            cap = self.feed.newest()
            if cap is not None and cap.tick != parsed_tick:
                state, parsed_tick = json.loads(cap.raw_json), cap.tick
                if cap.tick >= until_tick:
                    break
            if cap is None or cap.tick == last_tick or cap.t_ns < acted_ns:
                if alive is not None and not alive():
                    break
                time.sleep(0.005)
                continue
            last_tick = cap.tick
            self.decisions += 1
            steps = self.policy.decide(state, self.performer.position())
            if steps:
                self.gestures += 1
                self.performer.perform_gesture(steps, time.monotonic_ns(), self._stop)
                acted_ns = time.monotonic_ns()
        return state
