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
- Never blocks, never raises on what is in the folder: only regular files are read (a FIFO, a
  device, a folder or a symlink named `*.json` is `malformed.not_regular`; files are opened
  non-blocking and without following links, then checked with fstat before any read); a file
  over `max_bytes` (default 1 MiB) is refused without reading it whole; the document must pass
  `parse_document` (UTF-8, nesting, numbers, strings; see `base`).
- The tick index is the document's `"tick"`, else the number in the file name, else a counter;
  a tick outside [0, 2^62] is `malformed.bad_tick`.
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

from ...data.schema import TICK_MS
from ...errors import UserError
from .base import MAX_BYTES, MAX_DEPTH, Capture, CaptureAdapter, Clock, Malformed, check_tick, parse_document, tick_of

_TICK_NAME = re.compile(r"(?<!\d)(\d{1,18})\.json$")
_RETRY = ("not_json", "not_utf8")  # what a file still being written looks like
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; `Malformed` for anything else.
    Opened non-blocking without following a symlink, checked with fstat before reading, and
    read at most `max_bytes + 1` bytes: never blocks on a FIFO or a device."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise  # replaced or removed since it was listed: not the document's fault
    except OSError as e:
        raise Malformed("not_regular", f"cannot open ({e.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Malformed("not_regular", "not a regular file")
        if st.st_size > max_bytes:
            raise Malformed("too_large", f"{st.st_size} bytes > the {max_bytes}-byte cap")
        chunks, n = [], 0
        while n <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
        if n > max_bytes:
            raise Malformed("too_large", f"more than the {max_bytes}-byte cap")
        return b"".join(chunks)
    except OSError as e:
        raise Malformed("not_regular", f"cannot read ({e.strerror})") from None
    finally:
        os.close(fd)


class JsonDirAdapter(CaptureAdapter):
    name = "json-dir"
    reports_ticks = True  # each file is one game tick

    def __init__(self, path, spec=None, *, tick_ms: float = TICK_MS, stale_ms: float | None = None,
                 settle_ms: float = 100.0, create: bool = False, max_bytes: int = MAX_BYTES,
                 max_depth: int = MAX_DEPTH, clock: Clock = time.monotonic_ns):
        super().__init__(spec, tick_ms=tick_ms, clock=clock)
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        if not self.path.is_dir():
            raise UserError(f"json-dir source: {self.path} is not a folder")
        # default: a state more than 5 ticks old is not the current state
        self.stale_ms = float(stale_ms) if stale_ms is not None else 5 * self.tick_ms
        self.settle_ms = float(settle_ms)
        self.max_bytes = int(max_bytes)
        self.max_depth = int(max_depth)
        self._last_key: tuple | None = None  # (name, mtime_ns, size) of the last delivered file
        self._bad: set[tuple] = set()  # settled files already counted malformed
        self._stale_seen: set[tuple] = set()
        self._next_tick = 0

    def describe(self) -> str:
        return f"json-dir:{self.path}"

    def _newest(self):
        best = None
        try:
            with os.scandir(self.path) as it:
                entries = list(it)
        except OSError:
            self.counters["errors"] += 1
            return None
        for e in entries:
            if not e.name.endswith(".json") or e.name.startswith("."):
                continue
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:  # pragma: no cover - replaced or removed between scandir and stat
                continue
            m = _TICK_NAME.search(e.name)
            order = (st.st_mtime_ns, int(m.group(1)) if m else -1, e.name)
            if best is None or order > best[0]:
                best = (order, e.name, st)
        return best

    def _refuse(self, key: tuple, name: str, err: Malformed) -> None:
        if len(self._bad) > 10_000:  # a folder full of bad files: forget old ones, stay small
            self._bad.clear()
        self._bad.add(key)
        self._malformed(str(self.path / name), err)

    def _poll(self) -> Capture | None:
        newest = self._newest()
        if newest is None:
            return None
        (mtime_ns, name_tick, _), name, st = newest
        key = (name, st.st_mtime_ns, st.st_size)
        if key == self._last_key or key in self._bad:
            return None
        if not stat.S_ISREG(st.st_mode):
            self._refuse(key, name, Malformed("not_regular", "not a regular file"))
            return None
        age_ms = (time.time_ns() - mtime_ns) / 1e6
        if age_ms > self.stale_ms:
            if key not in self._stale_seen:
                if len(self._stale_seen) > 10_000:
                    self._stale_seen.clear()
                self._stale_seen.add(key)
                self.counters["stale"] += 1
            return None
        try:
            doc, text = parse_document(read_regular(self.path / name, self.max_bytes),
                                       max_bytes=self.max_bytes, max_depth=self.max_depth)
            tick = tick_of(doc, "tick")
            if tick is None:
                tick = name_tick if name_tick >= 0 else self._next_tick
            check_tick(tick)
            feats = self._features(doc)  # [F]
        except FileNotFoundError:  # replaced between listing and reading: the next poll sees the new file
            return None
        except Malformed as err:
            if err.reason in _RETRY and age_ms < self.settle_ms:
                return None  # possibly still being written: retry next poll
            self._refuse(key, name, err)
            return None
        self._last_key = key
        self._next_tick = tick + 1
        # the game wrote it age_ms ago: put the observation on the monotonic clock
        t_ns = self.clock() - max(0, int(age_ms * 1e6))
        return Capture(tick, t_ns, text, feats)
