"""What every importer shares: options, reading a CSV into checked columns, counting bad rows,
safe store names, writing a store atomically.

Input checks happen at this boundary, per row and vectorised (numpy over whole columns): a row
whose number does not parse, is not finite or is out of range (`ilbot.data.schema` bounds: times
in [0, MAX_ABS_TIME_NS] ns, then within MAX_SESSION_HALF_SPAN_NS of the session's median time;
positions within ±MAX_COORD_PX) is skipped and counted by reason (`BadRows`), or is fatal under
`--strict` with one line naming file, row, field and value. Row numbers are record numbers (the
header is row 1), which are line numbers unless a quoted field spans lines.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import os
import re
from dataclasses import dataclass, field
from itertools import compress, repeat
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...errors import DataError
from ..atomic import atomic_file
from ..featurespec import load_spec
from ..keys import KEY_VOCAB_VERSION
from ..schema import MAX_ABS_TIME_NS, MAX_SESSION_HALF_SPAN_NS, TICK_MS, EventType
from ..store import SUFFIX, is_session_store, settle_sidecars, shown, write_store

DEFAULT_HOLD_MS = 110.0  # DESIGN §2: recorded hold median (~110 ms), for sources without releases
MAX_NAME_PART = 64  # characters of one data-derived part of a store name
MAX_LISTED_NAMES = 50  # unknown key names kept by name in the counts (all are counted)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def _files_under(root: Path, pattern: str) -> list[Path]:
    """The files matching `pattern` anywhere under `root`, sorted, hidden files skipped. Folder links
    are followed (a data set assembled from links imports like a copy), each real folder once, so a
    link back up the tree cannot loop."""
    seen, out = set(), []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        out += [Path(folder) / n for n in fnmatch.filter(names, pattern)
                if not n.startswith(".") and (Path(folder) / n).is_file()]
    return sorted(out)


def find_source_files(paths: list[Path], pattern: str = "*.csv") -> list[Path]:
    """The files to import: each path that is a file, plus the files matching `pattern` under
    each folder (`_files_under`). A path that does not exist is an error."""
    files = []
    for p in paths:
        if p.is_dir():
            files += _files_under(p, pattern)
        elif p.is_file():
            files.append(p)
        elif p.exists():
            raise DataError(f"{p}: not a regular file or folder")
        else:
            raise DataError(f"{p}: no such file or folder")
    return files


@dataclass
class ImportOptions:
    strict: bool = False  # a malformed row is an error (file:row) instead of skipped and counted
    overwrite: bool = False
    hold_ms: float = DEFAULT_HOLD_MS  # CLICK hold where the source logs presses only (ilbot-csv)


@dataclass
class ImportedSession:
    """One source session, ready to write: events as rows [n, 9] in store column order."""

    name: str  # output file stem (`safe_name`)
    rows: np.ndarray  # [n, 9] t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms
    meta: dict[str, Any]
    counts: dict[str, Any]
    source: Path | None = None


@dataclass
class BadRows:
    """Malformed rows of one file: counted by reason, the earliest one kept. Under `strict` the
    importer turns the earliest into an error (`check_strict`) before anything is written."""

    path: Path
    strict: bool
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    first: tuple[int, str, str, str] | None = None  # (row, field, value shown, reason) of the earliest bad row

    def add(self, n: int, reason: str, row: int, fld: str, value: Any) -> None:
        """Count `n` bad rows for `reason`; `row`, `fld`, `value` are those of the first of them."""
        if n <= 0:
            return
        self.count += n
        self.reasons[reason] = self.reasons.get(reason, 0) + n
        if self.first is None or row < self.first[0]:
            self.first = (row, fld, shown(value), reason)

    def check_strict(self) -> None:
        """Under `strict`, the earliest bad row as a one-line DataError: FILE:ROW: field=value: reason."""
        if self.strict and self.first is not None:
            row, fld, value, reason = self.first
            raise DataError(f"{self.path}:{row}: {fld}={value}: {reason}")

    def summary(self) -> str | None:
        """`skipped 3 rows: t not finite (2), x out of range (1); first: FILE:ROW field=value`."""
        if not self.count:
            return None
        reasons = ", ".join(f"{r} ({n})" for r, n in sorted(self.reasons.items(), key=lambda kv: -kv[1]))
        row, fld, value, _ = self.first
        rows = "row" if self.count == 1 else "rows"
        return f"skipped {self.count} {rows}: {reasons}; first: {self.path}:{row} {fld}={value}"

    def report(self) -> dict[str, Any]:
        first = None if self.first is None else f"{self.first[0]} {self.first[1]}={self.first[2]}"
        return {"malformed_rows": self.count, "malformed_reasons": dict(self.reasons), "malformed_first": first}


@dataclass
class Table:
    """A CSV's data rows as columns of text, with the rows still accepted (`ok`)."""

    path: Path
    cols: dict[str, list[str]]  # column name → raw field text of each row
    rows: np.ndarray  # [n] int64 row number of each (the header is row 1)
    ok: np.ndarray  # [n] bool: not rejected so far
    bad: BadRows
    records: int  # data rows in the file, blank lines not counted

    def __len__(self) -> int:
        return len(self.rows)

    def reject(self, mask: np.ndarray, reason: str, fld: str, value_of: Callable[[int], Any] | None = None) -> None:
        """Reject the rows in `mask` (those not rejected already) for `reason`, blaming field `fld`
        (its text, or `value_of(row index)`, is the value shown)."""
        new = np.asarray(mask, bool) & self.ok
        if not new.any():
            return
        i = int(np.argmax(new))
        value = value_of(i) if value_of is not None else self.cols[fld][i]
        self.bad.add(int(new.sum()), reason, int(self.rows[i]), fld, value)
        self.ok &= ~new

    def text(self, fld: str) -> list[str]:
        return list(map(str.strip, self.cols[fld]))

    def numbers(self, fld: str, label: str, empty: float | None = None) -> np.ndarray:
        """Column `fld` as float64 [n]; a field that does not parse is rejected (NaN); an empty
        field is `empty` where given."""
        col = self.cols[fld]
        try:
            values = np.fromiter(map(float, col), np.float64, len(col))
        except ValueError:
            values = np.full(len(col), np.nan)  # a file with an unparsable field: find which, one by one
            failed = np.zeros(len(col), bool)
            for i, text in enumerate(col):
                try:
                    values[i] = float(text)
                except ValueError:
                    if empty is not None and not text.strip():
                        values[i] = empty
                    else:
                        failed[i] = True
            self.reject(failed, f"{label} does not parse", fld)
        for i in np.flatnonzero(np.isinf(values)):  # a finite literal too large for a float (400 digits):
            if col[i].strip().lower().lstrip("+-") not in ("inf", "infinity"):  # out of range, not "inf"
                values[i] = np.copysign(np.finfo(np.float64).max, values[i])
        return values

    def check_range(self, values: np.ndarray, fld: str, label: str, lo: float, hi: float) -> None:
        """Reject rows whose value is not finite or outside [lo, hi]."""
        finite = np.isfinite(values)
        self.reject(~finite, f"{label} not finite", fld)
        with np.errstate(invalid="ignore"):
            self.reject(finite & ((values < lo) | (values > hi)), f"{label} out of range", fld)

    def times(self, fld: str, label: str, ns_per_unit: float) -> np.ndarray:
        """Column `fld`, a time in source units (`ns_per_unit` ns each), as float64 [n], checked:
        it parses, is finite and lies in [0, MAX_ABS_TIME_NS] ns. Rejected rows hold 0."""
        t = self.numbers(fld, label)
        finite = np.isfinite(t)
        self.reject(~finite, f"{label} not finite", fld)
        t = np.where(finite, t, 0.0)
        with np.errstate(over="ignore"):
            t_ns = t * ns_per_unit
        self.reject(~((t_ns >= 0) & (t_ns <= MAX_ABS_TIME_NS)), f"{label} out of range", fld)
        return np.where(self.ok, t, 0.0)

    def reject_far(self, idx: np.ndarray, t_ns: np.ndarray, fld: str, label: str,
                   centre: float | None = None) -> np.ndarray:
        """Among rows `idx` (times `t_ns` [len(idx)]), reject those more than
        MAX_SESSION_HALF_SPAN_NS from `centre` (default: their median time); returns the kept
        mask [len(idx)]."""
        if len(idx) == 0:
            return np.ones(0, bool)
        c = float(np.median(t_ns)) if centre is None else centre
        far = np.abs(t_ns - c) > MAX_SESSION_HALF_SPAN_NS
        mask = np.zeros(len(self), bool)
        mask[idx[far]] = True
        self.reject(mask, f"{label} far from the session (over 7 days from its median time)", fld)
        return ~far


