"""What a session store holds, in figures a person reads: `summarize_session(path)`.

Duration, events by type, ticks, the game window, the number of `correction` segments (stores
without a `segments` table have none to count: `corrections` is None) and, on request, events over
time (counts per type in equal time bins) for a small plot. The store is checked by
`open_session` first, and the columns counted here (event type and time, tick time) are checked
to hold integers, so a damaged store is the same one-line `DataError`; the counting queries then
run on a read-only connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .schema import EVENT_NAMES


@dataclass
class SessionSummary:
    path: Path
    meta: dict
    n_events: int
    n_ticks: int
    events_by_type: dict[str, int]  # every type name, 0 when absent
    t_first_s: float | None  # first and last event or tick time, seconds on the store's clock
    t_last_s: float | None
    corrections: int | None  # `correction` segments; None: the store has no segments table
    bin_s: float = 0.0  # width of one timeline bin
    timeline: np.ndarray = field(default_factory=lambda: np.zeros((len(EVENT_NAMES), 0), np.int64))  # [4, bins]

    @property
    def duration_s(self) -> float:
        if self.t_first_s is None or self.t_last_s is None:
            return 0.0
        return self.t_last_s - self.t_first_s

    @property
    def window(self) -> tuple[float, float, float, float] | None:
        """The recorded game window (x, y, width, height), when the meta has one."""
        w = self.meta.get("window")
        if not isinstance(w, dict):
            return None
        try:
            return tuple(float(w.get(k, 0) or 0) for k in ("x", "y", "width", "height"))
        except (TypeError, ValueError):
            return None


def _readonly(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def summarize_session(path, bins: int = 0) -> SessionSummary:
    """The figures of the store at `path`; `bins` > 0 adds events over time in that many bins."""
    from .store import open_session

    p = Path(path)
    with open_session(p) as s:
        meta, n_events, n_ticks = dict(s.meta), s.n_events, s.n_ticks
        _check_counted_columns(s)
    try:
        conn = _readonly(p)
    except sqlite3.Error as e:
        raise DataError(f"{p}: cannot open session store ({e})") from None
    try:
        by_type = {name: 0 for name in EVENT_NAMES}
        for typ, n in conn.execute("SELECT type, COUNT(*) FROM events GROUP BY type"):
            if 0 <= typ < len(EVENT_NAMES):
                by_type[EVENT_NAMES[typ]] = int(n)
        lo, hi = conn.execute("SELECT MIN(t_ns), MAX(t_ns) FROM events").fetchone()
        tlo, thi = conn.execute("SELECT MIN(t_ns), MAX(t_ns) FROM ticks").fetchone()
        firsts = [v for v in (lo, tlo) if v is not None]
        lasts = [v for v in (hi, thi) if v is not None]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        corrections = None
        if "segments" in tables:
            corrections = int(conn.execute("SELECT COUNT(*) FROM segments WHERE kind = 'correction'").fetchone()[0])
        summary = SessionSummary(p, meta, n_events, n_ticks, by_type, min(firsts) / 1e9 if firsts else None,
                                 max(lasts) / 1e9 if lasts else None, corrections)
        if bins > 0:
            rows = np.array(conn.execute("SELECT t_ns, type FROM events").fetchall(), np.float64).reshape(-1, 2)
            summary.bin_s, summary.timeline = _timeline(rows, summary, bins)
    except sqlite3.Error as e:
        raise DataError(f"{p}: cannot read session store ({e})") from None
    finally:
        conn.close()
    return summary


def _check_counted_columns(s) -> None:
    """The columns the figures count (event type and time, tick time) hold integers of their
    range: else the store is damaged, and it is the readers' one-line DataError naming the row."""
    bad = s._query(f"SELECT 1 FROM events WHERE typeof(t_ns) != 'integer' OR typeof(type) != 'integer' "
                   f"OR type < 0 OR type >= {len(EVENT_NAMES)} LIMIT 1").fetchone()
    if bad:
        raise s._bad_event()
    row = s._query("SELECT tick, t_ns FROM ticks WHERE typeof(t_ns) != 'integer' LIMIT 1").fetchone()
    if row:
        from .store import shown

        raise DataError(f"{s.path}: damaged session store: ticks row tick={shown(row[0])}: t_ns={shown(row[1])} "
                        "is not an integer")


def _timeline(rows: np.ndarray, summary: SessionSummary, bins: int) -> tuple[float, np.ndarray]:
    """Events per type in `bins` equal bins from the session's start to its end: [4, bins]."""
    out = np.zeros((len(EVENT_NAMES), bins), np.int64)
    if not len(rows) or summary.t_first_s is None:
        return 0.0, out
    span = max(summary.duration_s, 1e-9)
    idx = np.clip(((rows[:, 0] / 1e9 - summary.t_first_s) / span * bins).astype(np.int64), 0, bins - 1)
    typ = rows[:, 1].astype(np.int64)
    ok = (typ >= 0) & (typ < len(EVENT_NAMES))
    np.add.at(out, (typ[ok], idx[ok]), 1)
    return span / bins, out
