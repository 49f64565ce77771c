"""Privacy by default: the recorder keeps keys and clicks only while the game window has focus,
pointer moves only inside it. Real X windows on the test's own Xvfb (no window manager: the
focus is set with XSetInputFocus, or follows the pointer, or a test plays the window manager by
setting _NET_ACTIVE_WINDOW); input goes through XTest like a person's."""

import time

import pytest

from ilbot.agent.focus import FocusTracker
from ilbot.agent.recorder import Recorder
from ilbot.agent.window import WindowGeometry
from ilbot.cli import main
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.data.store import open_session

GAME = (100, 100, 400, 300)
OTHER = (700, 100, 400, 300)
HUNTER2 = ["h", "u", "n", "t", "e", "r", "2", "Return"]


@pytest.fixture
def xw(own_display):
    from xwin_helpers import XWindows

    x = XWindows()
    yield x
    x.close()


@pytest.fixture
def windows(xw):
    """(game, other): two real top-level windows side by side."""
    return xw.window(*GAME, title="ilbot privacy game"), xw.window(*OTHER, title="ilbot privacy terminal")


def keys_of(path):
    with open_session(path) as s:
        return [(e.key_action, e.key_id) for e in s.events() if e.type == EventType.KEY]


def events_of(path):
    with open_session(path) as s:
        return list(s.events())


def taps(*names):
    return [(a, key_id(n)) for n in names for a in (KeyAction.PRESS, KeyAction.RELEASE)]


def settle():
    time.sleep(0.15)  # the listener and the focus tracker have seen what happened


@pytest.mark.parametrize("by", ["geometry", "window id"])
def test_keys_typed_into_another_window_are_not_recorded(xw, windows, tmp_path, by):
    game, other = windows
    region = WindowGeometry(*GAME, title="game")
    out = tmp_path / "s.ilbot.sqlite"
    rec = Recorder(out, region, window_id=game.id if by == "window id" else None, settle_ms=30)
    xw.move(300, 250)  # the pointer over the game window, the focus elsewhere
    xw.focus(other)
    rec.start()
    try:
        xw.type(HUNTER2)
        settle()
        xw.focus(game)
        settle()
        xw.type(["o", "k"])
        settle()
    finally:
        c = rec.stop()
    assert keys_of(out) == taps("o", "k")
    assert c["unfocused_dropped"] == 2 * len(HUNTER2) and c["KEY"] == 4


def test_focus_follows_the_pointer_without_a_focused_window(xw, windows, tmp_path):
    """PointerRoot (no window manager, nobody set the focus): the window under the pointer."""
    out = tmp_path / "p.ilbot.sqlite"
    xw.focus(None)
    xw.move(800, 200)  # over the other window
    with Recorder(out, WindowGeometry(*GAME), settle_ms=30):
        xw.type(HUNTER2)
        settle()
        xw.move(200, 200)  # over the game window
        settle()
        xw.type(["a"])
        settle()
    assert keys_of(out) == taps("a")


def test_a_window_managers_active_window_wins(xw, windows, tmp_path):
    """With _NET_ACTIVE_WINDOW set (a window manager runs), that is the focused window."""
    game, other = windows
    out = tmp_path / "wm.ilbot.sqlite"
    xw.focus(game)  # X's own focus is on the game, but the window manager says the other is active
    xw.set_active(other)
    with Recorder(out, WindowGeometry(*GAME), settle_ms=30):
        xw.type(HUNTER2)
        settle()
        xw.set_active(game)
        settle()
        xw.type(["b"])
        settle()
        xw.set_active(None)  # (the fixture removes it too)
    assert keys_of(out) == taps("b")


def test_moves_and_clicks_outside_the_game_window_are_not_recorded(xw, windows, tmp_path):
    game, _ = windows
    out = tmp_path / "m.ilbot.sqlite"
    xw.focus(game)
    xw.move(150, 150)
    rec = Recorder(out, WindowGeometry(*GAME), settle_ms=30).start()
    try:
        for x in range(150, 900, 50):  # across the game window's right edge (at 500) and beyond
            xw.move(x, 200)
            time.sleep(0.01)
        xw.click()  # at 850, 200: outside the game window (a recorder's Stop button, say)
        xw.move(250, 250)
        xw.click()  # inside
        settle()
        xw.move(900, 500)
        xw.click()  # stopping the recording with a click outside: not recorded
        settle()
    finally:
        c = rec.stop()
    ev = events_of(out)
    moves = [(e.x, e.y) for e in ev if e.type == EventType.MOVE]
    clicks = [(e.x, e.y) for e in ev if e.type == EventType.CLICK]
    assert clicks == [(150, 150)]  # window-relative 250,250
    assert moves and all(0 <= x < 400 and 0 <= y < 300 for x, y in moves)
    assert (0 + 50, 100) in moves and (350, 100) in moves  # inside: 150..450 at y 200
    assert c["outside_dropped"] >= 8 + 2 and c["CLICK"] == 1


