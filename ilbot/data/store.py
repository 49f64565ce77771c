"""The session store: one recording = one SQLite file (DESIGN §4).

Layout (schema version `SCHEMA_VERSION`):

- `meta(key TEXT PRIMARY KEY, value TEXT)` — values are JSON-encoded;
- `events(seq INTEGER PRIMARY KEY, t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms)`;
- `ticks(tick INTEGER PRIMARY KEY, t_ns, raw_json TEXT, features BLOB)` — features are F float32.

Writing: `SessionWriter` hands rows to one writer thread through a queue; the thread commits a
batch every `batch_ms` milliseconds or `batch_rows` rows, whichever comes first. The database runs
in WAL mode with `synchronous=NORMAL`, so a committed batch survives the writing process being
killed (SIGKILL), and a kill loses at most the batch in flight. `add_events(rows)` queues many
rows at once; those go to SQLite with one `executemany` per chunk. With `overwrite=True` onto an
existing store the new one is written beside it and renamed onto it only by a clean `close()`:
a failure leaves the previous store whole (see `SessionWriter`).

Bulk writes: `write_store(path, rows, meta)` writes a whole store in one transaction (millions of
rows in seconds) into a file the caller names: the importers pass `ilbot.data.atomic.atomic_file`'s
temp file, so a failed import never leaves a half store at the target. The rows are checked first
(`bad_event_rows`); the meta it writes can be computed from the per-type event counts read back
from the table. `settle_sidecars(path)` folds an old store's -wal into it before another file is
renamed onto it.

Permissions: every store is created user-only (0600) before SQLite opens it; SQLite gives its
-wal/-shm/-journal files the database file's mode, so they are 0600 too. A folder the writer
creates is 0700. `is_session_store(path)` tells ilbot's stores (SQLite header with ilbot's
application_id) from other files: only those may be replaced (`overwrite`).

Reading: `open_session(path)` refuses, with a one-line `DataError` naming the file, anything that
is not a sound store: not a regular file, not SQLite, failing `PRAGMA quick_check` (the message
gives the first problem and how many more), missing or unexpected tables or columns (an optional
`segments` table, DESIGN §7b, is known), meta values
that are not JSON, a `schema_version` that is not an integer (`true` is not) or is newer than
this code, and known meta keys of the wrong type (`tick_ms`, `window`, `user`, ...). The readers
(`events`, `event_array`, `ticks`, `tick_arrays`) check every row as they read it: an unknown
event type or class, a non-integer time, a non-finite or out-of-range position, a features blob
of the wrong length refuse the store naming the row (`seq` or `tick`) and the value; `check()`
reads every table once that way (a command that must not start on a damaged store). A store left
behind by a killed writer still has its WAL file beside it; opening it read-write lets SQLite
recover the committed frames.
"""

from __future__ import annotations

