"""Session store: round trip, batching, crash safety (SIGKILL), damaged and foreign files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ilbot.cli import main
from ilbot.data import Event, SessionWriter, open_session
from ilbot.data.schema import F, EventType
from ilbot.data.store import SCHEMA_VERSION
from ilbot.errors import DataError


def _events(n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        k = i % 4
        out.append(Event.make(i * 3_000_000 + int(rng.integers(0, 1000)), float(rng.integers(0, 1920)),
                              float(rng.integers(0, 1080)), button=int(k == 0) * int(rng.integers(1, 4)),
                              key_action=int(k == 1) * int(rng.integers(1, 3)), key_id=int(k == 1) * 5,
                              scroll_y=int(k == 2) * int(rng.integers(1, 3)), hold_ms=float(k == 0) * 104.5))
    return out


def test_round_trip_events_ticks_meta(tmp_path):
    p = tmp_path / "s.ilbot.sqlite"
    events = _events(1234)
    feats = [np.arange(F, dtype=np.float32) * k for k in range(3)]
    with SessionWriter(p, {"source": "test", "window": {"x": 1, "y": 2, "width": 640, "height": 480}}) as w:
        for e in events[:600]:
            w.add_event(e)
        w.add_events(events[600:])
        for k in range(3):
            w.add_tick(k, k * 600_000_000, {"tick": k, "hp": "10/10"}, feats[k])
        w.set_meta("notes", "hello")
    s = open_session(p)
    assert list(s.events()) == events
    arr = s.event_array()
    assert arr.shape == (1234, 9) and arr[5, 0] == events[5].t_ns and arr[4, 8] == 104.5
    ticks = list(s.ticks())
    assert [t.tick for t in ticks] == [0, 1, 2] and ticks[1].raw_json == '{"tick": 1, "hp": "10/10"}'
    np.testing.assert_array_equal(ticks[2].features, feats[2])
    tk, tn, tf = s.tick_arrays()
    assert list(tn) == [0, 600_000_000, 1_200_000_000] and tf.shape == (3, F)
    assert s.meta["window"] == {"x": 1, "y": 2, "width": 640, "height": 480}
    assert s.meta["schema_version"] == SCHEMA_VERSION and s.meta["notes"] == "hello" and s.meta["source"] == "test"
    assert len(s) == 1234 and s.n_ticks == 3
    s.close()


def test_events_come_back_in_time_order(tmp_path):
    p = tmp_path / "s.ilbot.sqlite"
    evs = [Event.make(t, t, 0) for t in (5, 1, 3, 3, 2)]
    with SessionWriter(p, {}) as w:
        w.add_events(evs)
    with open_session(p) as s:
        assert [e.t_ns for e in s.events()] == [1, 2, 3, 3, 5]
        assert list(s.event_array()[:, 0]) == [1, 2, 3, 3, 5]


def test_array_rows_and_batched_commits(tmp_path):
    p = tmp_path / "s.ilbot.sqlite"
    rows = np.zeros((2000, 9))
    rows[:, 0] = np.arange(2000) * 1000
    rows[:, 1] = EventType.MOVE
    w = SessionWriter(p, {}, batch_rows=100, batch_ms=10_000)
    for i in range(250):
        w.add_event(Event.make(10**9 + i, 1, 1))
    w.flush()
    assert w.n_events == 250 and w.n_commits >= 2  # 100-row batches plus the flushed rest
    w.add_events(rows)
    with pytest.raises(ValueError):
        w.add_events(np.zeros((3, 4)))
    w.close()
    w.close()  # idempotent
    with pytest.raises(DataError, match="closed"):
        w.add_event(Event.make(0, 0, 0))
    assert open_session(p).n_events == 2250


def test_timer_commits_without_flush(tmp_path):
    p = tmp_path / "s.ilbot.sqlite"
    w = SessionWriter(p, {}, batch_rows=10_000, batch_ms=50)
    for i in range(10):
        w.add_event(Event.make(i, 1, 1))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # a reader sees the batch once the timer commits it
        c = sqlite3.connect(p)
        n = c.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        c.close()
        if n == 10:
            break
        time.sleep(0.02)
    assert n == 10
    w.close()


_WRITER = textwrap.dedent("""
    import sys, time
    from ilbot.data import Event, SessionWriter
    w = SessionWriter(sys.argv[1], {"source": "killtest"}, batch_rows=50, batch_ms=10_000)
    i = 0
    while True:
        for _ in range(50):
            w.add_event(Event.make(i * 1000, i % 1000, 7))
            i += 1
        w.flush()  # the batch of 50 is committed
        print(i, flush=True)
        for _ in range(20):  # a partial batch in flight when the kill lands
            w.add_event(Event.make(i * 1000, i % 1000, 7))
            i += 1
        w.flush()
        print(i, flush=True)
