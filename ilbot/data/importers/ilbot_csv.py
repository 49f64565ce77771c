"""An older OSRS recorder's action logs (`ilbot-csv`) → session stores, one per file.

Columns `timestamp,event_type,x_in_window,y_in_window,btn,key,scroll_dx,scroll_dy` (ms;
event_type move, click, key_press, key_release, scroll). Decisions:
- rows are sorted by time (the recorder wrote some out of order), ties keep file order;
- the recorder logged clicks on press only: a click becomes a CLICK with the hold time
  `--hold-ms` (default 110 ms, the recorded median of DESIGN §2);
- key and scroll rows carry 0, 0: they take the last cursor position of a move or click;
- a scroll row with scroll_dy = 0 (horizontal only) has no class in the schema: dropped, counted;
- unknown key names map to UNK (counted by name); malformed rows (bad numbers, unknown
  event_type or button, wrong field count) are skipped with their line numbers, or rejected
  under --strict.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..keys import UNK, key_id
from ..schema import Button, EventType, KeyAction, scroll_class
from .common import BadRows, ImportedSession, ImportOptions, base_meta, find_source_files, sort_rows

NAME = "ilbot-csv"
COLUMNS = ["timestamp", "event_type", "x_in_window", "y_in_window", "btn", "key", "scroll_dx", "scroll_dy"]
BUTTONS = {"left": Button.LEFT, "right": Button.RIGHT, "middle": Button.MIDDLE,
           "button.left": Button.LEFT, "button.right": Button.RIGHT, "button.middle": Button.MIDDLE}


def find_files(paths: list[Path]) -> list[Path]:
    return find_source_files(paths, "*.csv")


def read(path: Path, opts: ImportOptions) -> list[ImportedSession]:
    bad = BadRows(path, opts.strict)
    rows: list[tuple] = []  # (t_ms, type, x or None, y or None, button, key_action, key_id, scroll_y, hold)
    unknown: dict[str, int] = {}
    horizontal = 0
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != COLUMNS:
                raise DataError(f"{path}:1: not an ilbot-csv action log (header {header}, expected "
                                f"{','.join(COLUMNS)})")
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(COLUMNS):
                    bad.bad(lineno, f"expected {len(COLUMNS)} fields, got {len(row)}")
                    continue
                ts, kind, xs, ys, btn, key, sdx, sdy = (c.strip() for c in row)
                try:
                    t = float(ts)
                    x, y = float(xs or 0), float(ys or 0)
                    dy = float(sdy or 0)
                    float(sdx or 0)
                except ValueError:
                    bad.bad(lineno, "a number does not parse")
                    continue
                if not np.isfinite(t) or x < 0 or y < 0:
                    bad.bad(lineno, "a time or position out of range")
                    continue
                if kind == "move":
                    rows.append((t, EventType.MOVE, x, y, 0, 0, 0, 0, 0.0))
                elif kind == "click":
                    b = BUTTONS.get(btn.lower())
                    if b is None:
                        bad.bad(lineno, f"unknown button {btn!r}")
                        continue
                    rows.append((t, EventType.CLICK, x, y, int(b), 0, 0, 0, float(opts.hold_ms)))
                elif kind in ("key_press", "key_release"):
                    if not key:
                        bad.bad(lineno, "key event without a key")
                        continue
                    kid = key_id(key)
                    if kid == UNK:
                        unknown[key] = unknown.get(key, 0) + 1
                    action = KeyAction.PRESS if kind == "key_press" else KeyAction.RELEASE
                    rows.append((t, EventType.KEY, None, None, 0, int(action), kid, 0, 0.0))
                elif kind == "scroll":
                    cls = scroll_class(dy)
                    if cls == 0:
                        horizontal += 1
                        continue
                    rows.append((t, EventType.SCROLL, None, None, 0, 0, 0, int(cls), 0.0))
                else:
                    bad.bad(lineno, f"unknown event_type {kind!r}")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    n = len(rows)
    t_ms = np.array([r[0] for r in rows], np.float64)
    order = np.argsort(t_ms, kind="stable")
    rows = [rows[i] for i in order]
    xs = np.zeros(n)
    ys = np.zeros(n)
    cx = cy = 0.0
    for i, r in enumerate(rows):  # key/scroll rows take the last cursor position
        if r[2] is not None:
            cx, cy = r[2], r[3]
        xs[i], ys[i] = cx, cy
    a = np.array([[r[0], r[1], 0, 0, r[4], r[5], r[6], r[7], r[8]] for r in rows], np.float64).reshape(n, 9)
    a[:, 2], a[:, 3] = xs, ys
    if n:
        a[:, 0] = np.round((a[:, 0] - a[:, 0].min()) * 1e6)
    a = sort_rows(a)
    counts = {"rows": n + bad.count + horizontal, "horizontal_scroll_dropped": horizontal,
              "unknown_keys": sum(unknown.values()), "unknown_key_names": unknown,
              "clicks_hold_ms": float(opts.hold_ms)} | bad.report()
    meta = base_meta(NAME, path, a) | {"session": path.stem}
    return [ImportedSession(f"ilbotcsv_{path.stem}", a, meta, counts)]
