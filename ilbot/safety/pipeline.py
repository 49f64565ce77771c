"""`SafetyPipeline`: the layers in DESIGN §7's order, applied to one tick's plan at a time.

    finite → OS chords → bounds → time floor → cooldowns → rate limit → key pairing → stale-state watchdog

`filter(actions, tick_start_ms)` takes a plan (t_ms relative to the tick start, any order, any
values) and returns the actions to perform, sorted by time, each one having passed every layer;
only then is it committed to the layers' state (so a dropped action never arms a cooldown or
marks a key held). Absolute times are `tick_start_ms + t_ms` on the caller's monotonic clock, and
state carries across ticks: the time floor and the rate limit hold across a tick boundary.

Forced releases (a key held `max_hold_ms`) are inserted where they fall due — before the first
action at or after that time, or at the end of the tick for those due before the tick ends — as
KEY release actions with `source="safety"`. They go through the layers like any action (the time
floor may delay them by a few ms), so every invariant holds for the whole output stream.

When the watchdog turns stale, the next `filter` returns only the releases of every held key
(at t_ms 0) and drops the plan; `release_all()` does the same on demand (stop, pause, exit) and
returns the release actions. Buttons need no release action: a CLICK's release is part of the
CLICK (the executor releases after the hold), and the executor's own `release_all()` releases a
button caught mid-hold. `note_released(key_id)` forgets a key released outside the plan (the
safety clock's forced release, `ilbot.safety.clock`).
"""

from __future__ import annotations

import math
from collections import Counter, deque

from ..data.action import PlannedAction
from ..data.schema import EventType, KeyAction
from .bounds import Bounds
from .chords import OsChords
from .config import SafetyConfig
from .finite import FiniteCheck
from .intervention import Intervention, SafetyLayer
from .key_pairing import KeyPairing
from .timing import Cooldowns, RateLimit, TimeFloor
from .watchdog import StaleStateWatchdog


def _time_key(a: PlannedAction) -> float:
    """Sort key: the planned time, with anything not a finite number last (the finite layer drops it)."""
    try:
        t = float(a.t_ms)
    except (TypeError, ValueError):
        return math.inf
    return t if math.isfinite(t) else math.inf


class SafetyPipeline:
    def __init__(self, config: SafetyConfig | None = None, window_size: tuple[float, float] = (1, 1)) -> None:
        self.config = cfg = config or SafetyConfig()
        n = cfg.log_size
        self.key_pairing = KeyPairing(cfg.max_hold_ms, cfg.max_keys_held, n)
        held = lambda: self.key_pairing.held_keys  # noqa: E731 - the one record of what the plan holds
        self.finite = FiniteCheck(cfg.max_plan_ms, n, cfg.blocked_key_ids)
        self.os_chords = OsChords(held, cfg.allowed_os_chords, n)
        self.bounds = Bounds(window_size, cfg.region, cfg.max_click_hold_ms, n)
        self.time_floor = TimeFloor(cfg.min_dt_ms, n)
        self.cooldowns = Cooldowns(cfg.cooldown_ms, n)
        self.rate_limit = RateLimit(cfg.max_actions_per_s, cfg.max_per_s, n, held_keys=held)
        self.watchdog = StaleStateWatchdog(cfg.stale_ticks, n)
        self.layers: list[SafetyLayer] = [self.finite, self.os_chords, self.bounds, self.time_floor, self.cooldowns,
                                          self.rate_limit, self.key_pairing, self.watchdog]
        self.counters: Counter[str] = Counter()  # reason → interventions (plus "passed", "planned")
        self.interventions: deque[Intervention] = deque(maxlen=n)  # the most recent, oldest first
        self.listeners: list = []  # callables(Intervention), e.g. a logger or the GUI
        for layer in self.layers:
            layer.sink = self._record
        self.cursor = self.bounds.clamp(0.0, 0.0)  # last performed pointer position (window px)

    # -- bookkeeping -------------------------------------------------------------------------
    def _record(self, iv: Intervention) -> None:
        self.counters[iv.reason] += 1
        self.interventions.append(iv)
        for fn in self.listeners:
            fn(iv)

    @property
    def held_keys(self) -> list[int]:
        return sorted(self.key_pairing.held_keys)

    @property
    def paused(self) -> bool:
        """True while the watchdog holds the agent (stale game state)."""
        return self.watchdog.stale

    def observe_state(self, fresh: bool) -> bool:
        """Tell the watchdog whether this tick brought fresh game state; True while stale."""
        return self.watchdog.observe(fresh)

    # -- the filter --------------------------------------------------------------------------
    def _admit(self, action: PlannedAction, tick_start_ms: float) -> PlannedAction | None:
        a = action
        for layer in self.layers:
            now = tick_start_ms + a.t_ms if _time_key(a) < math.inf else math.nan
            a = layer.filter(a, now)
            if a is None:
                return None
        now = tick_start_ms + a.t_ms
        for layer in self.layers:
            layer.commit(a, now)
        if a.type != EventType.KEY:
            self.cursor = (a.x, a.y)
        self.counters["passed"] += 1
        return a

    def _release_action(self, key_id: int, t_ms: float, reason: str) -> PlannedAction:
        return PlannedAction(type=EventType.KEY, t_ms=t_ms, x=self.cursor[0], y=self.cursor[1],
                             key_action=KeyAction.RELEASE, key_id=key_id, source="safety", meta={"reason": reason})

    def _forced_releases(self, until_ms: float, tick_start_ms: float) -> list[PlannedAction]:
        out = []
        for key_id, due_ms in self.key_pairing.due_releases(until_ms):
            rel = self._release_action(key_id, max(due_ms - tick_start_ms, 0.0), "max_hold")
            self._record(Intervention("max_hold", rel, "key_pairing", due_ms, dropped=False))
            admitted = self._admit(rel, tick_start_ms)
            if admitted is not None:
                out.append(admitted)
        return out

    def filter(self, actions: list[PlannedAction], tick_start_ms: float) -> list[PlannedAction]:
        """The actions of one tick's plan that may be performed, in time order (t_ms since tick_start_ms)."""
        if self.watchdog.stale:
            out = self.release_all(reason="stale_release")
            for a in actions:
                self.watchdog._intervene("stale_state", a, math.nan)
            return out
        out: list[PlannedAction] = []
        for a in sorted(actions, key=_time_key):
            self.counters["planned"] += 1
            t = _time_key(a)
            if t < math.inf:
                out += self._forced_releases(tick_start_ms + t, tick_start_ms)
            admitted = self._admit(a, tick_start_ms)
            if admitted is not None:
                out.append(admitted)
        out += self._forced_releases(tick_start_ms + self.config.tick_ms, tick_start_ms)
        return out

    def release_all(self, reason: str = "release_all") -> list[PlannedAction]:
        """Forget everything held; the KEY release actions (t_ms 0) for the keys that were down."""
        out = [self._release_action(k, 0.0, reason) for k in self.key_pairing.release_all()]
        self.counters[reason] += len(out)
        return out

    def note_released(self, key_id: int) -> bool:
        """Bookkeeping for a key released outside the plan (the safety clock's forced release):
        forget it as held, so no release of it is planned. True if it was held."""
        return self.key_pairing.held_keys.pop(int(key_id), None) is not None

    def reset(self) -> None:
        """A fresh run: forget all timing and held state (counters are kept)."""
        for layer in self.layers:
            layer.reset()
