"""Balabit Mouse Dynamics Challenge sessions → session stores.

One CSV per session: `record timestamp,client timestamp,button,state,x,y` (seconds since the
session start; the folder `userN` names the user). Every button/state pair is handled:

| button / state | event |
| --- | --- |
| NoButton / Move, NoButton / Drag | MOVE at (x, y) |
| Left, Right, Middle / Pressed + the next Released of that button | one CLICK at the press time and position, hold = release − press |
| a Pressed with no Released before the next Pressed (or the end) | dropped, counted `unmatched_press` (a warning) |
| a Released with no open Pressed | dropped, counted `unmatched_release` |
| a Pressed whose Released is earlier in time (a clock step back) | dropped, counted `release_before_press` |
| XButton / Pressed, Released | dropped, counted `unsupported_button` (no such button in the schema) |
| Scroll / Up, Down | SCROLL up / down at the last cursor position (the rows carry x = y = 0) |

Times use the client clock (the record timestamp is batched by the network capture). x or y =
65535 is the off-screen sentinel: such a MOVE is dropped and counted; on a button row the last
cursor position is used instead (counted). A client clock that wraps (a backward jump of 2**32 ms,
within `WRAP_TOLERANCE_S`, as a 32-bit millisecond counter makes) is repaired by shifting
everything after the jump so it continues from the previous time plus the record-clock gap there;
each repair is counted in `clock_wraps`. Other backward steps are left to the time sort (counted
in `clock_backsteps`), so one absurd time cannot shift the rows after it.

Every row is checked (`common.Table`): both times parse, are finite and in range, and after the
wrap repair lie within 7 days of the session's median; x and y parse, are finite and within
±1e6 px. A row failing a check is skipped and counted by reason (fatal under --strict). The store
is named `balabit_userN_FILE`, FILE reduced to letters, digits, `_` and `-`.
"""

from __future__ import annotations

import re
from itertools import repeat
from pathlib import Path

import numpy as np

from ..schema import MAX_COORD_PX, EventType, ScrollY
from .common import (BadRows, ImportedSession, ImportOptions, base_meta, find_source_files, read_table, rows_array,
                     safe_name, sort_rows)

NAME = "balabit"
COLUMNS = ["record timestamp", "client timestamp", "button", "state", "x", "y"]
HEADER = ",".join(COLUMNS)
SENTINEL = 65535
WRAP_S = 2**32 / 1000.0  # a 32-bit millisecond clock wraps after this many seconds
WRAP_TOLERANCE_S = 3600.0  # a step back by WRAP_S give or take this much is a wrap

# (button, state) → (kind, button code); kinds: 0 move, 1 press, 2 release, 3 scroll up, 4 scroll down
_PAIRS = {
    ("NoButton", "Move"): (0, 0), ("NoButton", "Drag"): (0, 0),
    ("Left", "Pressed"): (1, 1), ("Left", "Released"): (2, 1),
    ("Right", "Pressed"): (1, 2), ("Right", "Released"): (2, 2),
    ("Middle", "Pressed"): (1, 3), ("Middle", "Released"): (2, 3),
    ("XButton", "Pressed"): (1, 4), ("XButton", "Released"): (2, 4),
    ("Scroll", "Up"): (3, 0), ("Scroll", "Down"): (4, 0),
}
_PAIR_CODE = {pair: i for i, pair in enumerate(_PAIRS)}  # (button, state) → index into the tables below
_KIND_OF = np.array([k for k, _ in _PAIRS.values()], np.int64)
_BUTTON_OF = np.array([b for _, b in _PAIRS.values()], np.int64)
MOVE, PRESS, RELEASE, SCROLL_UP, SCROLL_DOWN = range(5)
SUPPORTED_BUTTONS = (1, 2, 3)


def find_files(paths: list[Path]) -> list[Path]:
    return find_source_files(paths, "*")  # Balabit session files have no extension


def user_of(path: Path) -> int | None:
    for part in reversed(path.parts[:-1]):
        m = re.fullmatch(r"user_?([0-9]{1,9})", part, re.IGNORECASE)
        if m:
            return int(m.group(1))
    return None


def repair_wraps(client: np.ndarray, record: np.ndarray) -> tuple[np.ndarray, int]:
    """Client times with wrap-arounds undone, and the number of wraps repaired."""
    d = np.diff(client)  # [n-1]
    jumps = np.flatnonzero(np.abs(d + WRAP_S) <= WRAP_TOLERANCE_S)
    if len(jumps) == 0:
        return client, 0
    shift = np.zeros(len(client))
    for j in jumps:  # continue from the previous time plus the record clock's gap at the jump
        shift[j + 1] += -d[j] + max(record[j + 1] - record[j], 0.0)
    return client + np.cumsum(shift), int(len(jumps))


