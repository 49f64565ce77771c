"""What every importer shares: options, the imported-session record, counting bad rows, writing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DataError
from ..featurespec import load_spec
from ..keys import KEY_VOCAB_VERSION
from ..schema import EVENT_NAMES, TICK_MS, EventType
from ..store import SUFFIX, SessionWriter

DEFAULT_HOLD_MS = 110.0  # DESIGN §2: recorded hold median (~110 ms), for sources without releases
MAX_LISTED_LINES = 20  # bad line numbers kept in the report (all are counted)


def find_source_files(paths: list[Path], pattern: str = "*.csv") -> list[Path]:
    """The files to import: each path that is a file, plus the files matching `pattern` under
    each folder (sorted, hidden files skipped). A path that does not exist is an error."""
    files = []
    for p in paths:
        if p.is_dir():
            files += sorted(f for f in p.rglob(pattern) if f.is_file() and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return files


@dataclass
class ImportOptions:
    strict: bool = False  # a malformed row is an error (file:line) instead of skipped and counted
    overwrite: bool = False
    hold_ms: float = DEFAULT_HOLD_MS  # CLICK hold where the source logs presses only (ilbot-csv)


@dataclass
class ImportedSession:
    """One source session, ready to write: events as rows [n, 9] in store column order."""

    name: str  # output file stem
    rows: np.ndarray  # [n, 9] t_ns, type, x, y, button, key_action, key_id, scroll_y, hold_ms
    meta: dict[str, Any]
    counts: dict[str, Any]


@dataclass
class BadRows:
    """Malformed rows of one file: counted and listed, or an error under --strict."""

    path: Path
    strict: bool
    count: int = 0
    lines: list[int] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    def bad(self, line: int, reason: str) -> None:
        if self.strict:
            raise DataError(f"{self.path}:{line}: {reason}")
        self.count += 1
        self.reasons[reason.split(":")[0]] = self.reasons.get(reason.split(":")[0], 0) + 1
        if len(self.lines) < MAX_LISTED_LINES:
            self.lines.append(line)

    def report(self) -> dict[str, Any]:
        return {"malformed_rows": self.count, "malformed_lines": self.lines, "malformed_reasons": self.reasons}


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


def base_meta(source: str, source_file: Path, rows: np.ndarray) -> dict[str, Any]:
    """Meta of an imported session: no game state (the empty spec), window = largest coordinates + 1."""
    spec = load_spec("empty")
    w = int(rows[:, 2].max()) + 1 if len(rows) else 1
    h = int(rows[:, 3].max()) + 1 if len(rows) else 1
    clicks = rows[rows[:, 1] == EventType.CLICK, 8] if len(rows) else np.zeros(0)
    return {"source": source, "source_file": str(source_file), "tick_ms": TICK_MS,
            "window": {"x": 0, "y": 0, "width": max(w, 1), "height": max(h, 1)},
            "feature_spec": spec.name, "feature_spec_hash": spec.hash, "key_vocab_version": KEY_VOCAB_VERSION,
            "hold_ms": hold_stats(clicks)}


def type_counts(rows: np.ndarray) -> dict[str, int]:
    types = rows[:, 1].astype(np.int64) if len(rows) else np.zeros(0, np.int64)
    return {n: int((types == i).sum()) for i, n in enumerate(EVENT_NAMES)}


def write_session(sess: ImportedSession, out_dir: Path, *, overwrite: bool = False) -> dict[str, Any]:
    path = out_dir / f"{sess.name}{SUFFIX}"
    if path.exists() and not overwrite:
        raise DataError(f"{path}: already exists (use --overwrite to replace it)")
    counts = dict(sess.counts) | {"events": type_counts(sess.rows)}
    meta = dict(sess.meta) | {"import_counts": counts}
    with SessionWriter(path, meta, overwrite=overwrite) as w:
        if len(sess.rows):
            w.add_events(sess.rows)
    return {"path": str(path), "name": sess.name, "n_events": int(len(sess.rows)), "counts": counts}
