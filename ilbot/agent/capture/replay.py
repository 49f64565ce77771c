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
- A damaged store never makes `poll()` raise: a tick whose features are not F float32 values or
  whose number is out of range is `malformed` and skipped; a store that cannot be read further
  counts `errors` and ends the replay (`finished`).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ...data.schema import F
from ...errors import UserError
from .base import Capture, CaptureAdapter, Clock, Malformed, check_tick


SPEED_MIN, SPEED_MAX = 0.01, 1000.0  # a replay speed in real time: 100 times slower .. 1000 times faster


def check_speed(speed) -> float | None:
    """A replay speed in [SPEED_MIN, SPEED_MAX], or None (also for 0 and inf) for as fast as
    polled; UserError else (negative, NaN, or so slow or fast that it is no replay in time)."""
    if speed is None:
        return None
    try:
        speed = float(speed)
    except (TypeError, ValueError):
        raise UserError(f"replay speed must be a number in {SPEED_MIN:g}..{SPEED_MAX:g} or 'max', "
                        f"got {speed!r}") from None
    if speed == 0 or speed == math.inf:
        return None
    if not SPEED_MIN <= speed <= SPEED_MAX:  # negative, NaN, absurdly slow or fast
        raise UserError(f"replay speed must be a number in {SPEED_MIN:g}..{SPEED_MAX:g} or 'max', got {speed}")
    return speed


class ReplayAdapter(CaptureAdapter):
    name = "replay"
    reports_ticks = True  # the recorded ticks

    def __init__(self, session, spec=None, *, speed: float | None = 1.0, tick_ms: float | None = None,
                 clock: Clock = time.monotonic_ns):
        from ...data.store import open_session

        speed = check_speed(speed)
        self.session = open_session(session) if not hasattr(session, "ticks") else session
        meta = self.session.meta
        super().__init__(spec, tick_ms=float(tick_ms or meta.get("tick_ms") or 600.0), clock=clock)
        self.speed = speed
        self.recompute = spec is not None and getattr(spec, "hash", None) != meta.get("feature_spec_hash")
        self.last_error: str | None = None
        self._ticks = iter(self.session.ticks())
        self._peek = self._next()
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

    def _next(self):
        """The next stored tick, or None at the end or when the store cannot be read further."""
        try:
            return next(self._ticks, None)
        except Exception as e:  # noqa: BLE001 - a damaged store ends the replay, it never raises
            self.counters["errors"] += 1
            self.last_error = f"{self.session.path}: {type(e).__name__}: {str(e)[:160]}"
            self._ticks = iter(())
            return None

    def _due_ns(self, tick) -> int:
        return self._t0 + int((tick.t_ns - self._t0_rec) / self.speed)

    def _poll(self) -> Capture | None:
        if self._peek is None:
            return None
        now = self.clock()
        if self.speed is None:
            tick, due = self._peek, now
            self._peek = self._next()
        else:
            if self._due_ns(self._peek) > now:
                return None
            tick = self._peek
            self._peek = self._next()
            while self._peek is not None and self._due_ns(self._peek) <= now:  # newest wins
                self.counters["stale"] += 1
                tick = self._peek
                self._peek = self._next()
            due = self._due_ns(tick)
        try:
            check_tick(int(tick.tick))
            if self.recompute:
                feats = self._features(tick.raw_json)  # [F]
            else:
                feats = np.asarray(tick.features, np.float32)  # [F]
                if feats.shape != (F,):
                    raise Malformed("features", f"{feats.size} stored feature values, expected {F}")
        except (Malformed, TypeError, ValueError) as err:
            self._malformed(f"{self.session.path} tick {tick.tick!r}",
                            err if isinstance(err, Malformed) else Malformed("bad_tick", str(err)[:120]))
            return None
        self.delivered += 1
        return Capture(int(tick.tick), due, tick.raw_json, feats)
