"""Closing the game window the way a window manager's close button does (a WM_DELETE_WINDOW
message through the X server, under the test's own Xvfb) stops the run (`window_closed`) in
every execution mode, clears the overlay, and a new Start reopens the game, which ticks again
while the agent plays it without pausing on stale state. Outside the app, a game window found by
title that goes away stops `ilbot play` the same way."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PyQt6.QtWidgets import QMessageBox

from test_gui_app import answer_next_dialog, sessions_dir, tiny_model, window  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]


def wm_close(widget) -> None:
    """Send WM_DELETE_WINDOW to a top-level window, as a window manager's close button does."""
    from Xlib import X, display
    from Xlib.protocol import event

    d = display.Display()
    try:
        win = d.create_resource_object("window", int(widget.winId()))
        protocols, delete = d.intern_atom("WM_PROTOCOLS"), d.intern_atom("WM_DELETE_WINDOW")
        ev = event.ClientMessage(window=win, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0]))
        win.send_event(ev, event_mask=X.NoEventMask)
        d.sync()
    finally:
        d.close()


@pytest.mark.parametrize("mode", ["dry_run", "live"])
def test_wm_close_stops_the_run_clears_the_overlay_and_start_works_again(window, tiny_model, qtbot,  # noqa: F811
                                                                         own_display, mode):
    assert window.load_model(str(tiny_model))
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    window.set_mode(mode)
    for attempt in range(2):
        if mode == "live":
            answer_next_dialog(QMessageBox.StandardButton.Yes)  # the live confirmation, each Start
        assert window.start() is True
        qtbot.waitUntil(lambda: window.ticks_seen >= 2 and window.run_state[0] == "running", timeout=30_000)
        if attempt == 1:
            break
        game = window.game_window
        qtbot.waitUntil(lambda: bool(window.overlay.actions) or window.ticks_seen >= 4, timeout=10_000)
        wm_close(game)
        qtbot.waitUntil(lambda: not window.running, timeout=10_000)
        assert window.last_summary["reason"] == "window_closed", window.last_summary
        assert not game.isVisible()
        qtbot.wait(1500)  # two more game ticks' worth of time: nothing is drawn for the closed game
        assert window.overlay.actions == [] and not window.overlay.isVisible()
        tick = window.sandbox.game.tick_index
    # the second Start: the game is open again and ticks, and the agent plays it
    qtbot.waitUntil(lambda: window.sandbox.game.tick_index >= tick + 4, timeout=20_000)
    assert window.game_window.isVisible() and window.running and window.run_state[0] == "running"
    qtbot.waitUntil(lambda: window.overlay.isVisible() and bool(window.overlay.actions), timeout=10_000)
    assert not window.thread.runtime.pauses.get("stale_state"), window.thread.runtime.pauses
    window.stop()
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)


def test_play_stops_when_the_game_window_found_by_title_closes(own_display, tmp_path):
    """`ilbot play --window TITLE` on the sandbox game in another process: the game's window is
    destroyed, the run stops within a second or so with one line saying why, exit status 0."""
    env = dict(os.environ, ILBOT_SANDBOX_STATE=str(tmp_path / "state"))
    game = subprocess.Popen([sys.executable, "-m", "ilbot.cli", "sandbox", "--state-dir", str(tmp_path / "state")],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        wid = ""
        while not wid and time.monotonic() < deadline:
            wid = subprocess.run(["xdotool", "search", "--name", "^ilbot sandbox$"], capture_output=True,
                                 text=True).stdout.strip()
            time.sleep(0.2)
        assert wid, "the sandbox window never appeared"
        play = subprocess.Popen([sys.executable, "-m", "ilbot.cli", "play", "--source", f"sandbox:{tmp_path / 'state'}",
                                 "--window", "ilbot sandbox"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            seen = []
            for line in play.stderr:
                seen.append(line)
                if line.lstrip().startswith("tick "):  # it plays (a progress line every 2 s)
                    break
            subprocess.run(["xdotool", "windowclose", wid.split()[0]], check=True)
            t0 = time.monotonic()
            stdout, stderr = play.communicate(timeout=15)
            took = time.monotonic() - t0
        finally:
            play.kill()
        out = "".join(seen) + stderr + stdout
        assert play.returncode == 0 and "stopped: the game window closed" in out, out
        assert "Traceback" not in out and took < 5, (took, out)
    finally:
        game.kill()
        game.wait()
