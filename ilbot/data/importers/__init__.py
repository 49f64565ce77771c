"""Importers: other recorders' logs → session stores (DESIGN §4), one store per source session.

Each importer module has `NAME`, `find_files(paths) -> list[Path]` and
`read(path, opts, bad) -> list[ImportedSession]` (bad rows go to `bad`, a `BadRows`);
`run_import(kind, paths, out_dir, ...)` drives them, writes each store atomically into `out_dir`
(created 0700 where missing) and returns the per-store counts. Store names come from the data
but are reduced to safe file names (`common.safe_part`); two sources that would give the same
name in one run are refused. A new format is one new module plus a line in `IMPORTERS`.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any, Sequence

from ...errors import DataError
from ..atomic import private_dir
from ..progress import Progress
from ..schema import MAX_HOLD_MS
from .common import BadRows, ImportedSession, ImportOptions, write_session

IMPORTERS = {"balabit": "balabit", "keystrokes": "keystrokes", "ilbot-csv": "ilbot_csv"}  # CLI name → module

__all__ = ["IMPORTERS", "BadRows", "ImportOptions", "ImportedSession", "run_import", "write_session"]


def _module(kind: str):
    if kind not in IMPORTERS:
        raise DataError(f"unknown import format {kind!r} (expected one of {', '.join(IMPORTERS)})")
    return importlib.import_module(f"{__name__}.{IMPORTERS[kind]}")


def run_import(kind: str, paths: Sequence[str | Path], out_dir: str | Path, options: ImportOptions | None = None,
               *, progress: bool = True, skipped: list[str] | None = None) -> list[dict[str, Any]]:
    """Import every session found under `paths` into `out_dir`; returns one summary per store.

    Each source file's one-line summary of skipped rows (`BadRows.summary`) is appended to
    `skipped` where given. Under `options.strict` the first bad row is a DataError; stores
    written before it stay (each is complete)."""
    mod = _module(kind)
    opts = options or ImportOptions()
    if not (math.isfinite(opts.hold_ms) and 0 <= opts.hold_ms <= MAX_HOLD_MS):
        raise DataError(f"hold_ms must be a number of milliseconds in 0..{MAX_HOLD_MS:g}, got {opts.hold_ms!r}")
    files = mod.find_files([Path(p) for p in paths])
    if not files:
        raise DataError(f"import {kind}: no input files found in {', '.join(map(str, paths))}")
    out = private_dir(Path(out_dir))
    results = []
    names: dict[str, Path] = {}
    with Progress(len(files), f"import {kind}", enabled=progress) as bar:
        for f in files:
            bad = BadRows(f, opts.strict)
            sessions = mod.read(f, opts, bad)
            bad.check_strict()
            for sess in sessions:
                if sess.name in names:
                    raise DataError(f"{f}: session store name {sess.name!r} is also that of a session imported "
                                    f"from {names[sess.name]} in this run (names keep only letters, digits, _ "
                                    f"and -); import them into separate folders")
                names[sess.name] = f
                results.append(write_session(sess, out, overwrite=opts.overwrite))
            if skipped is not None and bad.summary():
                skipped.append(bad.summary())
            bar.update(1, f.name)
    return results
