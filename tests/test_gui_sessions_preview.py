"""Sessions → Open: a readable preview (length, events by type, ticks, window, corrections, events
over time) of a real store, never raw JSON; the summary behind it; damaged stores stay one line."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from ilbot.data.schema import Event, KeyAction
from ilbot.data.session_summary import summarize_session
from ilbot.data.store import SessionWriter
from ilbot.errors import DataError


def segments_supported(path) -> bool:
    """Whether this store version opens a store with a `segments` table (DESIGN §7b corrections)."""
    try:
        summarize_session(path)
    except DataError as e:
        if "segments" in str(e):
            return False
        raise
    return True


def write_store(path, with_segments: bool = True):
    """15 events over 5 s (10 MOVE, 3 CLICK, 2 KEY), 8 ticks, an 800×600 window at (10, 20); with
    `with_segments`, 2 `correction` segments and a `pause` one (DESIGN §7b's segments table)."""
    meta = {"source": "sandbox", "user": "me", "tick_ms": 600.0, "recorder": {"version": 2, "stop_key": "f10"},
            "window": {"x": 10, "y": 20, "width": 800, "height": 600}}
    with SessionWriter(path, meta) as w:
        for i in range(10):
            w.add_event(Event.make(int(i * 0.5e9), 100 + i, 100))
        for i in range(3):
            w.add_event(Event.make(int((0.1 + i) * 1e9), 50, 50, button=1, hold_ms=80))
        w.add_event(Event.make(int(4.9e9), 1, 1, key_action=int(KeyAction.PRESS), key_id=7))
        w.add_event(Event.make(int(5.0e9), 1, 1, key_action=int(KeyAction.RELEASE), key_id=7))
        for t in range(8):
            w.add_tick(t, int(t * 0.6e9), {"tick": t})
    if with_segments:
        with sqlite3.connect(path) as c:
            c.execute("CREATE TABLE IF NOT EXISTS segments (kind TEXT, t_start_ns INTEGER, t_end_ns INTEGER, meta TEXT)")
            c.executemany("INSERT INTO segments VALUES (?, ?, ?, '{}')",
                          [("correction", 0, 10), ("correction", 20, 30), ("pause", 40, 50)])
    return path


def test_summary_counts_types_ticks_and_events_over_time(tmp_path):
    s = summarize_session(write_store(tmp_path / "a.ilbot.sqlite", with_segments=False), bins=10)
    assert (s.n_events, s.n_ticks) == (15, 8)
    assert s.events_by_type == {"CLICK": 3, "KEY": 2, "SCROLL": 0, "MOVE": 10}
    assert s.duration_s == pytest.approx(5.0) and s.window == (10, 20, 800, 600)
    assert s.timeline.shape == (4, 10) and s.timeline.sum() == 15 and s.bin_s == pytest.approx(0.5)
    assert s.timeline[1].tolist() == [0] * 9 + [2]  # both KEY events in the last half second
    plain = summarize_session(tmp_path / "a.ilbot.sqlite")
    assert plain.timeline.size == 0
    if plain.corrections is not None:  # a store version that creates the segments table itself
        assert plain.corrections == 0


def test_summary_counts_correction_segments(tmp_path):
    path = write_store(tmp_path / "a.ilbot.sqlite")
    if not segments_supported(path):
        pytest.skip("this store version refuses a segments table")
    assert summarize_session(path).corrections == 2


def test_summary_of_a_damaged_store_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.ilbot.sqlite"
    bad.write_bytes(b"not sqlite")
    with pytest.raises(DataError, match="not a session store") as e:
        summarize_session(bad)
    assert "\n" not in str(e.value)


@pytest.fixture
def session_list(qtbot, tmp_path):
    from ilbot.gui.sessions import SessionList

    folder = tmp_path / "sessions"
    folder.mkdir()
    s = SessionList(folder)
    qtbot.addWidget(s)
    s.show()
    return s


def test_open_shows_a_readable_preview_with_a_plot(session_list, qtbot, tmp_path):
    path = write_store(session_list.folder / "a.ilbot.sqlite", with_segments=False)
    session_list.refresh()
    session_list.select(path)
    info = session_list.open_selected()
    box = session_list.info_box
    qtbot.addWidget(box)
    assert info.n_events == 15 and box.isVisible() and not box.isModal()
    text = {k: w.text() for k, w in box.labels.items()}
    assert text["Length"] == "5s (5.0 s)"
    assert text["Events"] == "15 (CLICK 3, KEY 2, SCROLL 0, MOVE 10)"
    assert text["Ticks"] == "8, 600 ms each"
    assert text["Window"] == "800×600 at (10, 20)"
    assert text["Source"] == "sandbox" and text["User"] == "me"
    assert text["Corrections"] in ("no segments table", "0 segment(s)")
    # events over time: one curve per type present, events per second that add up to the events
    assert set(box.curves) == {"CLICK", "KEY", "MOVE"}
    x, y = box.curves["MOVE"].getData()
    assert len(x) == len(y) + 1 and float(np.sum(y) * box.summary.bin_s) == pytest.approx(10)
    # the rest of the meta as key/value rows, nested keys dotted, no JSON anywhere
    rows = {box.meta_tree.topLevelItem(i).text(0): box.meta_tree.topLevelItem(i).text(1)
            for i in range(box.meta_tree.topLevelItemCount())}
    assert rows["recorder.version"] == "2" and rows["recorder.stop_key"] == "f10"
    assert "window" not in rows and not any("{" in v for v in rows.values())
    from ilbot.gui.session_preview import describe
    from ilbot.training.synthetic import make_sessions

    no_ticks = summarize_session(make_sessions(tmp_path / "syn", n_sessions=1, duration_s=6)[0])
    assert describe(no_ticks)["Ticks"] == "none recorded (no game state)"
    shot = box.grab()
    assert shot.width() > 300 and shot.height() > 300
    box.close()


def test_open_counts_corrections_and_a_damaged_store_is_one_line(session_list, qtbot):
    errors = []
    session_list.error.connect(errors.append)
    path = write_store(session_list.folder / "seg.ilbot.sqlite")
    (session_list.folder / "broken.ilbot.sqlite").write_bytes(b"garbage")
    session_list.refresh()
    if segments_supported(path):
        session_list.select(path)
        session_list.open_selected()
        qtbot.addWidget(session_list.info_box)
        assert session_list.info_box.labels["Corrections"].text() == "2 segment(s)"
        session_list.info_box.close()
    session_list.info_box = None
    session_list.select(session_list.folder / "broken.ilbot.sqlite")
    session_list.open_selected()
    assert session_list.info_box is None and len(errors) == 1 and "not a session store" in errors[0]