def test_a_click_in_the_game_window_without_focus_is_not_recorded(xw, windows, tmp_path):
    game, other = windows
    out = tmp_path / "c.ilbot.sqlite"
    xw.focus(other)
    xw.move(300, 200)
    with Recorder(out, WindowGeometry(*GAME), settle_ms=30) as rec:
        xw.click()
        settle()
    assert not [e for e in events_of(out) if e.type == EventType.CLICK]
    assert rec.counters["unfocused_dropped"] == 1


def test_a_key_release_follows_its_press(xw, windows, tmp_path):
    """Pressed in the game and released elsewhere: both kept (a pair). Pressed elsewhere and
    released in the game: neither."""
    from Xlib import X, XK
    from Xlib.ext import xtest

    game, other = windows
    out = tmp_path / "r.ilbot.sqlite"
    kc = {c: xw.d.keysym_to_keycode(XK.string_to_keysym(c)) for c in "xy"}

    def key(c, down):
        xtest.fake_input(xw.d, X.KeyPress if down else X.KeyRelease, kc[c])
        xw.d.sync()
        settle()

    xw.focus(game)
    with Recorder(out, WindowGeometry(*GAME), settle_ms=30):
        key("x", True)
        xw.focus(other)
        settle()
        key("x", False)
        key("y", True)
        xw.focus(game)
        settle()
        key("y", False)
    assert keys_of(out) == taps("x")


def test_all_input_records_everything_when_asked(xw, windows, tmp_path):
    game, other = windows
    out = tmp_path / "all.ilbot.sqlite"
    xw.focus(other)
    xw.move(800, 200)
    rec = Recorder(out, WindowGeometry(*GAME), all_input=True, settle_ms=30)
    assert rec.privacy_note.startswith("recording all input")
    with rec:
        xw.type(["h", "i"])
        settle()
    assert keys_of(out) == taps("h", "i")
    assert [e for e in events_of(out) if e.type == EventType.MOVE] == []  # (the pointer did not move)
    with open_session(out) as s:
        assert s.meta["recorder"]["all_input"] is True


def test_the_tracker_follows_focus_changes(xw, windows):
    game, other = windows
    xw.focus(game)
    tracker = FocusTracker(WindowGeometry(*GAME)).start()
    try:
        before = time.monotonic_ns()
        assert tracker.wait_focused(before) is True
        time.sleep(0.1)  # (a moment sampled just before a change counts as not known)
        xw.focus(other)
        time.sleep(0.1)
        away = time.monotonic_ns()
        assert tracker.wait_focused(away) is False
        time.sleep(0.1)
        xw.focus(game)
        time.sleep(0.1)
        back = time.monotonic_ns()
        assert tracker.wait_focused(back) is True
        # the past stays answerable, and a moment no sample has reached yet is not known
        assert tracker.focused_at(before) is True and tracker.focused_at(away) is False
        assert tracker.focused_at(time.monotonic_ns() + 10**9) is None
    finally:
        tracker.stop()
    assert tracker.focused_at(time.monotonic_ns()) is False  # stopped: nothing counts as focused


def test_which_windows_count_as_the_game(xw, windows):
    """By geometry: the game, its children, windows inside its rectangle; not a bigger one. By
    id: the game window and its children only, not another window in the same place."""
    game, other = windows
    child = game.create_window(10, 10, 50, 50, 0, 0)
    child.map()
    big = xw.window(50, 50, 600, 500, title="ilbot privacy big")
    twin = xw.window(*GAME, title="ilbot privacy twin")
    by_geometry = FocusTracker(WindowGeometry(*GAME)).connect()
    by_id = FocusTracker(WindowGeometry(*GAME), game.id).connect()
    try:
        assert by_geometry.is_game(game) and by_geometry.is_game(child) and by_geometry.is_game(twin)
        assert not by_geometry.is_game(big) and not by_geometry.is_game(other) and not by_geometry.is_game(None)
        assert by_id.is_game(game) and by_id.is_game(child)
        assert not by_id.is_game(twin) and not by_id.is_game(big)
    finally:
        by_geometry.close()
        by_id.close()


def test_cli_says_what_it_records(xw, windows, tmp_path, capsys):
    out = tmp_path / "cli.ilbot.sqlite"
    assert main(["record", "--window", ",".join(map(str, GAME)), "--out", str(out), "--duration", "0.2"]) == 0
    err = capsys.readouterr().err
    assert ("recording input only while the game window (400x300 at 100,100) has focus; "
            "--all-input records everything") in err
    out2 = tmp_path / "cli2.ilbot.sqlite"
    assert main(["record", "--window", "ilbot privacy game", "--out", str(out2), "--duration", "0.2",
                 "--all-input"]) == 0
    assert "recording all input on the display (--all-input)" in capsys.readouterr().err
