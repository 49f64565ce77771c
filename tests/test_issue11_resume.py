"""Resume after a human-override pause, in live mode, the way a person does it: with the app's
Resume button (a real click, so the pointer moves to the button first) and with F6 (a real key
press), under the test's own Xvfb. The run goes back to `running` once the person has left the
pointer alone, and stays there while the agent moves the pointer itself. A live replay resumed
the same way resumes too, also when the click that resumes it is the person's last motion."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from PyQt6.QtCore import QPoint
from PyQt6.QtWidgets import QMessageBox

from test_gui_app import answer_next_dialog, sessions_dir, tiny_model, window  # noqa: F401 - fixtures

pytestmark = pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool plays the person")


def _xdo(*args) -> None:
    subprocess.run(["xdotool", *map(str, args)], check=True)


def _take_over(window, qtbot, run) -> None:
    """The person moves the pointer to the game corner farthest from the agent's pointer."""
    qtbot.waitUntil(lambda: window.run_state[0] == "running" and run().executor.pointer is not None,
                    timeout=30_000)
    g = window.game_window
    tl = g.mapToGlobal(g.rect().topLeft())
    ax, ay = run().executor.pointer
    corners = [(tl.x() + dx, tl.y() + dy) for dx in (20, 780) for dy in (20, 580)]
    far = max(corners, key=lambda c: (c[0] - ax) ** 2 + (c[1] - ay) ** 2)
    _xdo("mousemove", far[0], far[1])
    qtbot.waitUntil(lambda: window.run_state == ("paused", "human_override"), timeout=10_000)


def _window_at(x: int, y: int) -> int:
    out = subprocess.run(["xdotool", "mousemove", str(x), str(y), "getmouselocation", "--shell"], check=True,
                         capture_output=True, text=True).stdout
    return int(dict(line.split("=", 1) for line in out.split())["WINDOW"])


def _raise_under(window, qtbot, button):
    """The app's window on top (there is no window manager) and `button`'s centre on the screen,
    checked with the X server: the window under that point is the app's."""
    window.raise_()
    qtbot.wait(100)
    out = subprocess.run(["xdotool", "getwindowgeometry", "--shell", str(int(window.winId()))], check=True,
                         capture_output=True, text=True).stdout
    geo = dict(line.split("=", 1) for line in out.split())
    c = button.mapTo(window, button.rect().center()) + QPoint(int(geo["X"]), int(geo["Y"]))
    qtbot.waitUntil(lambda: _window_at(c.x(), c.y()) == int(window.winId()), timeout=5_000)
    return c


def _stays_running(window, qtbot, run, overrides_before: int, seconds: float = 2.5) -> None:
    qtbot.waitUntil(lambda: window.run_state[0] == "running", timeout=10_000)
    performed = run().counters["performed"]
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:  # the person is still; the agent plays on
        qtbot.wait(100)
        assert window.run_state[0] == "running", (window.run_state, run().counters["pauses"])
    assert run().pauses.get("human_override", 0) == overrides_before
    assert run().counters["performed"] > performed  # its own input meanwhile never counted as the person's


def test_resume_by_button_and_by_f6_after_a_human_override_stays_resumed(window, tiny_model, qtbot,  # noqa: F811
                                                                          own_display):
    assert window.load_model(str(tiny_model))
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    window.set_mode("live")
    answer_next_dialog(QMessageBox.StandardButton.Yes)  # the live confirmation
    assert window.start() is True
    run = lambda: window.thread.runtime  # noqa: E731
    try:
        # 1. the Resume button, clicked with the real pointer (the hand that resumes moves)
        _take_over(window, qtbot, run)
        assert window.pause_button.text() == "Resume (F6)"
        c = _raise_under(window, qtbot, window.pause_button)
        _xdo("mousemove", c.x(), c.y(), "click", "1")
        _stays_running(window, qtbot, run, overrides_before=1)
        # 2. F6, pressed on the keyboard while the app has the focus
        _take_over(window, qtbot, run)
        window.raise_()
        window.activateWindow()
        qtbot.wait(200)
        _xdo("key", "F6")
        _stays_running(window, qtbot, run, overrides_before=2)
    finally:
        window.stop()
        qtbot.waitUntil(lambda: not window.running, timeout=10_000)


def test_live_replay_resumed_by_a_moving_hand_resumes_once_it_is_still(own_display, qapp, tmp_path):
    """A live replay paused by the person's motion, resumed while their hand still moves (as it
    does on its way to the Resume button): it resumes as soon as they leave the pointer alone,
    and its own motion afterwards never pauses it again."""
    import threading

    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.replay import SessionReplay
    from ilbot.data.schema import Event
    from ilbot.data.store import SessionWriter

    path = tmp_path / "moves.ilbot.sqlite"
    with SessionWriter(path, {"window": {"x": 100, "y": 100, "width": 400, "height": 300}}) as w:
        for i in range(160):  # 8 s of moves inside the window
            w.add_event(Event.make(i * 50_000_000, 20 + i, 20 + i // 2))
    ex = PynputExecutor()
    rp = SessionReplay(path, ex, live=True)
    states = []
    rp.on_state.append(lambda st, r: states.append((st, r)))
    th = threading.Thread(target=rp.run)
    th.start()
    try:
        deadline = time.monotonic() + 5
        while not (rp.running and rp.executor.performed > 3) and time.monotonic() < deadline:
            time.sleep(0.02)
        _xdo("mousemove", 900, 700)  # the person takes over
        deadline = time.monotonic() + 3
        while not rp.paused and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rp.pause_reason == "human_override", states
        _xdo("mousemove", 950, 720)  # the hand moves on, to Resume
        rp.resume()
        assert rp.paused  # not while the hand still moves
        deadline = time.monotonic() + 3
        while not rp.running and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rp.running, states
        performed = rp.executor.performed
        time.sleep(1.5)  # the person is still; the replay moves the pointer itself
        assert rp.running and rp.executor.performed > performed, states
        assert states.count(("paused", "human_override")) == 1, states
    finally:
        rp.stop()
        th.join(5)
        ex.close()
