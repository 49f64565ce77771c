"""Executors: the dry run's bookkeeping, and a real PynputExecutor driving a real Qt window on the
test session's own Xvfb (clicks, holds, keys and scrolls arrive where and as planned)."""

from __future__ import annotations

import time

import pytest

from ilbot.agent.executors import DryRunExecutor, Executor, Performed, screen_position
from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction

C, K, S, M = EventType.CLICK, EventType.KEY, EventType.SCROLL, EventType.MOVE


def act(kind, x=0.0, y=0.0, **kw):
    return PlannedAction(kind, 0.0, x, y, **kw)


# -- dry run ---------------------------------------------------------------------------------------
def test_screen_position_rounds_then_offsets():
    assert screen_position(act(M, 10.4, 20.6), (100, 50)) == (110, 71)
    assert screen_position(act(M, 0, 0), (0.0, 0.0)) == (0, 0)


def test_dry_run_records_notifies_and_tracks_held():
    ex = DryRunExecutor(log_size=3)
    seen = []
    ex.add_listener(seen.append)
    ex.add_listener(lambda rec: 1 / 0)  # a failing listener is logged, never raised
    rec = ex.perform(act(K, key_action=KeyAction.PRESS, key_id=key_id("w")), (10, 10))
    assert isinstance(rec, Performed) and rec.screen_x == 10 and seen == [rec]
    ex.perform(act(C, 5, 6, button=1, hold_ms=10_000), (10, 10))
    ex.perform(act(C, 5, 6, button=2, hold_ms=0), (10, 10))
    assert ex.held_keys == {key_id("w")} and ex.held_buttons == {1}
    ex.perform(act(M, 1, 2))
    assert len(ex.log) == 3 and ex.log[-1].action.type == M and ex.performed == 4  # bounded log
    ex.perform(act(K, key_action=KeyAction.RELEASE, key_id=key_id("w")))
    assert ex.held_keys == set()
    ex.perform(act(K, key_action=KeyAction.PRESS, key_id=key_id("shift")))
    assert ex.release_all() == ["shift", "left"]
    assert ex.release_all() == [] and ex.held_buttons == set()
    ex.remove_listener(seen.append)
    with ex:
        ex.perform(act(S, scroll_y=1))
    assert len(seen) == 6


def test_executor_interface_is_abstract():
    with pytest.raises(NotImplementedError):
        Executor().perform(act(M))


# -- pynput on a real Qt window --------------------------------------------------------------------
@pytest.fixture
def target(qtbot, own_display):
    from PyQt6.QtCore import QPoint, Qt
    from PyQt6.QtWidgets import QWidget

    class Target(QWidget):
        def __init__(self):
            super().__init__()
            self.events = []
            self.setWindowFlags(Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint)
            self.setGeometry(150, 120, 400, 300)
            self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        def mousePressEvent(self, e):
            self.events.append(("press", e.button().name, int(e.position().x()), int(e.position().y()), e.timestamp()))

        def mouseReleaseEvent(self, e):
            self.events.append(("release", e.button().name, int(e.position().x()), int(e.position().y()), e.timestamp()))

        def keyPressEvent(self, e):
            if not e.isAutoRepeat():
                self.events.append(("key_press", e.key(), e.text()))

        def keyReleaseEvent(self, e):
            if not e.isAutoRepeat():
                self.events.append(("key_release", e.key(), e.text()))

        def wheelEvent(self, e):
            self.events.append(("wheel", e.angleDelta().y(), int(e.position().x()), int(e.position().y())))

    w = Target()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.raise_()
    w.activateWindow()
    g = w.mapToGlobal(QPoint(0, 0))
    w.origin = (g.x(), g.y())
    return w


@pytest.fixture
def pynput_executor(own_display):
    from ilbot.agent.executors import PynputExecutor

    ex = PynputExecutor()
    yield ex
    ex.close()


@pytest.fixture
def xstate(own_display):
    from ilbot.safety.xstate import XInputState

    with XInputState() as xs:
        yield xs


def wait_events(qtbot, w, n, timeout=3000):
    qtbot.waitUntil(lambda: len(w.events) >= n, timeout=timeout)


