"""The session store: one recording = one SQLite file (DESIGN §4).

Layout (schema version `SCHEMA_VERSION`):

- `meta(key TEXT PRIMARY KEY, value TEXT)` — values are JSON-encoded;
- `events(seq INTEGER PRIMARY KEY, t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms)`;
- `ticks(tick INTEGER PRIMARY KEY, t_ns, raw_json TEXT, features BLOB)` — features are F float32.

Writing: `SessionWriter` hands rows to one writer thread through a queue; the thread commits a
batch every `batch_ms` milliseconds or `batch_rows` rows, whichever comes first. The database runs
in WAL mode with `synchronous=NORMAL`, so a committed batch survives the writing process being
killed (SIGKILL), and a kill loses at most the batch in flight. Bulk importers call
`add_events(rows)` with many rows at once; those go to SQLite with one `executemany` per chunk,
which writes millions of rows in seconds.

Reading: `open_session(path)` checks that the file is SQLite, passes `PRAGMA quick_check`, has
the three tables and a schema version this code understands; anything else is a `DataError`
whose one-line message names the file. A store left behind by a killed writer still has its WAL
file beside it; opening it read-write lets SQLite recover the committed frames.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import DataError
from .keys import KEY_VOCAB_VERSION
from .schema import F, TICK_MS, Event, EventType, Tick

SCHEMA_VERSION = 1
APPLICATION_ID = 0x696C6274  # "ilbt": marks the file as an ilbot store (PRAGMA application_id)
SUFFIX = ".ilbot.sqlite"
EVENT_COLUMNS = ("t_ns", "type", "x", "y", "button", "key_action", "key_id", "scroll_y", "hold_ms")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, t_ns INTEGER NOT NULL, type INTEGER NOT NULL, x REAL NOT NULL, y REAL NOT NULL,
    button INTEGER NOT NULL, key_action INTEGER NOT NULL, key_id INTEGER NOT NULL, scroll_y INTEGER NOT NULL,
    hold_ms REAL NOT NULL);
CREATE TABLE IF NOT EXISTS ticks (tick INTEGER PRIMARY KEY, t_ns INTEGER NOT NULL, raw_json TEXT NOT NULL,
    features BLOB NOT NULL);
"""
_INSERT_EVENT = ("INSERT INTO events (t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_TICK = "INSERT OR REPLACE INTO ticks (tick, t_ns, raw_json, features) VALUES (?, ?, ?, ?)"
_INSERT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
_BULK_CHUNK = 200_000  # rows per executemany/commit for add_events()
_STOP = object()


def _event_tuple(e: Event) -> tuple:
    return (int(e.t_ns), int(e.type), float(e.x), float(e.y), int(e.button), int(e.key_action), int(e.key_id),
            int(e.scroll_y), float(e.hold_ms))


def default_meta() -> dict[str, Any]:
    """Meta every store starts with; the caller's meta overrides these."""
    return {"schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tick_ms": TICK_MS, "key_vocab_version": KEY_VOCAB_VERSION}


class SessionWriter:
    """Writes one session store from any thread; one background thread owns the connection.

    `SessionWriter(path, meta)` creates the file (refusing to overwrite an existing store unless
    `overwrite=True`); use it as a context manager or call `close()`. An error in the writer
    thread is re-raised by the next `add_*`/`close()` call."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None, *, batch_ms: float = 200.0,
                 batch_rows: int = 500, overwrite: bool = False):
        self.path = Path(path)
        if self.path.exists():
            if not overwrite:
                raise DataError(f"{self.path}: already exists (refusing to overwrite a session store)")
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.batch_ms = float(batch_ms)
        self.batch_rows = int(batch_rows)
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._closed = False
        self.n_events = 0
        self.n_ticks = 0
        self.n_commits = 0
        conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            merged = default_meta() | dict(meta or {})
            conn.executemany(_INSERT_META, [(k, json.dumps(v)) for k, v in merged.items()])
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            conn.close()
            raise DataError(f"{self.path}: cannot create session store ({e})") from None
        self._conn = conn
        self._thread = threading.Thread(target=self._run, name=f"SessionWriter:{self.path.name}", daemon=True)
        self._thread.start()

    # -- producer side ---------------------------------------------------------------------------
    def _put(self, kind: str, item: Any) -> None:
        if self._error is not None:
            raise DataError(f"{self.path}: writer failed: {self._error}")
        if self._closed:
            raise DataError(f"{self.path}: writer is closed")
        self._queue.put((kind, item))

    def add_event(self, event: Event) -> None:
        """Queue one event (t_ns since the session start)."""
        self._put("e", _event_tuple(event))

    def add_events(self, rows: Iterable[Event] | np.ndarray | Sequence[Sequence[float]]) -> None:
        """Queue many events at once: `Event`s, or rows in `EVENT_COLUMNS` order (a [n, 9] array)."""
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2 or rows.shape[1] != len(EVENT_COLUMNS):
                raise ValueError(f"add_events: expected rows [n, {len(EVENT_COLUMNS)}], got {rows.shape}")
            ints = rows[:, [0, 1, 4, 5, 6, 7]].astype(np.int64)
            tuples = list(zip(ints[:, 0].tolist(), ints[:, 1].tolist(), rows[:, 2].astype(float).tolist(),
                              rows[:, 3].astype(float).tolist(), ints[:, 2].tolist(), ints[:, 3].tolist(),
                              ints[:, 4].tolist(), ints[:, 5].tolist(), rows[:, 8].astype(float).tolist()))
        else:
            tuples = [_event_tuple(r) if isinstance(r, Event) else tuple(r) for r in rows]
        self._put("E", tuples)

    def add_tick(self, tick: int, t_ns: int, raw_json: str | dict, features: np.ndarray | None = None) -> None:
        """Queue one tick: its index, start time, raw game-state JSON and feature vector [F]."""
        raw = raw_json if isinstance(raw_json, str) else json.dumps(raw_json)
        feats = np.zeros(F, np.float32) if features is None else np.asarray(features, np.float32).reshape(-1)
        self._put("t", (int(tick), int(t_ns), raw, feats.tobytes()))

    def set_meta(self, key: str, value: Any) -> None:
        """Queue one meta entry (JSON-encoded); written in order with the events around it."""
        self._put("m", (str(key), json.dumps(value)))

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued so far is committed."""
        done = threading.Event()
        self._put("f", done)
        if not done.wait(timeout):
            raise DataError(f"{self.path}: writer did not flush within {timeout} s")
        if self._error is not None:
            raise DataError(f"{self.path}: writer failed: {self._error}")

    def close(self) -> None:
        """Commit what is queued, checkpoint the WAL into the main file and stop the thread."""
        if self._closed:
            return
        self._queue.put(("stop", _STOP))
        self._closed = True
        self._thread.join()
        if self._error is not None:
            raise DataError(f"{self.path}: writer failed: {self._error}")

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writer thread ---------------------------------------------------------------------------
    def _commit(self, events: list, ticks: list, metas: list) -> None:
        if not (events or ticks or metas):
            return
        c = self._conn
        c.execute("BEGIN")
        if events:
            c.executemany(_INSERT_EVENT, events)
        if ticks:
            c.executemany(_INSERT_TICK, ticks)
        if metas:
            c.executemany(_INSERT_META, metas)
        c.execute("COMMIT")
        self.n_events += len(events)
        self.n_ticks += len(ticks)
        self.n_commits += 1

    def _run(self) -> None:
        events: list = []
        ticks: list = []
        metas: list = []
        deadline = None
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    kind, item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    kind, item = "timer", None
                if kind == "e":
                    events.append(item)
                elif kind == "t":
                    ticks.append(item)
                elif kind == "m":
                    metas.append(item)
                elif kind == "E":
                    self._commit(events, ticks, metas)
                    events, ticks, metas = [], [], []
                    for i in range(0, len(item), _BULK_CHUNK):
                        self._commit(item[i:i + _BULK_CHUNK], [], [])
                    deadline = None
                    continue
                pending = len(events) + len(ticks) + len(metas)
                if pending and deadline is None:
                    deadline = time.monotonic() + self.batch_ms / 1000.0
                due = deadline is not None and time.monotonic() >= deadline
                if kind in ("stop", "f", "timer") or due or pending >= self.batch_rows:
                    self._commit(events, ticks, metas)
                    events, ticks, metas = [], [], []
                    deadline = None
                if kind == "f":
                    item.set()
                if kind == "stop":
                    break
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException as e:  # surfaced to the producer by the next call
            self._error = e
            self._drain_flush_waiters()
        finally:
            self._conn.close()

    def _drain_flush_waiters(self) -> None:
        while True:
            try:
                kind, item = self._queue.get_nowait()
            except queue.Empty:
                return
            if kind == "f":
                item.set()


class Session:
    """A session store opened for reading (see `open_session`)."""

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict[str, Any]):
        self.path = path
        self._conn = conn
        self.meta = meta

    def __len__(self) -> int:
        return self.n_events

    @property
    def n_events(self) -> int:
        return self._query("SELECT COUNT(*) FROM events").fetchone()[0]

    @property
    def n_ticks(self) -> int:
        return self._query("SELECT COUNT(*) FROM ticks").fetchone()[0]

    def _query(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, args)
        except sqlite3.Error as e:
            raise DataError(f"{self.path}: cannot read session store ({e})") from None

    def events(self) -> Iterator[Event]:
        """Every event in time order (ties in recording order)."""
        cur = self._query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY t_ns, seq")
        for t_ns, typ, x, y, button, key_action, key_id, scroll_y, hold_ms in cur:
            yield Event(t_ns, EventType(typ), x, y, button, key_action, key_id, scroll_y, hold_ms)

    def event_array(self) -> np.ndarray:
        """Every event in time order as a float64 array [n, 9] in `EVENT_COLUMNS` order.

        Read in recording order (a plain table scan, no sort in SQLite) and then stably sorted by
        t_ns, so ties keep their recording order exactly as `events()` yields them. t_ns fits
        exactly in float64 for sessions shorter than ~104 days (2**53 ns)."""
        cur = self._query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY seq")
        rec = np.fromiter(cur, dtype=np.dtype([(k, np.float64) for k in EVENT_COLUMNS]))
        rows = rec.view(np.float64).reshape(len(rec), len(EVENT_COLUMNS))  # [n, 9]
        order = np.argsort(rows[:, 0], kind="stable")
        return rows[order]

    def ticks(self) -> Iterator[Tick]:
        """Every recorded tick in tick order, features as float32 [F]."""
        for tick, t_ns, raw, blob in self._query("SELECT tick, t_ns, raw_json, features FROM ticks ORDER BY tick"):
            yield Tick(tick, t_ns, raw, np.frombuffer(blob, np.float32).copy())

    def tick_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Recorded ticks as arrays: tick [n] int64, t_ns [n] int64, features [n, F] float32."""
        rows = self._query("SELECT tick, t_ns, features FROM ticks ORDER BY tick").fetchall()
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, F), np.float32)
        ticks = np.array([r[0] for r in rows], np.int64)
        t_ns = np.array([r[1] for r in rows], np.int64)
        feats = np.frombuffer(b"".join(r[2] for r in rows), np.float32)
        if feats.size != len(rows) * F:
            raise DataError(f"{self.path}: ticks table holds features of the wrong size (expected {F} per tick)")
        return ticks, t_ns, feats.reshape(len(rows), F)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_session(path: str | Path) -> Session:
    """Open a session store for reading, checking it first (DESIGN §4)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such session store")
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror})") from None
    if head != b"SQLite format 3\x00":
        raise DataError(f"{p}: not a session store (not an SQLite file)")
    try:
        conn = sqlite3.connect(str(p), check_same_thread=False)
    except sqlite3.Error as e:
        raise DataError(f"{p}: cannot open session store ({e})") from None
    try:
        check = conn.execute("PRAGMA quick_check").fetchall()
        if [r[0] for r in check] != ["ok"]:
            raise DataError(f"{p}: damaged session store (quick_check: {check[0][0]})")
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = {"meta", "events", "ticks"} - tables
        if missing:
            raise DataError(f"{p}: not an ilbot session store (missing table(s) {', '.join(sorted(missing))})")
        meta = {}
        for k, v in conn.execute("SELECT key, value FROM meta"):
            try:
                meta[k] = json.loads(v)
            except json.JSONDecodeError:
                raise DataError(f"{p}: damaged meta value for key {k!r}") from None
        version = meta.get("schema_version")
        if not isinstance(version, int):
            raise DataError(f"{p}: not an ilbot session store (no schema_version in meta)")
        if version > SCHEMA_VERSION:
            raise DataError(f"{p}: session store schema version {version} is newer than this ilbot "
                            f"understands ({SCHEMA_VERSION})")
    except DataError:
        conn.close()
        raise
    except sqlite3.Error as e:
        conn.close()
        raise DataError(f"{p}: damaged session store ({e})") from None
    return Session(p, conn, meta)
