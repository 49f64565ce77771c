"""`json-dir`: a folder of per-tick JSON files written by a game-client plugin (DESIGN §3).

Protocol (docs/contracts.md): the game writes `tick_<n>.json` atomically (a `.tmp` file, then
`os.replace`). Each document is the game state, with `"tick"` (int) when the game knows it.

- Newest wins: the file with the latest mtime (ties: the larger tick number in the name). Only
  names ending in `.json` are read; `.tmp` and hidden files never are.
- A file is delivered once (keyed by name, mtime and size); one whose mtime is older than
  `stale_ms` is ignored and counted `stale` (a leftover from an earlier game run).
- Robust to writers that are not atomic: a file that fails to parse while it is younger than
  `settle_ms` is retried on the next poll instead of being counted malformed; once it has
  settled, a bad document is counted `malformed` once and skipped.
- The tick index is the document's `"tick"`, else the number in the file name, else a counter.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from ...data.schema import TICK_MS
from ...errors import UserError
from .base import Capture, CaptureAdapter, Clock, tick_of

_TICK_NAME = re.compile(r"(\d+)\.json$")


class JsonDirAdapter(CaptureAdapter):
    name = "json-dir"
    reports_ticks = True  # each file is one game tick

    def __init__(self, path, spec=None, *, tick_ms: float = TICK_MS, stale_ms: float | None = None,
                 settle_ms: float = 100.0, create: bool = False, clock: Clock = time.monotonic_ns):
        super().__init__(spec, tick_ms=tick_ms, clock=clock)
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        if not self.path.is_dir():
            raise UserError(f"json-dir source: {self.path} is not a folder")
        # default: a state more than 5 ticks old is not the current state
        self.stale_ms = float(stale_ms) if stale_ms is not None else 5 * self.tick_ms
        self.settle_ms = float(settle_ms)
        self._last_key: tuple | None = None  # (name, mtime_ns, size) of the last delivered file
        self._bad: set[tuple] = set()  # settled files already counted malformed
        self._stale_seen: set[tuple] = set()
        self._next_tick = 0

    def describe(self) -> str:
        return f"json-dir:{self.path}"

    def _newest(self):
        best = None
        try:
            entries = list(os.scandir(self.path))
        except OSError:
            self.counters["errors"] += 1
            return None
        for e in entries:
            if not e.name.endswith(".json") or e.name.startswith("."):
                continue
            try:
                st = e.stat()
            except OSError:  # pragma: no cover - replaced or removed between scandir and stat
                continue
            m = _TICK_NAME.search(e.name)
            order = (st.st_mtime_ns, int(m.group(1)) if m else -1, e.name)
            if best is None or order > best[0]:
                best = (order, e.name, st)
        return best

    def _poll(self) -> Capture | None:
        newest = self._newest()
        if newest is None:
            return None
        (mtime_ns, name_tick, _), name, st = newest
        key = (name, st.st_mtime_ns, st.st_size)
        if key == self._last_key or key in self._bad:
            return None
        age_ms = (time.time_ns() - mtime_ns) / 1e6
        if age_ms > self.stale_ms:
            if key not in self._stale_seen:
                self._stale_seen.add(key)
                self.counters["stale"] += 1
            return None
        try:
            text = (self.path / name).read_bytes()
        except OSError:  # pragma: no cover - replaced between stat and read: the next poll sees the new file
            return None
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            if age_ms < self.settle_ms:
                return None  # possibly still being written: retry next poll
            self._bad.add(key)
            self.counters["malformed"] += 1
            return None
        feats = self._features(doc)  # [F]
        self._last_key = key
        tick = tick_of(doc, "tick")
        if tick is None:
            tick = name_tick if name_tick >= 0 else self._next_tick
        self._next_tick = tick + 1
        # the game wrote it age_ms ago: put the observation on the monotonic clock
        t_ns = self.clock() - max(0, int(age_ms * 1e6))
        return Capture(tick, t_ns, text.decode("utf-8"), feats)