def read_table(path: Path, columns: list[str], what: str, bad: BadRows) -> Table:
    """Read CSV `path` whose header is `columns` into a `Table`; rows with another number of
    fields are counted bad (`wrong number of fields`). A file that is not UTF-8 text, has another
    header or is not CSV is a DataError. Files without quotes are split directly (fast); files
    with quotes go through the csv module."""
    try:
        with open(path, encoding="utf-8-sig") as fh:  # a BOM is dropped; universal newlines: \r\n, \r → \n
            text = fh.read()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a text file (not UTF-8 at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
    header, _, body = text.partition("\n")
    if [h.strip() for h in header.split(",")] != columns:
        raise DataError(f"{path}:1: not {what} (header {shown(header[:80])}, expected {','.join(columns)})")
    n_cols = len(columns)
    if '"' in body:
        try:
            records = list(csv.reader(io.StringIO(body)))
        except csv.Error as e:
            raise DataError(f"{path}: malformed CSV ({e})") from None
        lens = np.fromiter(map(len, records), np.int64, len(records))
        joined = None
    else:
        records = body.split("\n")
        if records and records[-1] == "":
            records.pop()
        lens = np.fromiter(map(str.count, records, repeat(",")), np.int64, len(records)) + 1
        lens[np.fromiter(map(len, records), np.int64, len(records)) == 0] = 0  # a blank line
        joined = records
    blank = lens == 0
    good = lens == n_cols
    wrong = ~good & ~blank
    if wrong.any():
        i = int(np.argmax(wrong))
        value = joined[i] if joined is not None else ",".join(records[i])
        bad.add(int(wrong.sum()), "wrong number of fields", i + 2, "row", value)
    row_no = np.flatnonzero(good).astype(np.int64) + 2
    n = len(row_no)
    if n == 0:
        cols: list = [[] for _ in columns]
    elif joined is not None:
        flat = ",".join(compress(joined, good)).split(",")
        cols = [flat[k::n_cols] for k in range(n_cols)]
    else:
        cols = [list(c) for c in zip(*compress(records, good))]
    return Table(path, dict(zip(columns, cols)), row_no, np.ones(n, bool), bad, int((~blank).sum()))


def safe_part(text: str) -> str:
    """A piece of data (a user or session field, a file name) as a file-name part: runs of
    anything but ASCII letters, digits, `_` and `-` become `_` (so no `/`, `..`, NUL or odd
    character survives), cut to MAX_NAME_PART characters; "" when nothing remains."""
    return _UNSAFE.sub("_", text).strip("_")[:MAX_NAME_PART].strip("_")


def safe_name(path: Path, row: int | None, fld: str, value: str) -> str:
    """`safe_part(value)`, refusing (one line naming file, row, field, value) when nothing remains."""
    part = safe_part(value)
    if not part:
        where = f"{path}:{row}" if row is not None else str(path)
        raise DataError(f"{where}: {fld}={shown(value)} leaves no usable store name (letters, digits, _ or -)")
    return part


def rows_array(columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """[n, 9] rows from named columns (missing ones zero)."""
    out = np.zeros((n, 9), np.float64)
    order = ("t_ns", "type", "x", "y", "button", "key_action", "key_id", "scroll_y", "hold_ms")
    for j, name in enumerate(order):
        if name in columns:
            out[:, j] = columns[name]
    return out


def sort_rows(rows: np.ndarray) -> np.ndarray:
    """Rows stably sorted by time (ties keep their source order)."""
    return rows[np.argsort(rows[:, 0], kind="stable")]


def hold_stats(holds: np.ndarray) -> dict[str, float]:
    if len(holds) == 0:
        return {"median": DEFAULT_HOLD_MS, "q10": DEFAULT_HOLD_MS, "q90": DEFAULT_HOLD_MS, "n": 0}
    return {"median": float(np.median(holds)), "q10": float(np.quantile(holds, 0.1)),
            "q90": float(np.quantile(holds, 0.9)), "n": int(len(holds))}


def name_counts(names: list[str]) -> dict[str, int]:
    """Occurrences of each name, most frequent first, at most MAX_LISTED_NAMES names (each cut to
    MAX_NAME_PART characters)."""
    if not names:
        return {}
    uniq, n = np.unique(np.array([s[:MAX_NAME_PART] for s in names]), return_counts=True)
    top = np.argsort(-n, kind="stable")[:MAX_LISTED_NAMES]
    return {str(uniq[i]): int(n[i]) for i in top}


def base_meta(source: str, source_file: Path, rows: np.ndarray) -> dict[str, Any]:
    """Meta of an imported session: no game state (the empty spec), window = largest coordinates + 1."""
    spec = load_spec("empty")
    w = int(rows[:, 2].max()) + 1 if len(rows) else 1
    h = int(rows[:, 3].max()) + 1 if len(rows) else 1
    clicks = rows[rows[:, 1] == EventType.CLICK, 8] if len(rows) else np.zeros(0)
    return {"source": source, "source_file": str(source_file).encode("utf-8", "backslashreplace").decode(),
            "tick_ms": TICK_MS, "window": {"x": 0, "y": 0, "width": max(w, 1), "height": max(h, 1)},
            "feature_spec": spec.name, "feature_spec_hash": spec.hash, "key_vocab_version": KEY_VOCAB_VERSION,
            "hold_ms": hold_stats(clicks)}


def write_session(sess: ImportedSession, out_dir: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Write one imported session as `out_dir/NAME.ilbot.sqlite`, atomically: into a 0600 temp
    file beside it, renamed in only when complete. An existing file is refused unless `overwrite`
    and it is an ilbot store; a failure leaves whatever was there whole. The meta's
    `import_counts.events` are the per-type counts read back from the written table. An existing
    store's -wal is folded into it first (`settle_sidecars`), so the renamed file stands alone."""
    if not _STEM.fullmatch(sess.name):
        raise DataError(f"store name {shown(sess.name)} is not a safe file name")
    path = out_dir / f"{sess.name}{SUFFIX}"
    counts = dict(sess.counts)

    def meta(stored: dict[str, int]) -> dict[str, Any]:
        counts["events"] = stored
        return dict(sess.meta) | {"import_counts": counts}

    if overwrite and path.exists():
        settle_sidecars(path)  # a killed recorder's -wal beside it would be applied to the new file
    with atomic_file(path, overwrite=overwrite, check_owned=is_session_store) as tmp:
        try:
            stored = write_store(tmp, sess.rows, meta, name=path)
        except DataError as e:
            raise DataError(f"{e}; nothing was replaced") from None
    return {"path": str(path), "name": sess.name, "n_events": int(sum(stored.values())), "counts": counts,
            "source": str(sess.source) if sess.source is not None else None}
