"""Keystroke logs (`user,session,keyname,timepress,timerelease`, times in ms) → session stores.

One store per (user, session), named `keystrokes_userU_sessionS` where U and S are the fields
reduced to letters, digits, `_` and `-` (a field with nothing left is refused: it could name no
file inside `--out`). Each row becomes a KEY press at `timepress` and a KEY release at
`timerelease`; key names go through `ilbot.data.keys.key_id`, and names outside the vocabulary
map to UNK and are counted by name (`unknown_keys`). The source has no cursor: x = y = 0 and the
window is 1×1 ("largest coordinates seen, plus one"). Rows are checked per column (vectorised):
a time that does not parse, is not finite, is out of range or lies more than 7 days from its
session's median press time, a release before its press, an empty key name, or a wrong number of
fields skip the row, counted by reason (an error under --strict).
"""

from __future__ import annotations

from itertools import count, repeat
from operator import getitem
from pathlib import Path

import numpy as np

from ..keys import UNK, key_id
from ..schema import EventType, KeyAction
from .common import (MAX_NAME_PART, BadRows, ImportedSession, ImportOptions, base_meta, find_source_files,
                     hold_stats, name_counts, read_table, rows_array, safe_name, sort_rows)

NAME = "keystrokes"
COLUMNS = ["user", "session", "keyname", "timepress", "timerelease"]
_CUT = slice(0, MAX_NAME_PART)


def find_files(paths: list[Path]) -> list[Path]:
    return find_source_files(paths, "*.csv")


def _user_id(user: str) -> int | str:
    """A user field as meta `user`: an int when it is up to 9 ASCII digits, else the text (cut)."""
    return int(user) if user.isascii() and user.isdigit() and len(user) <= 9 else user[:MAX_NAME_PART]


def read(path: Path, opts: ImportOptions, bad: BadRows) -> list[ImportedSession]:
    tab = read_table(path, COLUMNS, "a keystroke log", bad)
    n = len(tab)
    users, sessions, names = tab.text("user"), tab.text("session"), tab.text("keyname")
    press = tab.times("timepress", "press t", 1e6)  # [n] ms
    release = tab.times("timerelease", "release t", 1e6)
    tab.reject(release < press, "release before press", "timerelease")
    tab.reject(np.fromiter(map(len, names), np.int64, n) == 0, "empty key name", "keyname")

    ids: dict[tuple[str, str], int] = {}
    group = np.fromiter(map(ids.setdefault, zip(users, sessions), count()), np.int64, n)  # [n] one per (user, session)
    by_group = np.argsort(group, kind="stable")
    segments = np.split(by_group, np.flatnonzero(np.diff(group[by_group])) + 1) if n else []
    segments.sort(key=lambda seg: int(seg[0]))  # sessions in order of first appearance, rows in file order
    for seg in segments:  # times more than 7 days from their session's median press: rejected
        idx = seg[tab.ok[seg]]
        if len(idx):
            centre = float(np.median(press[idx])) * 1e6
            tab.reject_far(idx, press[idx] * 1e6, "timepress", "press t", centre)
            idx = idx[tab.ok[idx]]
            tab.reject_far(idx, release[idx] * 1e6, "timerelease", "release t", centre)

    cut = list(map(getitem, names, repeat(_CUT)))
    uniq_names, name_of = np.unique(np.array(cut if n else [], str), return_inverse=True)
    kid_of_name = np.array([key_id(str(k)) for k in uniq_names], np.int64)
    kids = kid_of_name[name_of] if n else np.zeros(0, np.int64)  # [n]

    out = []
    for seg in segments:
        idx = seg[tab.ok[seg]]
        if not len(idx):
            continue
        i0 = int(idx[0])
        user, session = users[i0], sessions[i0]
        stem = (f"keystrokes_user{safe_name(path, int(tab.rows[i0]), 'user', user)}"
                f"_session{safe_name(path, int(tab.rows[i0]), 'session', session)}")
        t0 = press[idx].min()
        k = len(idx)
        press_rows = rows_array({"t_ns": np.round((press[idx] - t0) * 1e6), "type": EventType.KEY,
                                 "key_action": KeyAction.PRESS, "key_id": kids[idx]}, k)
        release_rows = rows_array({"t_ns": np.round((release[idx] - t0) * 1e6), "type": EventType.KEY,
                                   "key_action": KeyAction.RELEASE, "key_id": kids[idx]}, k)
        ev = sort_rows(np.concatenate([press_rows, release_rows]))
        unknown = name_counts([cut[i] for i in idx[kids[idx] == UNK]])
        counts = {"rows": k, "key_presses": k, "key_releases": k, "unknown_keys": int((kids[idx] == UNK).sum()),
                  "unknown_key_names": unknown} | bad.report()
        meta = base_meta(NAME, path, ev) | {"user": _user_id(user), "session": session[:MAX_NAME_PART],
                                             "key_hold_ms": hold_stats(release[idx] - press[idx])}
        out.append(ImportedSession(stem, ev, meta, counts, path))
    return out