""")


def test_sigkill_mid_recording_keeps_committed_batches(tmp_path):
    p = tmp_path / "killed.ilbot.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(p)], stdout=subprocess.PIPE, text=True)
    committed = 0
    try:
        for _ in range(40):
            committed = int(proc.stdout.readline())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (tmp_path / "killed.ilbot.sqlite-wal").exists()  # never checkpointed: the WAL holds the batches
    s = open_session(p)  # opens and passes quick_check
    ts = [e.t_ns for e in s.events()]
    assert len(ts) >= committed  # everything reported committed survived
    assert len(ts) <= committed + 70  # at most the batch in flight beyond that
    assert ts == [i * 1000 for i in range(len(ts))]  # an exact prefix: no gap, no damage
    assert s.meta["source"] == "killtest"


def test_refuses_to_overwrite_and_overwrites_on_request(tmp_path):
    p = tmp_path / "s.ilbot.sqlite"
    with SessionWriter(p, {}) as w:
        w.add_event(Event.make(0, 1, 1))
    with pytest.raises(DataError, match="already exists"):
        SessionWriter(p, {})
    with SessionWriter(p, {}, overwrite=True):
        pass
    assert open_session(p).n_events == 0


def test_garbage_truncated_and_foreign_files(tmp_path, capsys):
    garbage = tmp_path / "garbage.ilbot.sqlite"
    garbage.write_bytes(os.urandom(8192))
    with pytest.raises(DataError, match="garbage.ilbot.sqlite: not a session store"):
        open_session(garbage)

    good = tmp_path / "good.ilbot.sqlite"
    with SessionWriter(good, {}) as w:
        w.add_events(_events(20000))
    truncated = tmp_path / "truncated.ilbot.sqlite"
    data = good.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated.ilbot.sqlite"):
        s = open_session(truncated)
        list(s.events())

    foreign = tmp_path / "foreign.sqlite"
    c = sqlite3.connect(foreign)
    c.execute("CREATE TABLE t (a)")
    c.commit()
    c.close()
    with pytest.raises(DataError, match="missing table"):
        open_session(foreign)

    nover = tmp_path / "nover.ilbot.sqlite"
    with SessionWriter(nover, {}):
        pass
    c = sqlite3.connect(nover)
    c.execute("DELETE FROM meta WHERE key='schema_version'")
    c.commit()
    c.close()
    with pytest.raises(DataError, match="no schema_version"):
        open_session(nover)
    c = sqlite3.connect(nover)
    c.execute("INSERT INTO meta VALUES ('schema_version', '99')")
    c.commit()
    c.close()
    with pytest.raises(DataError, match="newer"):
        open_session(nover)
    c = sqlite3.connect(nover)
    c.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', '1'), ('bad', '{oops')")
    c.commit()
    c.close()
    with pytest.raises(DataError, match="damaged meta"):
        open_session(nover)
    with pytest.raises(DataError, match="no such session store"):
        open_session(tmp_path / "missing.ilbot.sqlite")

    # Through the CLI: one line naming the file, exit 2.
    for bad in (garbage, truncated):
        assert main(["build", str(bad), "--out", str(tmp_path / "ds")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0]


def test_stores_and_their_wal_files_are_user_only(tmp_path):
    import stat as st
    old = os.umask(0)  # even a permissive umask gives user-only files
    try:
        p = tmp_path / "new" / "s.ilbot.sqlite"
        w = SessionWriter(p, {})
        w.add_event(Event.make(0, 1, 1))
        w.flush()
        files = {f.name: st.S_IMODE(f.stat().st_mode) for f in p.parent.iterdir()}
        assert files == {"s.ilbot.sqlite": 0o600, "s.ilbot.sqlite-wal": 0o600, "s.ilbot.sqlite-shm": 0o600}
        assert st.S_IMODE(p.parent.stat().st_mode) == 0o700
        w.close()
    finally:
        os.umask(old)


def test_writer_overwrites_only_ilbot_stores(tmp_path):
    from ilbot.data.store import is_session_store
    notes = tmp_path / "notes.ilbot.sqlite"
    notes.write_text("my notes")
    with pytest.raises(DataError, match="not an ilbot session store; refusing"):
        SessionWriter(notes, {}, overwrite=True)
    assert notes.read_text() == "my notes" and not is_session_store(notes)
    link = tmp_path / "link.ilbot.sqlite"
    link.symlink_to(notes)
    with pytest.raises(DataError, match="symbolic link"):
        SessionWriter(link, {}, overwrite=True)
    assert notes.read_text() == "my notes"
    store = tmp_path / "s.ilbot.sqlite"
    SessionWriter(store, {}).close()
    assert is_session_store(store) and not is_session_store(link) and not is_session_store(tmp_path)


def test_write_store_meta_counts_are_the_stored_counts(tmp_path):
    from ilbot.data.store import write_store
    rows = np.zeros((7, 9))
    rows[:, 0] = np.arange(7) * 1000
    rows[:, 1] = [3, 3, 0, 3, 2, 1, 3]
    rows[2, 4], rows[4, 7], rows[5, 5] = 1, 1, 1
    seen = {}
    counts = write_store(tmp_path / "s.ilbot.sqlite", rows, lambda c: seen.setdefault("meta", {"counts": c}))
    assert counts == {"CLICK": 1, "KEY": 1, "SCROLL": 1, "MOVE": 4} == seen["meta"]["counts"]
    with open_session(tmp_path / "s.ilbot.sqlite") as s:
        assert s.meta["counts"] == counts and s.n_events == 7
    bad = rows.copy()
    bad[3, 2] = np.nan
    with pytest.raises(DataError, match="event 3 to write is invalid: x=nan"):
        write_store(tmp_path / "t.ilbot.sqlite", bad, {})