def test_moves_and_clicks_land_at_window_relative_positions(qtbot, target, pynput_executor, xstate):
    ex, o = pynput_executor, target.origin
    ex.perform(act(M, 50, 60), o)
    assert xstate.pointer() == (o[0] + 50, o[1] + 60)
    ex.perform(act(C, 120.4, 70, button=1, hold_ms=400), o)
    assert xstate.buttons_down() == {1}  # still held when perform returns: it did not sleep through the hold
    wait_events(qtbot, target, 2)
    (p, b, x, y, t_press), (r, b2, x2, y2, t_rel) = target.events[:2]
    assert (p, b, x, y) == ("press", "LeftButton", 120, 70) and (r, b2, x2, y2) == ("release", "LeftButton", 120, 70)
    assert t_rel - t_press >= 390  # the X server's own timestamps (ms)
    assert xstate.buttons_down() == set() and ex.held_buttons == {}
    ex.perform(act(C, 10, 290, button=2, hold_ms=0), o)
    ex.perform(act(C, 399, 0, button=3, hold_ms=20), o)
    wait_events(qtbot, target, 6)
    assert [e[:4] for e in target.events[2:6]] == [("press", "RightButton", 10, 290), ("release", "RightButton", 10, 290),
                                                   ("press", "MiddleButton", 399, 0), ("release", "MiddleButton", 399, 0)]


def test_click_on_a_held_button_releases_it_first(qtbot, target, pynput_executor, xstate):
    ex, o = pynput_executor, target.origin
    ex.perform(act(C, 20, 20, button=1, hold_ms=5000), o)
    ex.perform(act(C, 30, 30, button=1, hold_ms=30), o)
    wait_events(qtbot, target, 4)
    assert [e[:2] for e in target.events] == [("press", "LeftButton"), ("release", "LeftButton")] * 2
    time.sleep(0.1)
    assert xstate.buttons_down() == set()


def test_keys_and_scrolls_reach_the_window(qtbot, target, pynput_executor, xstate):
    from PyQt6.QtCore import Qt

    ex, o = pynput_executor, target.origin
    ex.perform(act(M, 200, 150), o)  # focus follows the pointer without a window manager
    for name in ("a", "7", "period", "space", "f5", "left"):
        ex.perform(act(K, key_action=KeyAction.PRESS, key_id=key_id(name)), o)
        assert xstate.keycode(key_id(name)) in xstate.keys_down()
        ex.perform(act(K, key_action=KeyAction.RELEASE, key_id=key_id(name)), o)
    wait_events(qtbot, target, 12)
    keys = [(e[0], e[1]) for e in target.events if e[0].startswith("key")]
    expect = [Qt.Key.Key_A, Qt.Key.Key_7, Qt.Key.Key_Period, Qt.Key.Key_Space, Qt.Key.Key_F5, Qt.Key.Key_Left]
    assert keys == [(kind, int(k)) for k in expect for kind in ("key_press", "key_release")]
    ex.perform(act(S, 210, 160, scroll_y=1), o)
    ex.perform(act(S, 30, 40, scroll_y=2), o)
    qtbot.waitUntil(lambda: sum(e[0] == "wheel" for e in target.events) >= 2, timeout=3000)
    wheels = [e for e in target.events if e[0] == "wheel"]
    assert wheels == [("wheel", 120, 210, 160), ("wheel", -120, 30, 40)]
    assert xstate.keys_down() == set()


def test_release_all_lets_go_of_everything_on_the_server(qtbot, target, pynput_executor, xstate):
    ex, o = pynput_executor, target.origin
    ex.perform(act(M, 100, 100), o)
    for name in ("shift", "d"):
        ex.perform(act(K, key_action=KeyAction.PRESS, key_id=key_id(name)), o)
    ex.perform(act(C, 100, 100, button=2, hold_ms=10_000), o)
    assert len(xstate.keys_down()) == 2 and xstate.buttons_down() == {2}
    assert ex.release_all() == ["right", "d", "shift"]
    assert xstate.keys_down() == set() and xstate.buttons_down() == set()
    wait_events(qtbot, target, 6)
    assert sorted(e[0] for e in target.events) == ["key_press", "key_press", "key_release", "key_release",
                                                   "press", "release"]
    assert ex.release_all() == []


def test_bad_actions_are_refused(pynput_executor):
    from ilbot.agent.executors.pynput_exec import pynput_key

    with pytest.raises(ValueError, match="UNK"):
        pynput_key(0)
    with pytest.raises(ValueError, match="neither press"):
        pynput_executor.perform(act(K, key_action=0, key_id=key_id("a")))
    with pytest.raises(ValueError, match="unknown action type"):
        pynput_executor.perform(act(7))
    pynput_executor.close()
    with pytest.raises(RuntimeError, match="closed"):
        pynput_executor.perform(act(M, 1, 1))


