"""Keystroke logs (`user,session,keyname,timepress,timerelease`, times in ms) → session stores.

One store per (user, session). Each row becomes a KEY press at `timepress` and a KEY release at
`timerelease`; key names go through `ilbot.data.keys.key_id`, and names outside the vocabulary
map to UNK and are counted by name (`unknown_keys`). The source has no cursor: x = y = 0 and the
window is 1×1 ("largest coordinates seen, plus one"). Rows that do not parse, or release before
they press, are skipped with their line numbers (an error under --strict).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...errors import DataError
from ..keys import UNK, key_id
from ..schema import EventType, KeyAction
from .common import BadRows, ImportedSession, ImportOptions, base_meta, find_source_files, hold_stats, rows_array, sort_rows

NAME = "keystrokes"
COLUMNS = ["user", "session", "keyname", "timepress", "timerelease"]


def find_files(paths: list[Path]) -> list[Path]:
    return find_source_files(paths, "*.csv")


def read(path: Path, opts: ImportOptions) -> list[ImportedSession]:
    bad = BadRows(path, opts.strict)
    groups: dict[tuple[str, str], list[tuple[float, float, int, int]]] = {}
    unknown: dict[tuple[str, str], dict[str, int]] = {}
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None or [h.strip() for h in header] != COLUMNS:
                raise DataError(f"{path}:1: not a keystroke log (header {header}, expected {','.join(COLUMNS)})")
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 5:
                    bad.bad(lineno, f"expected 5 fields, got {len(row)}")
                    continue
                user, session, name, tp, tr = (c.strip() for c in row)
                try:
                    t_press, t_release = float(tp), float(tr)
                except ValueError:
                    bad.bad(lineno, "a time does not parse")
                    continue
                if t_release < t_press or not name:
                    bad.bad(lineno, "release before press" if name else "empty key name")
                    continue
                kid = key_id(name)
                key = (user, session)
                if kid == UNK:
                    u = unknown.setdefault(key, {})
                    u[name] = u.get(name, 0) + 1
                groups.setdefault(key, []).append((t_press, t_release, kid, lineno))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    except csv.Error as e:
        raise DataError(f"{path}: malformed CSV ({e})") from None
    sessions = []
    for (user, session), rows in groups.items():
        a = np.array(rows, np.float64)  # [n, 4] press, release, key_id, line
        t0 = a[:, 0].min()
        n = len(a)
        press = rows_array({"t_ns": np.round((a[:, 0] - t0) * 1e6), "type": EventType.KEY,
                            "key_action": KeyAction.PRESS, "key_id": a[:, 2]}, n)
        release = rows_array({"t_ns": np.round((a[:, 1] - t0) * 1e6), "type": EventType.KEY,
                              "key_action": KeyAction.RELEASE, "key_id": a[:, 2]}, n)
        ev = sort_rows(np.concatenate([press, release]))
        unk = unknown.get((user, session), {})
        counts = {"rows": n, "key_presses": n, "key_releases": n, "unknown_keys": sum(unk.values()),
                  "unknown_key_names": unk} | bad.report()
        try:
            uid: int | str = int(user)
        except ValueError:
            uid = user
        meta = base_meta(NAME, path, ev) | {"user": uid, "session": session,
                                             "key_hold_ms": hold_stats(a[:, 1] - a[:, 0])}
        sessions.append(ImportedSession(f"keystrokes_user{user}_session{session}", ev, meta, counts))
    return sessions
