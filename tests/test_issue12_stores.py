"""Issue 12, damaged session stores beyond `ilbot build`: `ilbot replay` reads the whole store
before it performs anything, so every kind of damage that the readers refuse (tests/
test_store_damaged.py's ~70 kinds) is one line naming the store and exit 2 — never a replay that
starts and stops half-way with "stopped: by you"; the Sessions page's figures
(`summarize_session`) give the same one-line error instead of a TypeError. Real SQLite."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from ilbot.cli import main as cli
from ilbot.data import Event, SessionWriter, open_session
from ilbot.data.schema import F
from ilbot.data.session_summary import summarize_session
from ilbot.errors import DataError

from test_store_damaged import DAMAGE  # noqa: E402  (the kinds of damage, shared)


@pytest.fixture(scope="module")
def good_store(tmp_path_factory):
    p = tmp_path_factory.mktemp("good12") / "good.ilbot.sqlite"
    with SessionWriter(p, {"source": "test", "user": 3, "window": {"x": 0, "y": 0, "width": 800, "height": 600}}) as w:
        w.add_events([Event.make(i * 2_000_000, i % 800, i % 600, button=int(i % 9 == 0), key_action=int(i % 9 == 1),
                                 key_id=5 * int(i % 9 == 1), scroll_y=int(i % 9 == 2), hold_ms=90.0 * (i % 9 == 0))
                      for i in range(5000)])
        for k in range(60):
            w.add_tick(k, k * 600_000_000, {"tick": k}, np.full(F, k, np.float32))
    return p


def _readers_say(p) -> str | None:
    """None when every reader reads the store, else the readers' DataError message."""
    try:
        with open_session(p) as s:
            s.check()
            s.tick_arrays()
    except DataError as e:
        return str(e)
    return None


@pytest.mark.parametrize("name", list(DAMAGE))
def test_replay_refuses_a_damaged_store_before_it_starts(name, good_store, tmp_path, capsys):
    p = tmp_path / "damaged.ilbot.sqlite"
    shutil.copyfile(good_store, p)
    DAMAGE[name][0](p)
    said = _readers_say(p)
    rc = cli(["replay", str(p), "--speed", "1000", "--json"])
    out, err = capsys.readouterr()
    if said is None:
        assert rc == 0 and err.strip() == "stopped: finished", err
        return
    assert rc == 2, (said, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and str(p) in lines[0], err  # no "stopped: ..." first
    assert out == ""  # nothing was replayed


@pytest.mark.parametrize("name", list(DAMAGE))
def test_session_figures_of_a_damaged_store(name, good_store, tmp_path):
    p = tmp_path / "damaged.ilbot.sqlite"
    shutil.copyfile(good_store, p)
    DAMAGE[name][0](p)
    try:
        s = summarize_session(p, bins=20)
    except DataError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    assert sum(s.events_by_type.values()) == s.n_events and s.timeline.sum() == s.n_events


def test_check_reads_every_table(good_store, tmp_path):
    import sqlite3

    p = tmp_path / "s.ilbot.sqlite"
    shutil.copyfile(good_store, p)
    with open_session(p) as s:
        assert s.check() is s
    c = sqlite3.connect(p)
    c.execute("UPDATE ticks SET features=X'00' WHERE tick=59")  # the last tick: only a full read finds it
    c.commit()
    c.close()
    with open_session(p) as s, pytest.raises(DataError, match="ticks row tick=59: features blob of 1 bytes"):
        s.check()
