"""Balabit Mouse Dynamics Challenge sessions → session stores.

One CSV per session: `record timestamp,client timestamp,button,state,x,y` (seconds since the
session start; the folder `userN` names the user). Every button/state pair is handled:

| button / state | event |
| --- | --- |
| NoButton / Move, NoButton / Drag | MOVE at (x, y) |
| Left, Right, Middle / Pressed + the next Released of that button | one CLICK at the press time and position, hold = release − press |
| a Pressed with no Released before the next Pressed (or the end) | dropped, counted `unmatched_press` (a warning) |
| a Released with no open Pressed | dropped, counted `unmatched_release` |
| XButton / Pressed, Released | dropped, counted `unsupported_button` (no such button in the schema) |
| Scroll / Up, Down | SCROLL up / down at the last cursor position (the rows carry x = y = 0) |

Times use the client clock (the record timestamp is batched by the network capture). x or y =
65535 is the off-screen sentinel: such a MOVE is dropped and counted; on a button row the last
cursor position is used instead (counted). A client clock that wraps (a backward jump of more than
`WRAP_JUMP_S`, as a 32-bit millisecond counter does) is repaired by shifting everything after the
jump so it continues from the previous time plus the record-clock gap there; each repair is
counted in `clock_wraps`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..schema import EventType, ScrollY
from .common import BadRows, ImportedSession, ImportOptions, base_meta, find_source_files, rows_array, sort_rows

NAME = "balabit"
HEADER = "record timestamp,client timestamp,button,state,x,y"
SENTINEL = 65535
WRAP_JUMP_S = 1.0  # a client-clock step back larger than this is a wrap, not jitter

# (button, state) → (kind, button code); kinds: 0 move, 1 press, 2 release, 3 scroll up, 4 scroll down
_PAIRS = {
    ("NoButton", "Move"): (0, 0), ("NoButton", "Drag"): (0, 0),
    ("Left", "Pressed"): (1, 1), ("Left", "Released"): (2, 1),
    ("Right", "Pressed"): (1, 2), ("Right", "Released"): (2, 2),
    ("Middle", "Pressed"): (1, 3), ("Middle", "Released"): (2, 3),
    ("XButton", "Pressed"): (1, 4), ("XButton", "Released"): (2, 4),
    ("Scroll", "Up"): (3, 0), ("Scroll", "Down"): (4, 0),
}
MOVE, PRESS, RELEASE, SCROLL_UP, SCROLL_DOWN = range(5)
SUPPORTED_BUTTONS = (1, 2, 3)


def find_files(paths: list[Path]) -> list[Path]:
    return find_source_files(paths, "*")  # Balabit session files have no extension


def user_of(path: Path) -> int | None:
    for part in reversed(path.parts[:-1]):
        m = re.fullmatch(r"user_?(\d+)", part, re.IGNORECASE)
        if m:
            return int(m.group(1))
    return None


def repair_wraps(client: np.ndarray, record: np.ndarray) -> tuple[np.ndarray, int]:
    """Client times with wrap-arounds undone, and the number of wraps repaired."""
    d = np.diff(client)  # [n-1]
    jumps = np.flatnonzero(d < -WRAP_JUMP_S)
    if len(jumps) == 0:
        return client, 0
    shift = np.zeros(len(client))
    for j in jumps:  # continue from the previous time plus the record clock's gap at the jump
        shift[j + 1] += -d[j] + max(record[j + 1] - record[j], 0.0)
    return client + np.cumsum(shift), int(len(jumps))


def read(path: Path, opts: ImportOptions) -> list[ImportedSession]:
    bad = BadRows(path, opts.strict)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            header = fh.readline().strip()
            if header != HEADER:
                raise DataError(f"{path}:1: not a Balabit session file (header {header[:60]!r}, expected {HEADER!r})")
            rec, cli, kind, btn, xs, ys = [], [], [], [], [], []
            for lineno, line in enumerate(fh, start=2):
                parts = line.rstrip("\r\n").split(",")
                if len(parts) != 6:
                    if line.strip():
                        bad.bad(lineno, f"expected 6 fields, got {len(parts)}")
                    continue
                pair = _PAIRS.get((parts[2], parts[3]))
                if pair is None:
                    bad.bad(lineno, f"unknown button/state {parts[2]}/{parts[3]}")
                    continue
                try:
                    r, c, x, y = float(parts[0]), float(parts[1]), int(parts[4]), int(parts[5])
                except ValueError:
                    bad.bad(lineno, "a number does not parse")
                    continue
                rec.append(r)
                cli.append(c)
                kind.append(pair[0])
                btn.append(pair[1])
                xs.append(x)
                ys.append(y)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    record, client = np.array(rec), np.array(cli)
    kind, button = np.array(kind, np.int64), np.array(btn, np.int64)
    x, y = np.array(xs, np.float64), np.array(ys, np.float64)
    n = len(kind)
    client, wraps = repair_wraps(client, record) if n else (client, 0)
    t0 = client.min() if n else 0.0
    t_ns = np.round((client - t0) * 1e9).astype(np.int64)  # [n]

    sentinel = (x == SENTINEL) | (y == SENTINEL)
    has_pos = ((kind == MOVE) | (kind == PRESS) | (kind == RELEASE)) & ~sentinel
    last = np.maximum.accumulate(np.where(has_pos, np.arange(n), -1)) if n else np.zeros(0, np.int64)
    cur_x = np.where(last >= 0, x[np.maximum(last, 0)], 0.0)  # [n] last known cursor position
    cur_y = np.where(last >= 0, y[np.maximum(last, 0)], 0.0)

    moves = (kind == MOVE) & ~sentinel
    scrolls = (kind == SCROLL_UP) | (kind == SCROLL_DOWN)
    counts = {"rows": n, "moves_in": int((kind == MOVE).sum()), "sentinel_dropped": int((sentinel & (kind == MOVE)).sum()),
              "sentinel_on_button": int((sentinel & ((kind == PRESS) | (kind == RELEASE))).sum()),
              "presses": int((kind == PRESS).sum()), "releases": int((kind == RELEASE).sum()),
              "scrolls_in": int(scrolls.sum()), "clock_wraps": wraps,
              "clock_backsteps": int((np.diff(t_ns) < 0).sum()) if n > 1 else 0}

    # Pair each press with the next release of its button (a loop over button rows only).
    click_idx, click_hold = [], []
    open_press: dict[int, int] = {}
    unmatched_press = unmatched_release = unsupported = 0
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
            click_idx.append(p)
            click_hold.append((t_ns[i] - t_ns[p]) / 1e6)
        else:
            unmatched_release += 1
    unmatched_press += len(open_press)
    counts.update({"clicks": len(click_idx), "unmatched_press": unmatched_press,
                   "unmatched_release": unmatched_release, "unsupported_button": unsupported})
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
    meta = base_meta(NAME, path, rows) | {"user": user, "session": path.name}
    name = f"balabit_user{user}_{path.name}" if user is not None else f"balabit_{path.name}"
    return [ImportedSession(name, rows, meta, counts)]
