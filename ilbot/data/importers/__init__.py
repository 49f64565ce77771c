"""Importers: other recorders' logs → session stores (DESIGN §4), one store per source session.

Each importer module has `NAME`, `find_files(paths) -> list[Path]` and
`read(path, opts) -> list[ImportedSession]`; `run_import(kind, paths, out_dir, ...)` drives them,
writes the stores and returns the per-store counts. A new format is one new module plus a line in
`IMPORTERS`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Sequence

from ...errors import DataError
from ..progress import Progress
from .common import ImportedSession, ImportOptions, write_session

IMPORTERS = {"balabit": "balabit", "keystrokes": "keystrokes", "ilbot-csv": "ilbot_csv"}  # CLI name → module

__all__ = ["IMPORTERS", "ImportOptions", "ImportedSession", "run_import", "write_session"]


def _module(kind: str):
    if kind not in IMPORTERS:
        raise DataError(f"unknown import format {kind!r} (expected one of {', '.join(IMPORTERS)})")
    return importlib.import_module(f"{__name__}.{IMPORTERS[kind]}")


def run_import(kind: str, paths: Sequence[str | Path], out_dir: str | Path, options: ImportOptions | None = None,
               *, progress: bool = True) -> list[dict[str, Any]]:
    """Import every session found under `paths` into `out_dir`; returns one summary per store."""
    mod = _module(kind)
    opts = options or ImportOptions()
    files = mod.find_files([Path(p) for p in paths])
    if not files:
        raise DataError(f"import {kind}: no input files found in {', '.join(map(str, paths))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    with Progress(len(files), f"import {kind}", enabled=progress) as bar:
        for f in files:
            for sess in mod.read(f, opts):
                results.append(write_session(sess, out, overwrite=opts.overwrite))
            bar.update(1, f.name)
    return results