def test_package_exports_lazily():
    import ilbot.agent.executors as executors

    with pytest.raises(AttributeError):
        executors.NoSuchExecutor


def test_click_and_scroll_at_the_pointer_do_not_warp_it(own_display, pynput_executor, xstate):
    """No zero-distance MOVE before a click or scroll where the pointer already is (an XTest warp
    to the pointer's own position reaches listeners as a motion event); elsewhere it still moves."""
    from pynput import mouse

    ex, o = pynput_executor, (100, 80)
    seen = []
    listener = mouse.Listener(on_move=lambda x, y, *_: seen.append(("move", x, y)),
                              on_click=lambda x, y, *_: seen.append(("click", x, y)),
                              on_scroll=lambda x, y, *_: seen.append(("scroll", x, y)))
    listener.start()
    listener.wait()
    time.sleep(0.3)  # the XRecord context is enabled a moment after the thread reports ready

    def wait_for(cond, timeout=3.0):
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cond(), seen

    try:
        ex.perform(act(M, 40, 50), o)
        wait_for(lambda: ("move", 140, 130) in seen)
        seen.clear()
        ex.perform(act(C, 40, 50, button=1, hold_ms=0), o)
        ex.perform(PlannedAction(EventType.SCROLL, 0.0, x=40, y=50, scroll_y=1), o)
        wait_for(lambda: any(e[0] == "scroll" for e in seen))
        time.sleep(0.1)
        assert [e[0] for e in seen] == ["click", "click", "scroll"]  # press, release, notch: no move
        seen.clear()
        ex.perform(act(C, 60, 70, button=1, hold_ms=0), o)  # elsewhere: it moves first
        wait_for(lambda: sum(e[0] == "click" for e in seen) == 2)
        assert seen[0] == ("move", 160, 150) and xstate.pointer() == (160, 150)
    finally:
        listener.stop()


# -- what is held, since when; releasing one thing -------------------------------------------------
def test_dry_run_held_and_release_one():
    ex = DryRunExecutor()
    t0 = time.monotonic_ns()
    ex.perform(act(K, key_action=KeyAction.PRESS, key_id=key_id("w")))
    ex.perform(act(C, button=1, hold_ms=10_000))
    ex.perform(act(C, button=2, hold_ms=0))
    held = ex.held()
    assert set(held) == {("key", key_id("w")), ("button", 1)} and all(t0 <= v <= time.monotonic_ns() for v in held.values())
    assert not ex.release(("key", key_id("w")), held[("key", key_id("w"))] + 1)  # another press: untouched
    assert ex.release(("key", key_id("w"))) and ex.held_keys == set()
    assert ex.release(("button", 1), held[("button", 1)]) and ex.held_buttons == set() and ex.held() == {}
    assert not ex.release(("button", 1)) and not ex.release(("key", key_id("w")))
    ex.perform(act(K, key_action=KeyAction.RELEASE, key_id=key_id("w")))  # a release of a free key: nothing
    assert ex.held() == {}


def test_pynput_held_release_one_and_never_a_key_it_did_not_press(own_display, pynput_executor, xstate):
    ex = pynput_executor
    ex.perform(act(K, key_action=KeyAction.PRESS, key_id=key_id("w")))
    ex.perform(act(C, 10, 10, button=3, hold_ms=60_000), (50, 50))
    held = ex.held()
    assert set(held) == {("key", key_id("w")), ("button", 3)}
    assert xstate.buttons_down() == {3} and xstate.keycode(key_id("w")) in xstate.keys_down()
    assert not ex.release(("button", 3), held[("button", 3)] - 1) and xstate.buttons_down() == {3}
    assert ex.release(("button", 3), held[("button", 3)]) and xstate.buttons_down() == set() and ex.held_buttons == {}
    assert ex.release(("key", key_id("w"))) and xstate.keys_down() == set() and ex.held() == {}
    assert not ex.release(("key", key_id("w")))
    # a key someone else holds: the executor's release of it sends nothing (it never pressed it)
    import subprocess

    subprocess.run(["xdotool", "keydown", "q"], check=True, timeout=10)
    try:
        ex.perform(act(K, key_action=KeyAction.RELEASE, key_id=key_id("q")))
        assert xstate.keycode(key_id("q")) in xstate.keys_down() and ex.release_all() == []
    finally:
        subprocess.run(["xdotool", "keyup", "q"], check=True, timeout=10)
    assert xstate.keys_down() == set()
    ex.close()
    assert ex.held() == {} and not ex.release(("key", key_id("w")))
