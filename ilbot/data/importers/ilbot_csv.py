"""An older OSRS recorder's action logs (`ilbot-csv`) → session stores, one per file.

Columns `timestamp,event_type,x_in_window,y_in_window,btn,key,scroll_dx,scroll_dy` (ms;
event_type move, click, key_press, key_release, scroll). Decisions:
- rows are sorted by time (the recorder wrote some out of order), ties keep file order;
- the recorder logged clicks on press only: a click becomes a CLICK with the hold time
  `--hold-ms` (default 110 ms, the recorded median of DESIGN §2);
- key and scroll rows carry 0, 0: they take the last cursor position of a move or click;
- a scroll row with scroll_dy = 0 (horizontal only) has no class in the schema: dropped, counted;
- unknown key names map to UNK (counted by name);
- every row is checked per column (vectorised): a number that does not parse, a time that is not
  finite, out of range or more than 7 days from the file's median time, a position that is not
  finite or outside 0..1e6 px, a scroll delta that is not finite, an unknown event_type or
  button, a key row without a key, a wrong number of fields: the row is skipped and counted by
  reason, or rejected under --strict. An empty position or scroll field reads as 0.
The store is named `ilbotcsv_STEM`, the file's stem reduced to letters, digits, `_` and `-`.
"""

from __future__ import annotations

from itertools import repeat
from operator import getitem
from pathlib import Path

import numpy as np

from ..keys import UNK, key_id
from ..schema import MAX_COORD_PX, Button, EventType, KeyAction, ScrollY
from .common import (MAX_NAME_PART, BadRows, ImportedSession, ImportOptions, base_meta, find_source_files,
                     name_counts, read_table, safe_name, sort_rows)

NAME = "ilbot-csv"
COLUMNS = ["timestamp", "event_type", "x_in_window", "y_in_window", "btn", "key", "scroll_dx", "scroll_dy"]
BUTTONS = {"left": Button.LEFT, "right": Button.RIGHT, "middle": Button.MIDDLE,
           "button.left": Button.LEFT, "button.right": Button.RIGHT, "button.middle": Button.MIDDLE}
MOVE, CLICK, KEY_PRESS, KEY_RELEASE, SCROLL = range(5)
KINDS = {"move": MOVE, "click": CLICK, "key_press": KEY_PRESS, "key_release": KEY_RELEASE, "scroll": SCROLL}
_CUT = slice(0, MAX_NAME_PART)


def find_files(paths: list[Path]) -> list[Path]:
    return find_source_files(paths, "*.csv")


def read(path: Path, opts: ImportOptions, bad: BadRows) -> list[ImportedSession]:
    tab = read_table(path, COLUMNS, "an ilbot-csv action log", bad)
    n = len(tab)
    kind = np.fromiter(map(KINDS.get, tab.text("event_type"), repeat(-1)), np.int64, n)  # [n]
    tab.reject(kind < 0, "unknown event_type", "event_type")
    t = tab.times("timestamp", "t", 1e6)  # [n] ms
    x = tab.numbers("x_in_window", "x", empty=0.0)
    y = tab.numbers("y_in_window", "y", empty=0.0)
    tab.check_range(x, "x_in_window", "x", 0.0, MAX_COORD_PX)
    tab.check_range(y, "y_in_window", "y", 0.0, MAX_COORD_PX)
    dx = tab.numbers("scroll_dx", "scroll_dx", empty=0.0)
    dy = tab.numbers("scroll_dy", "scroll_dy", empty=0.0)
    tab.check_range(dx, "scroll_dx", "scroll_dx", -MAX_COORD_PX, MAX_COORD_PX)
    tab.check_range(dy, "scroll_dy", "scroll_dy", -MAX_COORD_PX, MAX_COORD_PX)
    button = np.fromiter(map(BUTTONS.get, map(str.lower, tab.text("btn")), repeat(0)), np.int64, n)
    tab.reject((kind == CLICK) & (button == 0), "unknown button", "btn")
    keys = list(map(getitem, tab.text("key"), repeat(_CUT)))
    is_key = (kind == KEY_PRESS) | (kind == KEY_RELEASE)
    tab.reject(is_key & (np.fromiter(map(len, keys), np.int64, n) == 0), "key event without a key", "key")
    keep = np.flatnonzero(tab.ok)
    near = tab.reject_far(keep, t[keep] * 1e6, "timestamp", "t")
    keep = keep[near]

    horizontal = (kind[keep] == SCROLL) & (dy[keep] == 0)
    keep = keep[~horizontal]
    keep = keep[np.argsort(t[keep], kind="stable")]  # time order, ties in file order
    m = len(keep)
    k = kind[keep]
    has_pos = (k == MOVE) | (k == CLICK)
    last = np.maximum.accumulate(np.where(has_pos, np.arange(m), -1)) if m else np.zeros(0, np.int64)
    cx = np.where(last >= 0, x[keep][np.maximum(last, 0)], 0.0)  # [m] last cursor position of a move or click
    cy = np.where(last >= 0, y[keep][np.maximum(last, 0)], 0.0)

    key_rows = np.flatnonzero((k == KEY_PRESS) | (k == KEY_RELEASE))
    key_names = [keys[i] for i in keep[key_rows]]
    uniq, name_of = np.unique(np.array(key_names, str), return_inverse=True)
    kids = np.zeros(m, np.int64)
    kids[key_rows] = np.array([key_id(str(u)) for u in uniq], np.int64)[name_of] if len(key_rows) else 0
    unknown = [key_names[j] for j in np.flatnonzero(kids[key_rows] == UNK)]

    a = np.zeros((m, 9), np.float64)
    a[:, 0] = np.round((t[keep] - t[keep].min()) * 1e6) if m else 0.0
    a[:, 1] = np.select([k == MOVE, k == CLICK, k == SCROLL], [EventType.MOVE, EventType.CLICK, EventType.SCROLL],
                        EventType.KEY)
    a[:, 2], a[:, 3] = cx, cy
    a[:, 4] = np.where(k == CLICK, button[keep], 0)
    a[:, 5] = np.select([k == KEY_PRESS, k == KEY_RELEASE], [KeyAction.PRESS, KeyAction.RELEASE], KeyAction.NONE)
    a[:, 6] = kids
    a[:, 7] = np.where(k == SCROLL, np.where(dy[keep] > 0, ScrollY.UP, ScrollY.DOWN), ScrollY.NONE)
    a[:, 8] = np.where(k == CLICK, float(opts.hold_ms), 0.0)
    a = sort_rows(a)
    counts = {"rows": tab.records, "horizontal_scroll_dropped": int(horizontal.sum()),
              "unknown_keys": len(unknown), "unknown_key_names": name_counts(unknown),
              "clicks_hold_ms": float(opts.hold_ms)} | bad.report()
    stem = safe_name(path, None, "file name", path.stem)
    meta = base_meta(NAME, path, a) | {"session": stem}
    return [ImportedSession(f"ilbotcsv_{stem}", a, meta, counts, path)]
