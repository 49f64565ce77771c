"""`replay`: the game state of a recorded session, at recorded or accelerated speed (DESIGN §3).

- `speed=1.0` re-lives the recording in real time: tick i becomes due `(t_i - t_0) / speed`
  after the adapter opened; a poll returns the newest due tick (ticks a slow caller overtook
  are skipped and counted `stale`, as with a live source).
- `speed=None` (or 0, or inf; `replay:S?speed=max` on the command line) is "as fast as polled":
  every poll returns the next tick, none skipped. Headless runs use this, so they are
  deterministic: the same session and seed give the same plans, whatever the machine's speed.
- Features: the stored ones, unless a spec with a different hash is given; then they are
  recomputed from the stored raw JSON (a session recorded before a spec change stays usable).
- `Capture.t_ns` is the tick's due time on the monotonic clock (the poll time in max speed).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ...data.schema import F
from .base import Capture, CaptureAdapter, Clock


class ReplayAdapter(CaptureAdapter):
    name = "replay"
    reports_ticks = True  # the recorded ticks

    def __init__(self, session, spec=None, *, speed: float | None = 1.0, tick_ms: float | None = None,
                 clock: Clock = time.monotonic_ns):
        from ...data.store import open_session

        self.session = open_session(session) if not hasattr(session, "ticks") else session
        meta = self.session.meta
        super().__init__(spec, tick_ms=float(tick_ms or meta.get("tick_ms") or 600.0), clock=clock)
        if speed is not None and (speed == 0 or math.isinf(speed)):
            speed = None
        if speed is not None and speed < 0:
            raise ValueError(f"replay speed must be > 0, got {speed}")
        self.speed = speed
        self.recompute = spec is not None and getattr(spec, "hash", None) != meta.get("feature_spec_hash")
        self._ticks = iter(self.session.ticks())
        self._peek = next(self._ticks, None)
        self._t0_rec = self._peek.t_ns if self._peek is not None else 0
        self._t0 = clock()
        self.delivered = 0

    def describe(self) -> str:
        return f"replay:{self.session.path}"

    @property
    def spec_name(self) -> str | None:
        return self.spec.name if self.recompute else self.session.meta.get("feature_spec")

    @property
    def spec_hash(self) -> str | None:
        return self.spec.hash if self.recompute else self.session.meta.get("feature_spec_hash")

    @property
    def finished(self) -> bool:
        """True once every tick of the session was delivered or skipped."""
        return self._peek is None

    def _due_ns(self, tick) -> int:
        return self._t0 + int((tick.t_ns - self._t0_rec) / self.speed)

    def _poll(self) -> Capture | None:
        if self._peek is None:
            return None
        now = self.clock()
        if self.speed is None:
            tick, due = self._peek, now
            self._peek = next(self._ticks, None)
        else:
            if self._due_ns(self._peek) > now:
                return None
            tick = self._peek
            self._peek = next(self._ticks, None)
            while self._peek is not None and self._due_ns(self._peek) <= now:  # newest wins
                self.counters["stale"] += 1
                tick = self._peek
                self._peek = next(self._ticks, None)
            due = self._due_ns(tick)
        if self.recompute:
            feats = self._features(tick.raw_json)  # [F]
        else:
            feats = np.asarray(tick.features, np.float32).reshape(F)  # [F]
        self.delivered += 1
        return Capture(int(tick.tick), due, tick.raw_json, feats)
