"""The capture-adapter interface (DESIGN §3): one family, one interface, one file per source.

An adapter turns a game-state source (a folder of JSON files, an HTTP endpoint, the screen, a
recorded session) into `Capture` records: `(tick, t_ns, raw_json, features)`.

Decisions the design leaves open, recorded here:

- `poll()` never blocks for long and never raises for bad data: it returns the newest *fresh*
  capture since the previous poll, or None. Captures a slow caller missed are skipped (newest
  wins): a live agent only ever wants the current state.
- `Capture.t_ns` is the `time.monotonic_ns()` at which the state was observed (for json-dir: when
  the game wrote the file, converted from the file's wall-clock mtime), so it lives on the same
  clock as the scheduler and the recorder. The recorder subtracts its session start.
- `.counters` is a plain dict (like the safety pipeline's): `ok` captures delivered, `malformed`
  documents skipped as unparsable, `stale` documents ignored as too old, `errors` failed reads
  of an unreachable source.
- The stale-state watchdog is time based: `ticks_since_fresh` is how many whole ticks
  (`tick_ms`) have passed since the last fresh capture (since the adapter opened, before the
  first), whatever the caller's poll rate. The safety layer decides what N means (`is_stale(n)`).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...data.schema import F, TICK_MS

Clock = Callable[[], int]  # → monotonic nanoseconds


@dataclass(frozen=True)
class Capture:
    """One fresh game state: tick index, observation time (monotonic ns), raw JSON, features [F]."""

    tick: int
    t_ns: int
    raw_json: str
    features: np.ndarray  # [F] float32


class StaleWatchdog:
    """Counts whole ticks since the last fresh capture on a monotonic clock."""

    def __init__(self, tick_ms: float = TICK_MS, clock: Clock = time.monotonic_ns):
        if not tick_ms > 0:
            raise ValueError(f"tick_ms must be > 0, got {tick_ms}")
        self.tick_ms = float(tick_ms)
        self.clock = clock
        self.last_fresh_ns = clock()  # before any capture: since the watchdog started

    def fresh(self, t_ns: int | None = None) -> None:
        """Note a fresh capture (now, or at `t_ns` on the same clock)."""
        self.last_fresh_ns = self.clock() if t_ns is None else int(t_ns)

    @property
    def ticks_since_fresh(self) -> int:
        elapsed_ns = max(0, self.clock() - self.last_fresh_ns)
        return int(elapsed_ns // int(self.tick_ms * 1e6))

    def is_stale(self, n: int) -> bool:
        """True when no fresh capture arrived for `n` or more whole ticks."""
        return self.ticks_since_fresh >= n


class CaptureAdapter(ABC):
    """A game-state source. Subclasses implement `_poll()`; the base keeps counters and watchdog.

    `spec` is a feature spec (`ilbot.data.featurespec.FeatureSpec`: `.features(raw) -> [F]`), or
    None where the adapter makes its own features (screen) or reuses stored ones (replay)."""

    name = "adapter"
    # True when each fresh capture starts a tick (the game's own ticks, or a recording's): the
    # runtime then starts its ticks on captures instead of keeping its own grid
    reports_ticks = False

    def __init__(self, spec=None, *, tick_ms: float = TICK_MS, clock: Clock = time.monotonic_ns):
        self.spec = spec
        self.tick_ms = float(tick_ms)
        self.clock = clock
        self.counters: dict[str, int] = {"ok": 0, "malformed": 0, "stale": 0, "errors": 0}
        self.watchdog = StaleWatchdog(tick_ms, clock)
        self.closed = False

    # -- the interface -------------------------------------------------------------------
    def poll(self) -> Capture | None:
        """The newest fresh capture since the last poll, or None (nothing new, bad data, closed)."""
        if self.closed:
            return None
        cap = self._poll()
        if cap is not None:
            self.counters["ok"] += 1
            self.watchdog.fresh()
        return cap

    @property
    def ticks_since_fresh(self) -> int:
        return self.watchdog.ticks_since_fresh

    def is_stale(self, n: int) -> bool:
        return self.watchdog.is_stale(n)

    def close(self) -> None:
        self.closed = True

    def describe(self) -> str:
        """A short human description, stored as the session's `source` meta."""
        return self.name

    @property
    def spec_name(self) -> str | None:
        """Name of the features' spec (the session meta's `feature_spec`)."""
        return getattr(self.spec, "name", None)

    @property
    def spec_hash(self) -> str | None:
        """Hash of the features' spec (the session meta's `feature_spec_hash`)."""
        return getattr(self.spec, "hash", None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @abstractmethod
    def _poll(self) -> Capture | None: ...

    # -- helpers for subclasses ----------------------------------------------------------
    def _features(self, doc) -> np.ndarray:
        """Features [F] of a parsed document via the spec; zeros without a spec. (A spec never
        raises on odd documents: missing or unparsable values take the slot's default.)"""
        if self.spec is None:
            return np.zeros(F, np.float32)
        return np.asarray(self.spec.features(doc), dtype=np.float32).reshape(F)  # [F]


def tick_of(doc, *keys: str) -> int | None:
    """The game's own tick number from a document's first present key, if it is an integer."""
    if not isinstance(doc, dict):
        return None
    for k in keys:
        v = doc.get(k)
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
    return None
