"""Replay under Xvfb with real pynput: record input into a Qt window, then replay it live into the
same window moved elsewhere; the window must receive the same clicks and keys, in the same order,
at the same window-relative positions (±1 px), with median timing error ≤ 15 ms."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import threading
import time

import json

import pytest

from ilbot.data.keys import key_id
from ilbot.data.schema import Button, EventType, KeyAction
from ilbot.data.store import SessionWriter, open_session
from ilbot.data.schema import Event

MS = 1_000_000

pytestmark = pytest.mark.xvfb


class TargetWindow:
    """A plain Qt window that logs every mouse press/release and key press/release it receives,
    with the time it arrived (monotonic ms; the event loop is pumped every 0.5 ms; Qt reports no
    X timestamp for XTest key events) and the window-relative position."""

    def __init__(self, qapp, x: int, y: int, w: int = 400, h: int = 300):
        from PyQt6.QtCore import Qt
        from PyQt6.QtWidgets import QWidget

        log = self.log = []

        class W(QWidget):
            def mousePressEvent(self, e):
                p = e.position()
                log.append(("press", e.button().value, round(p.x()), round(p.y()), time.monotonic_ns() / 1e6))

            def mouseReleaseEvent(self, e):
                p = e.position()
                log.append(("release", e.button().value, round(p.x()), round(p.y()), time.monotonic_ns() / 1e6))

            def keyPressEvent(self, e):
                if not e.isAutoRepeat():
                    log.append(("key_press", e.text(), 0, 0, time.monotonic_ns() / 1e6))

            def keyReleaseEvent(self, e):
                if not e.isAutoRepeat():
                    log.append(("key_release", e.text(), 0, 0, time.monotonic_ns() / 1e6))

        self.qapp = qapp
        self.w = W()
        self.w.setWindowFlags(Qt.WindowType.FramelessWindowHint | Qt.WindowType.X11BypassWindowManagerHint)
        self.w.setWindowTitle("ilbot replay target")
        self.w.setGeometry(x, y, w, h)
        self.w.show()
        self.pump(0.3)
        self.w.raise_()
        self.w.activateWindow()
        self.pump(0.2)

    def move(self, x: int, y: int) -> None:
        self.w.move(x, y)
        self.pump(0.3)
        self.w.activateWindow()
        self.pump(0.1)

    def geometry(self):
        from ilbot.agent.window import WindowGeometry

        g = self.w.mapToGlobal(self.w.rect().topLeft())
        return WindowGeometry(g.x(), g.y(), self.w.width(), self.w.height(), "target")

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.qapp.processEvents()
            time.sleep(0.001)

    def pump_while(self, thread: threading.Thread, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while thread.is_alive() and time.monotonic() < end:
            self.qapp.processEvents()
            time.sleep(0.0005)
        self.pump(0.3)

    def close(self):
        self.w.close()
        self.pump(0.1)


def _inject(geo, script):
    """Perform `script` [(delay_s, kind, args)], window-relative: the mouse with pynput, keys with
    xdotool in another process (pynput's keyboard Controller hands keys to listeners in its own
    process directly, and depending on the keymap state may not go through XTest at all, so a
    recorder in this process would not see them as a person's keys)."""
    from pynput import mouse

    m = mouse.Controller()
    buttons = {1: mouse.Button.left, 2: mouse.Button.right}
    t0 = time.monotonic()
    for at, kind, args in script:
        while time.monotonic() < t0 + at:
            time.sleep(0.0005)
        if kind == "move":
            m.position = (geo.x + args[0], geo.y + args[1])
        elif kind == "press":
            m.position = (geo.x + args[1], geo.y + args[2])
            m.press(buttons[args[0]])
        elif kind == "release":
            m.release(buttons[args[0]])
        elif kind == "kpress":
            subprocess.run(["xdotool", "keydown", args[0]], check=True)
        elif kind == "krelease":
            subprocess.run(["xdotool", "keyup", args[0]], check=True)


SCRIPT = [  # (time s, kind, args): moves, left/right clicks with holds, typed keys
    (0.00, "move", (20, 20)), (0.05, "move", (60, 40)), (0.10, "move", (100, 80)),
    (0.15, "press", (1, 100, 80)), (0.26, "release", (1,)),
    (0.40, "kpress", ("a",)), (0.48, "krelease", ("a",)),
    (0.55, "move", (200, 150)), (0.60, "press", (2, 210, 160)), (0.72, "release", (2,)),
    (0.85, "kpress", ("s",)), (0.92, "krelease", ("s",)),
    (1.00, "kpress", ("d",)), (1.06, "krelease", ("d",)),
    (1.20, "press", (1, 333, 222)), (1.30, "release", (1,)),
    (1.45, "move", (5, 290)), (1.50, "press", (1, 5, 290)), (1.61, "release", (1,)),
]


def _interesting(log):
    return [e for e in log if e[0] in ("press", "release", "key_press", "key_release")]


def _replay_into(target, session_path, geo, speed=1.0):
    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.replay import SessionReplay

    target.log.clear()
    ex = PynputExecutor()
    rp = SessionReplay(session_path, ex, window=geo, speed=speed)
    out = {}
    th = threading.Thread(target=lambda: out.update(rp.run()))
    th.start()
    target.pump_while(th)
    th.join()
    ex.close()
    return out, _interesting(target.log)


def _timing_errors_ms(received, expected_ms):
    """Per event: (received - first received) - (expected - first expected), ms."""
    r0, e0 = received[0][4], expected_ms[0]
    return [abs((r[4] - r0) - (e - e0)) for r, e in zip(received, expected_ms)]


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool (the person's keyboard) is absent")
def test_record_then_replay_live_into_qt_window(own_display, qapp, tmp_path):
    from ilbot.agent.recorder import Recorder

    target = TargetWindow(qapp, 100, 100)
    geo = target.geometry()
    out = tmp_path / "s.ilbot.sqlite"
    rec = Recorder(out, geo)
    rec.start()
    th = threading.Thread(target=_inject, args=(geo, SCRIPT))
    th.start()
    target.pump_while(th)
    rec.stop()
    recorded_log = _interesting(target.log)
    assert len(recorded_log) == 14, "\n".join(map(str, recorded_log))  # 4 clicks x2 + 3 keys x2

    with open_session(out) as s:
        events = [e for e in s.events() if e.type in (EventType.CLICK, EventType.KEY)]
    assert [e.type for e in events].count(EventType.CLICK) == 4

    target.move(420, 310)  # replay into the window at another place: origin must be applied
    geo2 = target.geometry()
    assert (geo2.x, geo2.y) != (geo.x, geo.y)
    summary, replayed = _replay_into(target, out, geo2)
    assert summary["performed"] >= 8

    # same kinds, buttons/keys, order, window-relative positions (±1 px)
    assert [(e[0], e[1]) for e in replayed] == [(e[0], e[1]) for e in recorded_log]
    for a, b in zip(replayed, recorded_log):
        assert abs(a[2] - b[2]) <= 1 and abs(a[3] - b[3]) <= 1, (a, b)

    # timing: press events (clicks and keys) vs the recorded session's times
    pressed = [e for e in replayed if e[0] in ("press", "key_press")]
    expected = [e.t_ns / 1e6 for e in events if not (e.type == EventType.KEY and e.key_action == KeyAction.RELEASE)]
    errors = _timing_errors_ms(pressed, expected)
    print(f"replay timing error: median {statistics.median(errors):.2f} ms, max {max(errors):.2f} ms over {len(errors)}")
    assert statistics.median(errors) <= 15.0, errors


def test_replay_written_session_at_double_speed(own_display, qapp, tmp_path):
    """A session written with SessionWriter (no recorder) replays at 2x: times halve."""
    target = TargetWindow(qapp, 50, 60)
    geo = target.geometry()
    path = tmp_path / "w.ilbot.sqlite"
    ms = 1_000_000
    evs = [
        Event.make(100 * ms, 30, 40, button=Button.LEFT, hold_ms=80),
        Event.make(400 * ms, 31, 41, key_action=KeyAction.PRESS, key_id=key_id("q")),
        Event.make(480 * ms, 31, 41, key_action=KeyAction.RELEASE, key_id=key_id("q")),
        Event.make(700 * ms, 250, 199, button=Button.RIGHT, hold_ms=100),
        Event.make(1100 * ms, 399, 299, button=Button.LEFT, hold_ms=60),
    ]
    with SessionWriter(path, {"window": geo.as_dict(), "hold_ms": {"median": 80}}) as w:
        for e in evs:
            w.add_event(e)
    summary, got = _replay_into(target, path, geo, speed=2.0)
    assert [(e[0], e[1]) for e in got] == [("press", 1), ("release", 1), ("key_press", "q"), ("key_release", "q"),
                                           ("press", 2), ("release", 2), ("press", 1), ("release", 1)]
    presses = [e for e in got if e[0] in ("press", "key_press")]
    assert [(e[2], e[3]) for e in presses if e[0] == "press"] == [(30, 40), (250, 199), (399, 299)]
    errors = _timing_errors_ms(presses, [100 / 2, 400 / 2, 700 / 2, 1100 / 2])
    assert statistics.median(errors) <= 15.0, errors
    assert summary["speed"] == 2.0 and summary["interventions"].get("out_of_bounds", 0) == 0
    target.close()


def test_kill_switch_stops_a_live_replay_and_releases(own_display, qapp, tmp_path):
    from pynput.keyboard import Controller, Key

    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.replay import SessionReplay

    path = tmp_path / "k.ilbot.sqlite"
    evs = [Event.make(0, 10, 10, key_action=KeyAction.PRESS, key_id=key_id("shift"))]
    evs += [Event.make(i * 100 * MS, 10 + i, 10) for i in range(1, 80)]  # 8 s of moves, shift held
    with SessionWriter(path, {"window": {"x": 0, "y": 0, "width": 640, "height": 480}}) as w:
        for e in evs:
            w.add_event(e)
    ex = PynputExecutor()
    rp = SessionReplay(path, ex, live=True, kill_hotkey="f12")
    out = {}
    th = threading.Thread(target=lambda: out.update(rp.run()))
    th.start()
    time.sleep(0.6)
    assert ex.held_keys  # shift is down
    kb = Controller()
    kb.press(Key.f12)
    kb.release(Key.f12)
    th.join(5)
    assert not th.is_alive() and out["stopped_early"] and out["state"] == "stopped"
    assert out["reason"] == "kill_switch" and not ex.held_keys
    from Xlib import display

    d = display.Display()
    time.sleep(0.1)
    assert not any(d.query_keymap())  # nothing held on the X server
    d.close()
    ex.close()


def test_cli_replay_live_with_consent(own_display, qapp, tmp_path, capsys):
    from ilbot.cli import main as cli_main

    target = TargetWindow(qapp, 200, 150)
    geo = target.geometry()
    path = tmp_path / "c.ilbot.sqlite"
    with SessionWriter(path, {"window": {"x": 0, "y": 0, "width": 400, "height": 300}}) as w:
        w.add_event(Event.make(10 * MS, 40, 50, button=Button.LEFT, hold_ms=30))
        w.add_event(Event.make(200 * MS, 41, 51, key_action=KeyAction.PRESS, key_id=key_id("z")))
        w.add_event(Event.make(260 * MS, 41, 51, key_action=KeyAction.RELEASE, key_id=key_id("z")))
    region = f"{geo.x},{geo.y},{geo.width},{geo.height}"
    assert cli_main(["replay", str(path), "--live", "--i-understand", "--window", region, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "live" and summary["performed"] == 3
    target.pump(0.3)  # the window handles the queued X events now
    # (the kill switch's listener-stop nudge, a key with no symbol, reaches the window as an empty key)
    got = [e for e in _interesting(target.log) if not (e[0].startswith("key") and e[1] == "")]
    assert [(e[0], e[1]) for e in got] == [("press", 1), ("release", 1), ("key_press", "z"), ("key_release", "z")]
    assert (got[0][2], got[0][3]) == (40, 50)
    target.close()


@pytest.mark.skipif(shutil.which("xdotool") is None, reason="xdotool (the 'human' in another process) is absent")
def test_live_replay_pauses_when_the_person_moves_the_mouse(own_display, qapp, tmp_path):
    """The same supervision as the agent's: the person's pointer motion pauses a live replay,
    the replay's own motion never does, and resume goes on."""
    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.agent.replay import SessionReplay

    path = tmp_path / "o.ilbot.sqlite"
    evs = [Event.make(i * 50 * MS, 20 + i, 20 + i) for i in range(80)]  # 4 s of moves inside the window
    with SessionWriter(path, {"window": {"x": 100, "y": 100, "width": 400, "height": 300}}) as w:
        for e in evs:
            w.add_event(e)
    ex = PynputExecutor()
    rp = SessionReplay(path, ex, live=True)
    states = []
    rp.on_state.append(lambda st, r: states.append((st, r)))
    th = threading.Thread(target=rp.run)
    th.start()
    time.sleep(0.8)
    assert rp.running and rp.executor.performed > 3  # its own moves did not count as the person's
    subprocess.run(["xdotool", "mousemove", "900", "700"], check=True)
    time.sleep(0.4)
    assert rp.paused and rp.pause_reason == "human_override"
    time.sleep(0.4)  # the person is still now: resume goes on
    rp.resume()
    time.sleep(0.3)
    assert rp.running
    rp.stop()
    th.join(5)
    assert ("paused", "human_override") in states and states[-1] == ("stopped", "user")
    ex.close()