import json
import math
import os
import queue
import sqlite3
import stat
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..errors import DataError
from .atomic import FILE_MODE, private_dir
from .keys import KEY_VOCAB_VERSION, VOCAB_SIZE
from .schema import (EVENT_NAMES, F, MAX_COORD_PX, MAX_HOLD_MS, MAX_STORED_T_NS, MAX_TICK_MS, MIN_TICK_MS, N_BUTTONS,
                     N_EVENT_TYPES, N_KEY_ACTIONS, N_SCROLL, TICK_MS, Event, EventType, Tick, tick_ms_problem)

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
# DESIGN §7b: marked time segments (a human-override takeover is a `correction`), created with the
# first one, so stores without segments keep exactly the three tables
_SEGMENTS_SCHEMA = """CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, t_start_ns INTEGER NOT NULL, t_end_ns INTEGER NOT NULL, meta TEXT NOT NULL);"""
_INSERT_SEGMENT = "INSERT INTO segments (kind, t_start_ns, t_end_ns, meta) VALUES (?, ?, ?, ?)"
# who played the segment: a person who took over from the agent (the app), the sandbox demonstrator
# who took over, or the agent itself (between the demonstrator's takeovers: what not to imitate)
SEGMENT_KINDS = ("correction", "takeover", "agent")
_INSERT_EVENT = ("INSERT INTO events (t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_TICK = "INSERT OR REPLACE INTO ticks (tick, t_ns, raw_json, features) VALUES (?, ?, ?, ?)"
_INSERT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
_BULK_CHUNK = 200_000  # rows per executemany/commit for add_events()
_STOP = object()
_TABLE_COLUMNS = {
    "meta": ("key", "value"),
    "events": ("seq",) + EVENT_COLUMNS,
    "ticks": ("tick", "t_ns", "raw_json", "features"),
}
_OPTIONAL_TABLES = {"segments": ("kind", "t_start_ns", "t_end_ns", "meta")}  # DESIGN §7b: marked time segments
_SQLITE_TABLES = ("sqlite_sequence", "sqlite_stat1", "sqlite_stat2", "sqlite_stat3", "sqlite_stat4")
_HEADER = b"SQLite format 3\x00"
_MAX_META_CHARS = 16_000_000  # one meta value's JSON text
_SHOWN_CHARS = 60  # a value quoted in a message is cut to this many characters
_MAX_WINDOW_PX = 10 * MAX_COORD_PX  # meta window x, y, width, height


def _event_tuple(e: Event) -> tuple:
    return (int(e.t_ns), int(e.type), float(e.x), float(e.y), int(e.button), int(e.key_action), int(e.key_id),
            int(e.scroll_y), float(e.hold_ms))


def default_meta() -> dict[str, Any]:
    """Meta every store starts with; the caller's meta overrides these."""
    return {"schema_version": SCHEMA_VERSION, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tick_ms": TICK_MS, "key_vocab_version": KEY_VOCAB_VERSION}


def shown(value: Any) -> str:
    """`value` for a one-line message: repr-escaped (no newline, NUL or control character) and cut."""
    text = repr(value)
    if len(text) > _SHOWN_CHARS:
        text = f"{text[:_SHOWN_CHARS]}… ({len(text)} characters)"
    return text


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def is_session_store(path: str | Path) -> bool:
    """Whether `path` is a regular file (not a link) whose SQLite header carries ilbot's application_id."""
    p = Path(path)
    try:
        if not stat.S_ISREG(os.lstat(p).st_mode):
            return False
        with open(p, "rb") as fh:
            head = fh.read(72)
    except OSError:
        return False
    return len(head) == 72 and head[:16] == _HEADER and int.from_bytes(head[68:72], "big") == APPLICATION_ID


def settle_sidecars(path: str | Path) -> None:
    """Fold an SQLite file's -wal (or hot -journal) into the file, so it stands alone and may be
    replaced by renaming another file onto it (SQLite would otherwise apply the old -wal to the
    new file). Lossless: it is what any reader does on open. A file that is not SQLite, or has no
    such file beside it, is left alone; one whose -wal stays (open in another process) is a
    DataError."""
    p = Path(path)
    wal, journal, shm = (Path(f"{p}{s}") for s in ("-wal", "-journal", "-shm"))
    try:
        if not stat.S_ISREG(os.lstat(p).st_mode):
            return
        with open(p, "rb") as fh:
            if fh.read(16) != _HEADER:
                return
    except OSError:
        return
    if wal.exists() or journal.exists():
        try:
            conn = sqlite3.connect(p)
            try:
                conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # rolls a hot journal back
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as e:
            raise DataError(f"{p}: cannot fold its -wal/-journal file into it ({_one_line(e)})") from None
        left = [q.name for q in (wal, journal) if q.exists()]
        if left:
            raise DataError(f"{p}: is in use ({', '.join(left)} remains beside it); stop whatever writes it first")
    if shm.exists() and not wal.exists():
        shm.unlink(missing_ok=True)


def _create_private(path: Path) -> None:
    """Make sure `path` exists as a 0600 file before SQLite opens it (SQLite then creates its
    -wal/-shm/-journal files with the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    except OSError as e:
        raise DataError(f"{path}: cannot create session store ({e.strerror or e})") from None
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


# -- row checks (shared by the bulk writer and every reader) ----------------------------------------
_INT_COLUMNS = {"type": N_EVENT_TYPES, "button": N_BUTTONS, "key_action": N_KEY_ACTIONS, "key_id": VOCAB_SIZE,
                "scroll_y": N_SCROLL}  # column → number of valid values 0..n-1


def _as_int(v: Any) -> int | None:
    if type(v) is int:
        return v
    if type(v) is float and v.is_integer():
        return int(v)
    return None


def _as_number(v: Any) -> float | None:
    if type(v) in (int, float):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def event_row_problem(row: Sequence[Any]) -> str | None:
    """What is wrong with one event row (values in `EVENT_COLUMNS` order), or None."""
    t = _as_int(row[0])
    if t is None:
        return f"t_ns={shown(row[0])} is not an integer"
    if abs(t) > MAX_STORED_T_NS:
        return f"t_ns={t} is out of range (|t_ns| <= {MAX_STORED_T_NS})"
    for j in (2, 3):
        v = _as_number(row[j])
        if v is None:
            return f"{EVENT_COLUMNS[j]}={shown(row[j])} is not a finite number"
        if abs(v) > MAX_COORD_PX:
            return f"{EVENT_COLUMNS[j]}={v!r} is out of range (|{EVENT_COLUMNS[j]}| <= {MAX_COORD_PX:g} px)"
    for j, name in ((1, "type"), (4, "button"), (5, "key_action"), (6, "key_id"), (7, "scroll_y")):
        v = _as_int(row[j])
        n = _INT_COLUMNS[name]
        if v is None or not 0 <= v < n:
            what = "an event type" if name == "type" else f"a {name}"
            return f"{name}={shown(row[j])} is not {what} (0..{n - 1})"
    h = _as_number(row[8])
    if h is None or not 0 <= h <= MAX_HOLD_MS:
        return f"hold_ms={shown(row[8])} is not a hold time (0..{MAX_HOLD_MS:g} ms)"
    return None


def bad_event_rows(rows: np.ndarray) -> np.ndarray:
    """[n] bool: the rows of a float64 event array [n, 9] that `event_row_problem` refuses."""
    t = rows[:, 0]
    bad = ~(np.isfinite(t) & (t == np.floor(t)) & (np.abs(t) <= MAX_STORED_T_NS))
    xy = rows[:, 2:4]
    bad |= ~(np.isfinite(xy) & (np.abs(xy) <= MAX_COORD_PX)).all(1)
    for j, name in ((1, "type"), (4, "button"), (5, "key_action"), (6, "key_id"), (7, "scroll_y")):
        v = rows[:, j]
        bad |= ~((v >= 0) & (v < _INT_COLUMNS[name]) & (v == np.floor(v)))
    h = rows[:, 8]
    bad |= ~(np.isfinite(h) & (h >= 0) & (h <= MAX_HOLD_MS))
    return bad


def tick_row_problem(row: Sequence[Any]) -> str | None:
    """What is wrong with one tick row (tick, t_ns, raw_json, features), or None."""
    tick, t, raw, blob = row
    if _as_int(tick) is None:
        return f"tick={shown(tick)} is not an integer"
    ti = _as_int(t)
    if ti is None or abs(ti) > MAX_STORED_T_NS:
        return f"t_ns={shown(t)} is not a time (an integer, |t_ns| <= {MAX_STORED_T_NS})"
    if not isinstance(raw, str):
        return f"raw_json is a {type(raw).__name__}, not text"
    if not isinstance(blob, bytes) or len(blob) != 4 * F:
        size = len(blob) if isinstance(blob, (bytes, str)) else None
        return f"features blob of {size} bytes (expected {4 * F}: {F} float32)"
    if not np.isfinite(np.frombuffer(blob, np.float32)).all():
        return "features hold a non-finite value"
    return None


class SessionWriter:
    """Writes one session store from any thread; one background thread owns the connection.

    `SessionWriter(path, meta)` creates the file 0600 (its folder 0700 when it creates that),
    refusing an existing file unless `overwrite=True` and it is an ilbot store
    (`is_session_store`); use it as a context manager or call `close()`. An error in the writer
    thread is re-raised by the next `add_*`/`close()` call.

    Replacing (`overwrite=True` onto an existing store): the new store is written beside it (a
    hidden `.NAME.tmp-*` file, `write_path`) and renamed onto it only by a `close()` that
    succeeds, so a failure (disk full, a kill) leaves the previous store whole. What a failed
    replacement had committed is kept as `STEM.partial[-N].ilbot.sqlite` beside it
    (`kept_path`). `kept_path` is where the committed rows are once `close()` returned or raised."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None, *, batch_ms: float = 200.0,
                 batch_rows: int = 500, overwrite: bool = False):
        self.path = Path(path)
        if self.path.is_symlink():
            raise DataError(f"{self.path}: is a symbolic link; refusing to write a session store through it")
        replacing = self.path.exists()
        if replacing:
            if not overwrite:
                raise DataError(f"{self.path}: already exists (refusing to overwrite a session store)")
            if not is_session_store(self.path):
                raise DataError(f"{self.path}: exists and is not an ilbot session store; refusing to replace it")
        private_dir(self.path.parent)
        if replacing:
            try:
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.tmp-")  # 0600
            except OSError as e:
                raise DataError(f"{self.path}: cannot create session store ({e.strerror or e})") from None
            os.close(fd)
            self.write_path = Path(tmp)
        else:
            self.write_path = self.path
            _create_private(self.path)
        self.replacing = replacing
        self.kept_path = self.write_path
        try:
            self._open(meta, batch_ms, batch_rows)
        except BaseException:
            for suffix in ("", "-wal", "-shm", "-journal"):  # what this writer created, nothing else
                Path(f"{self.write_path}{suffix}").unlink(missing_ok=True)
            raise

    def _open(self, meta: dict[str, Any] | None, batch_ms: float, batch_rows: int) -> None:
        self.batch_ms = float(batch_ms)
        self.batch_rows = int(batch_rows)
        self._queue: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._closed = False
        self.n_events = 0
        self.n_ticks = 0
        self.n_commits = 0
        try:
            conn = sqlite3.connect(self.write_path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as e:
            raise DataError(f"{self.path}: cannot create session store ({e})") from None
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
            tuples = _event_tuples(rows.astype(np.float64))
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

    def add_segment(self, kind: str, t_start_ns: int, t_end_ns: int, meta: dict | None = None) -> None:
        """Queue one marked time segment [t_start_ns, t_end_ns) (times as the events'): `kind` is
        one of `SEGMENT_KINDS`; builders and trainers can weight the windows inside it."""
        if kind not in SEGMENT_KINDS:
            raise ValueError(f"segment kind {kind!r}: expected one of {', '.join(SEGMENT_KINDS)}")
        if not 0 <= int(t_start_ns) <= int(t_end_ns):
            raise ValueError(f"segment [{t_start_ns}, {t_end_ns}): expected 0 <= start <= end")
        self._put("s", (kind, int(t_start_ns), int(t_end_ns), json.dumps(meta or {})))

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything queued so far is committed."""
        done = threading.Event()
        self._put("f", done)
        if not done.wait(timeout):
            raise DataError(f"{self.path}: writer did not flush within {timeout} s")
        if self._error is not None:
            raise DataError(f"{self.path}: writer failed: {self._error}")

    def close(self) -> None:
        """Commit what is queued, checkpoint the WAL into the main file and stop the thread; a
        replacement is then renamed onto the previous store (see the class doc)."""
        if self._closed:
            return
        self._queue.put(("stop", _STOP))
        self._closed = True
        self._thread.join()
        if self._error is not None:
            if self.replacing:
                self._keep_partial()
            raise DataError(f"{self.path}: writer failed: {self._error}")
        if self.replacing:
            try:
                settle_sidecars(self.path)  # the previous store's -wal must not meet the new file
                os.replace(self.write_path, self.path)
            except (DataError, OSError) as e:
                self._keep_partial()
                why = e if isinstance(e, DataError) else (e.strerror or e)
                raise DataError(f"{self.path}: cannot replace it ({why}); the new session is kept as "
                                f"{self.kept_path}") from None
            for suffix in ("-wal", "-shm"):
                Path(f"{self.write_path}{suffix}").unlink(missing_ok=True)
            Path(f"{self.path}-shm").unlink(missing_ok=True)
            self.kept_path = self.path

    def _keep_partial(self) -> None:
        """A failed replacement: its committed rows (file and -wal together) under a visible name
        beside the previous store, which stays as it was."""
        stem = self.path.name.removesuffix(".ilbot.sqlite")
        n = 1
        while True:
            target = self.path.with_name(f"{stem}.partial{'' if n == 1 else f'-{n}'}.ilbot.sqlite")
            if not any(Path(f"{target}{s}").exists() or Path(f"{target}{s}").is_symlink() for s in ("", "-wal", "-shm")):
                break
            n += 1
        try:
            for suffix in ("-wal", "-shm", ""):
                if Path(f"{self.write_path}{suffix}").exists():
                    os.rename(f"{self.write_path}{suffix}", f"{target}{suffix}")
            self.kept_path = target
        except OSError:
            pass  # it stays under its temp name (kept_path says which)

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writer thread ---------------------------------------------------------------------------
    def _commit(self, events: list, ticks: list, metas: list, segments: list = ()) -> None:
        if not (events or ticks or metas or segments):
            return
        c = self._conn
        if segments:
            c.execute(_SEGMENTS_SCHEMA)
        c.execute("BEGIN")
        if segments:
            c.executemany(_INSERT_SEGMENT, segments)
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
        segments: list = []
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
                elif kind == "s":
                    segments.append(item)
                elif kind == "E":
                    self._commit(events, ticks, metas, segments)
                    events, ticks, metas, segments = [], [], [], []
                    for i in range(0, len(item), _BULK_CHUNK):
                        self._commit(item[i:i + _BULK_CHUNK], [], [])
                    deadline = None
                    continue
                pending = len(events) + len(ticks) + len(metas) + len(segments)
                if pending and deadline is None:
                    deadline = time.monotonic() + self.batch_ms / 1000.0
                due = deadline is not None and time.monotonic() >= deadline
                if kind in ("stop", "f", "timer") or due or pending >= self.batch_rows:
                    self._commit(events, ticks, metas, segments)
                    events, ticks, metas, segments = [], [], [], []
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


def _event_tuples(rows: np.ndarray) -> list[tuple]:
    """Rows [n, 9] (float64, `EVENT_COLUMNS` order) as tuples with Python ints where SQLite wants them."""
    ints = rows[:, [0, 1, 4, 5, 6, 7]].astype(np.int64)
    return list(zip(ints[:, 0].tolist(), ints[:, 1].tolist(), rows[:, 2].tolist(), rows[:, 3].tolist(),
                    ints[:, 2].tolist(), ints[:, 3].tolist(), ints[:, 4].tolist(), ints[:, 5].tolist(),
                    rows[:, 8].tolist()))


def write_store(path: str | Path, rows: np.ndarray,
                meta: dict[str, Any] | Callable[[dict[str, int]], dict[str, Any]], *,
                name: str | Path | None = None) -> dict[str, int]:
    """Write a whole store into `path` (absent or an empty file, e.g. an atomic temp file) in one
    transaction: events `rows` [n, 9] in `EVENT_COLUMNS` order, then the meta. `meta` may be a
    function of the per-type event counts read back from the written table (so meta counts are
    what was stored). Returns those counts. Rows that `event_row_problem` would refuse are an
    error; so is any SQLite failure (disk full, ...): a one-line DataError naming `name` (default
    `path`). The caller discards the file on error."""
    p = Path(path)
    shown_as = Path(name) if name is not None else p
    rows = np.asarray(rows, np.float64).reshape(-1, len(EVENT_COLUMNS))
    bad = bad_event_rows(rows)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{shown_as}: event {i} to write is invalid: {event_row_problem(rows[i].tolist())}")
    _create_private(p)
    try:
        conn = sqlite3.connect(p, isolation_level=None)
    except sqlite3.Error as e:
        raise DataError(f"{shown_as}: cannot create session store ({e})") from None
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a failed write discards the whole file
        conn.execute("PRAGMA synchronous=OFF")  # the caller fsyncs the finished file
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN")
        for k in range(0, len(rows), _BULK_CHUNK):
            conn.executemany(_INSERT_EVENT, _event_tuples(rows[k:k + _BULK_CHUNK]))
        stored = dict(conn.execute("SELECT type, COUNT(*) FROM events GROUP BY type").fetchall())
        counts = {n: int(stored.get(i, 0)) for i, n in enumerate(EVENT_NAMES)}
        merged = default_meta() | dict(meta(counts) if callable(meta) else meta)
        conn.executemany(_INSERT_META, [(str(k), json.dumps(v)) for k, v in merged.items()])
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        raise DataError(f"{shown_as}: cannot write session store ({_one_line(e)})") from None
    finally:
        conn.close()
    return counts


class Session:
    """A session store opened for reading (see `open_session`); every reader checks each row."""

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
            raise DataError(f"{self.path}: cannot read session store ({_one_line(e)})") from None

    def _rows(self, sql: str, size: int = 8192) -> Iterator[tuple]:
        """The rows of `sql`, read in chunks; an SQLite error on the way is a DataError."""
        cur = self._query(sql)
        while True:
            try:
                chunk = cur.fetchmany(size)
            except sqlite3.Error as e:
                raise DataError(f"{self.path}: cannot read session store ({_one_line(e)})") from None
            if not chunk:
                return
            yield from chunk

    def _bad_event(self) -> DataError:
        """The error for the first event row (in recording order) that fails the row check."""
        for row in self._rows(f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events ORDER BY seq"):
            problem = event_row_problem(row[1:])
            if problem:
                return DataError(f"{self.path}: damaged session store: events row seq={row[0]}: {problem}")
        return DataError(f"{self.path}: damaged session store: the events table holds an unreadable value")

    def events(self) -> Iterator[Event]:
        """Every event in time order (ties in recording order)."""
        for row in self._rows(f"SELECT seq, {', '.join(EVENT_COLUMNS)} FROM events ORDER BY t_ns, seq"):
            problem = event_row_problem(row[1:])
            if problem:
                raise DataError(f"{self.path}: damaged session store: events row seq={row[0]}: {problem}")
            t_ns, typ, x, y, button, key_action, key_id, scroll_y, hold_ms = row[1:]
            yield Event(int(t_ns), EventType(int(typ)), x, y, int(button), int(key_action), int(key_id),
                        int(scroll_y), hold_ms)

    def event_array(self) -> np.ndarray:
        """Every event in time order as a float64 array [n, 9] in `EVENT_COLUMNS` order.

        Read in recording order (a plain table scan, no sort in SQLite), checked (vectorised; a
        bad row is a DataError naming its seq) and then stably sorted by t_ns, so ties keep their
        recording order exactly as `events()` yields them. t_ns fits exactly in float64 for
        sessions shorter than ~104 days (2**53 ns)."""
        cur = self._query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events ORDER BY seq")
        try:
            rec = np.fromiter(cur, dtype=np.dtype([(k, np.float64) for k in EVENT_COLUMNS]))
        except sqlite3.Error as e:
            raise DataError(f"{self.path}: cannot read session store ({_one_line(e)})") from None
        except (TypeError, ValueError, OverflowError):  # a text or blob where a number belongs
            raise self._bad_event() from None
        rows = rec.view(np.float64).reshape(len(rec), len(EVENT_COLUMNS))  # [n, 9]
        if bad_event_rows(rows).any():
            raise self._bad_event()
        order = np.argsort(rows[:, 0], kind="stable")
        return rows[order]

    def ticks(self) -> Iterator[Tick]:
        """Every recorded tick in tick order, features as float32 [F]."""
        for row in self._rows("SELECT tick, t_ns, raw_json, features FROM ticks ORDER BY tick", size=1024):
            problem = tick_row_problem(row)
            if problem:
                raise DataError(f"{self.path}: damaged session store: ticks row tick={shown(row[0])}: {problem}")
            tick, t_ns, raw, blob = row
            yield Tick(int(tick), int(t_ns), raw, np.frombuffer(blob, np.float32).copy())

    def tick_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Recorded ticks as arrays: tick [n] int64, t_ns [n] int64, features [n, F] float32."""
        rows = list(self._rows("SELECT tick, t_ns, features FROM ticks ORDER BY tick", size=4096))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, F), np.float32)
        for r in rows:
            problem = tick_row_problem((r[0], r[1], "", r[2]))
            if problem:
                raise DataError(f"{self.path}: damaged session store: ticks row tick={shown(r[0])}: {problem}")
        ticks = np.array([int(r[0]) for r in rows], np.int64)
        t_ns = np.array([int(r[1]) for r in rows], np.int64)
        feats = np.frombuffer(b"".join(r[2] for r in rows), np.float32)
        return ticks, t_ns, feats.reshape(len(rows), F)

    def segments(self) -> list[dict]:
        """The store's marked time segments ([] when it has none), in time order: kind,
        t_start_ns, t_end_ns, meta. A malformed row is a one-line DataError."""
        has = self._query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='segments'").fetchone()
        if not has:
            return []
        out = []
        for kind, t0, t1, meta in self._rows("SELECT kind, t_start_ns, t_end_ns, meta FROM segments ORDER BY t_start_ns"):
            try:
                ok = kind in SEGMENT_KINDS and isinstance(t0, int) and isinstance(t1, int) and 0 <= t0 <= t1
                doc = json.loads(meta) if ok else None
            except (TypeError, ValueError):
                ok = False
            if not ok or not isinstance(doc, dict):
                raise DataError(f"{self.path}: damaged session store: segments row ({shown(kind)}, {shown(t0)}, "
                                f"{shown(t1)}): expected a known kind, 0 <= start <= end and a JSON object")
            out.append({"kind": kind, "t_start_ns": t0, "t_end_ns": t1, "meta": doc})
        return out

    def check(self) -> "Session":
        """Read every row of every table once through the readers' checks: a one-line DataError
        for the first damaged one (a command that must not start on a damaged store calls this
        before it acts). Returns the session."""
        self.event_array()
        for _ in self.ticks():
            pass
        self.segments()
        return self

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def mark_segment(path: str | Path, kind: str, t_start_ns: int, t_end_ns: int, meta: dict | None = None) -> None:
    """Mark a time segment in a finished store (its writer closed): one row in `segments`,
    created if absent, in one transaction. The store is checked first (`open_session`)."""
    if kind not in SEGMENT_KINDS:
        raise ValueError(f"segment kind {kind!r}: expected one of {', '.join(SEGMENT_KINDS)}")
    p = Path(path)
    open_session(p).close()  # a damaged store or a foreign file is refused in one line
    try:
        conn = sqlite3.connect(p, isolation_level=None)
        try:
            conn.execute(_SEGMENTS_SCHEMA)
            conn.execute("BEGIN")
            conn.execute(_INSERT_SEGMENT, (kind, int(t_start_ns), int(t_end_ns), json.dumps(meta or {})))
            conn.execute("COMMIT")
        finally:
            conn.close()
    except sqlite3.Error as e:
        raise DataError(f"{p}: cannot mark a {kind} segment ({_one_line(e)})") from None