def read(path: Path, opts: ImportOptions, bad: BadRows) -> list[ImportedSession]:
    tab = read_table(path, COLUMNS, "a Balabit session file", bad)
    code = np.fromiter(map(_PAIR_CODE.get, zip(tab.cols["button"], tab.cols["state"]), repeat(-1)), np.int64,
                       len(tab))
    tab.reject(code < 0, "unknown button/state", "button",
               lambda i: f"{tab.cols['button'][i]}/{tab.cols['state'][i]}")
    record_s = tab.times("record timestamp", "record t", 1e9)
    client_s = tab.times("client timestamp", "t", 1e9)
    xs, ys = tab.numbers("x", "x"), tab.numbers("y", "y")
    tab.check_range(xs, "x", "x", -MAX_COORD_PX, MAX_COORD_PX)
    tab.check_range(ys, "y", "y", -MAX_COORD_PX, MAX_COORD_PX)
    keep = np.flatnonzero(tab.ok)
    client, wraps = repair_wraps(client_s[keep], record_s[keep]) if len(keep) else (client_s[keep], 0)
    near = tab.reject_far(keep, client * 1e9, "client timestamp", "t")
    keep, client = keep[near], client[near]
    kind, button = _KIND_OF[code[keep]], _BUTTON_OF[code[keep]]
    x, y = xs[keep], ys[keep]
    n = len(keep)
    t0 = client.min() if n else 0.0
    t_ns = np.round((client - t0) * 1e9).astype(np.int64)  # [n]

    sentinel = (x == SENTINEL) | (y == SENTINEL)
    has_pos = ((kind == MOVE) | (kind == PRESS) | (kind == RELEASE)) & ~sentinel
    last = np.maximum.accumulate(np.where(has_pos, np.arange(n), -1)) if n else np.zeros(0, np.int64)
    cur_x = np.where(last >= 0, x[np.maximum(last, 0)], 0.0)  # [n] last known cursor position
    cur_y = np.where(last >= 0, y[np.maximum(last, 0)], 0.0)

    moves = (kind == MOVE) & ~sentinel
    scrolls = (kind == SCROLL_UP) | (kind == SCROLL_DOWN)
    counts = {"rows": tab.records, "moves_in": int((kind == MOVE).sum()),
              "sentinel_dropped": int((sentinel & (kind == MOVE)).sum()),
              "sentinel_on_button": int((sentinel & ((kind == PRESS) | (kind == RELEASE))).sum()),
              "presses": int((kind == PRESS).sum()), "releases": int((kind == RELEASE).sum()),
              "scrolls_in": int(scrolls.sum()), "clock_wraps": wraps,
              "clock_backsteps": int((np.diff(t_ns) < 0).sum()) if n > 1 else 0}

    # Pair each press with the next release of its button (a loop over button rows only).
    click_idx, click_hold = [], []
    open_press: dict[int, int] = {}
    unmatched_press = unmatched_release = unsupported = released_before = 0
    for i in np.flatnonzero((kind == PRESS) | (kind == RELEASE)).tolist():
        b = int(button[i])
        if b not in SUPPORTED_BUTTONS:
            unsupported += 1
            continue
        if kind[i] == PRESS:
            if b in open_press:
                unmatched_press += 1
            open_press[b] = i
        elif b in open_press:
            p = open_press.pop(b)
            if t_ns[i] < t_ns[p]:  # the clock stepped back between press and release: no hold time
                released_before += 1
                continue
            click_idx.append(p)
            click_hold.append((t_ns[i] - t_ns[p]) / 1e6)
        else:
            unmatched_release += 1
    unmatched_press += len(open_press)
    counts.update({"clicks": len(click_idx), "unmatched_press": unmatched_press,
                   "unmatched_release": unmatched_release, "unsupported_button": unsupported,
                   "release_before_press": released_before})
    ci = np.array(click_idx, np.int64)
    press_pos_ok = ~sentinel[ci]
    cx = np.where(press_pos_ok, x[ci], cur_x[ci])
    cy = np.where(press_pos_ok, y[ci], cur_y[ci])

    parts = [
        (np.flatnonzero(moves), rows_array({"t_ns": t_ns[moves], "type": EventType.MOVE, "x": x[moves],
                                            "y": y[moves]}, int(moves.sum()))),
        (ci, rows_array({"t_ns": t_ns[ci], "type": EventType.CLICK, "x": cx, "y": cy, "button": button[ci],
                         "hold_ms": np.array(click_hold)}, len(ci))),
        (np.flatnonzero(scrolls), rows_array({"t_ns": t_ns[scrolls], "type": EventType.SCROLL, "x": cur_x[scrolls],
                                              "y": cur_y[scrolls],
                                              "scroll_y": np.where(kind[scrolls] == SCROLL_UP, ScrollY.UP, ScrollY.DOWN)},
                                             int(scrolls.sum()))),
    ]
    src_row = np.concatenate([p[0] for p in parts])
    rows = np.concatenate([p[1] for p in parts])
    rows = rows[np.argsort(src_row, kind="stable")]  # source order first, so equal times keep it
    rows = sort_rows(rows)
    counts |= bad.report()
    user = user_of(path)
    meta = base_meta(NAME, path, rows) | {"user": user, "session": safe_name(path, None, "file name", path.name)}
    stem = meta["session"]
    name = f"balabit_user{user}_{stem}" if user is not None else f"balabit_{stem}"
    return [ImportedSession(name, rows, meta, counts, path)]