def _quick_check(conn: sqlite3.Connection, p: Path) -> None:
    """`PRAGMA quick_check`, summarised in one line: the first problem and how many more."""
    found = [str(r[0]) for r in conn.execute("PRAGMA quick_check(100)").fetchall()]
    if found == ["ok"]:
        return
    problems = [line.strip() for r in found for line in r.splitlines()
                if line.strip() and not line.startswith("*** in database")]  # a row may hold several lines
    more = len(problems) - 1
    extra = f" and {more}{'+' if len(found) >= 100 else ''} more problem(s)" if more > 0 else ""
    first = _one_line(problems[0] if problems else "no answer", 160)
    raise DataError(f"{p}: damaged session store (integrity check: {first}{extra})")


def _check_tables(conn: sqlite3.Connection, p: Path) -> None:
    """The three tables, each with exactly its columns; a `segments` table with (at least) its
    columns; no other tables."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    missing = sorted(set(_TABLE_COLUMNS) - tables)
    if missing:
        raise DataError(f"{p}: not an ilbot session store (missing table(s) {', '.join(missing)})")
    extra = sorted(t for t in tables - set(_TABLE_COLUMNS) - set(_OPTIONAL_TABLES) if t not in _SQLITE_TABLES)
    if extra:
        raise DataError(f"{p}: not an ilbot session store (unexpected table(s) "
                        f"{', '.join(shown(t) for t in extra[:5])})")
    for table, want in _TABLE_COLUMNS.items():
        have = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
        if sorted(have) != sorted(want):
            raise DataError(f"{p}: damaged session store (table {table} has columns {', '.join(map(str, have))}; "
                            f"expected {', '.join(want)})")
    for table, want in _OPTIONAL_TABLES.items():
        if table in tables:
            have = tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))
            if not set(want) <= set(have):
                raise DataError(f"{p}: damaged session store (table {table} lacks column(s) "
                                f"{', '.join(sorted(set(want) - set(have)))})")


def _read_meta(conn: sqlite3.Connection, p: Path) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for k, v in conn.execute("SELECT key, value FROM meta"):
        if not isinstance(k, str):
            raise DataError(f"{p}: damaged meta: key {shown(k)} is not text")
        if not isinstance(v, (str, bytes)) or len(v) > _MAX_META_CHARS:
            what = f"{len(v)} characters" if isinstance(v, (str, bytes)) else f"a {type(v).__name__}"
            raise DataError(f"{p}: damaged meta value for key {shown(k)} ({what}, not JSON text)")
        try:
            meta[k] = json.loads(v)
        except (ValueError, RecursionError):
            raise DataError(f"{p}: damaged meta value for key {shown(k)} (not JSON)") from None
    return meta


def _is_num(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def check_meta(meta: dict[str, Any], p: Path) -> None:
    """The meta keys ilbot reads, each of its type: a one-line DataError naming the key and value."""
    def bad(key: str, want: str) -> DataError:
        return DataError(f"{p}: damaged meta: {key}={shown(meta[key])} (expected {want})")

    version = meta.get("schema_version")
    if "schema_version" not in meta:
        raise DataError(f"{p}: not an ilbot session store (no schema_version in meta)")
    if type(version) is not int or version < 1:
        raise bad("schema_version", "a positive integer")
    if version > SCHEMA_VERSION:
        raise DataError(f"{p}: session store schema version {version} is newer than this ilbot "
                        f"understands ({SCHEMA_VERSION})")
    if meta.get("tick_ms") is not None and tick_ms_problem(meta["tick_ms"]):
        raise bad("tick_ms", f"milliseconds in {MIN_TICK_MS:g}..{MAX_TICK_MS:g}")
    win = meta.get("window")
    if "window" in meta and win is not None:
        if not isinstance(win, dict):
            raise bad("window", "an object with x, y, width, height")
        for k in ("x", "y", "width", "height"):
            v = win.get(k, 0 if k in ("x", "y") else None)
            ok = _is_num(v) and abs(v) <= _MAX_WINDOW_PX and (v > 0 if k in ("width", "height") else True)
            if not ok:
                raise bad("window", f"numbers x, y and width, height > 0 (|v| <= {_MAX_WINDOW_PX:g}); {k} is wrong")
    user = meta.get("user")
    if user is not None and not (isinstance(user, str) or (type(user) is int and abs(user) < 2**31)):
        raise bad("user", "a user id (an integer below 2**31, or text)")
    for k in ("feature_spec", "feature_spec_hash", "source", "created"):
        if meta.get(k) is not None and not isinstance(meta[k], str):
            raise bad(k, "text")
    if "key_vocab_version" in meta and type(meta["key_vocab_version"]) is not int:
        raise bad("key_vocab_version", "an integer")


def open_session(path: str | Path) -> Session:
    """Open a session store for reading, checking it first (see the module doc)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise DataError(f"{p}: no such session store") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise DataError(f"{p}: not a session store ({what})")
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise DataError(f"{p}: cannot read ({e.strerror or e})") from None
    if head != _HEADER:
        raise DataError(f"{p}: not a session store (not an SQLite file)")
    try:
        conn = sqlite3.connect(p, check_same_thread=False)
    except sqlite3.Error as e:
        raise DataError(f"{p}: cannot open session store ({_one_line(e)})") from None
    try:
        _quick_check(conn, p)
        _check_tables(conn, p)
        meta = _read_meta(conn, p)
        check_meta(meta, p)
    except DataError:
        conn.close()
        raise
    except sqlite3.Error as e:
        conn.close()
        raise DataError(f"{p}: damaged session store ({_one_line(e)})") from None
    return Session(p, conn, meta)
