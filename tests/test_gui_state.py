"""The app always shows what the agent is doing, reads well, and keeps its settings: the state
badge for every state (window and overlay), the Mode radios following the run, the recording's
status (and its stop click left out of the session), a status bar whose texts never overlap,
settings across restarts, the safety dialog's per-field checks, menus, Ctrl+Q, tooltips and the
default size. Real windows, real runs on the in-app sandbox, real input under the test Xvfb."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PyQt6.QtCore import QRect
from PyQt6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QLabel, QLineEdit,
                             QMessageBox)

from ilbot.agent.assemble import Mode
from ilbot.agent.run import PAUSE_REASONS, RESUME_HINT, STOP_REASONS, describe_reason
from ilbot.gui.state_badge import COLOURS, badge_for, format_elapsed

from test_gui_app import tiny_model, write_session  # noqa: F401 - the shared tiny checkpoint fixture


@pytest.fixture
def sessions_dir(tmp_path):
    d = tmp_path / "sessions"
    d.mkdir()
    return d


def make_window(qtbot, sessions_dir, **kw):
    from ilbot.gui.main_window import MainWindow

    win = MainWindow(sessions_dir=sessions_dir, **kw)
    qtbot.addWidget(win)
    return win


@pytest.fixture
def window(qtbot, sessions_dir):
    win = make_window(qtbot, sessions_dir)
    win.show()
    yield win
    win.shutdown()


# ------------------------------------------------------------------------------------------ badge text
def test_badge_text_for_every_state():
    assert badge_for().text == "IDLE"
    assert badge_for(Mode.DRY_RUN, "running").text == "DRY RUN"
    assert badge_for(Mode.SANDBOX, "running").text == "SANDBOX"
    live = badge_for(Mode.LIVE, "running")
    assert live.text == "LIVE" and live.live and live.colour == COLOURS["live"]
    assert badge_for("dry_run", "running", kind="replay").text == "DRY RUN · replay"
    assert badge_for(Mode.SANDBOX, "waiting_for_state").text == "WAITING FOR GAME STATE (SANDBOX)"
    for reason, words in PAUSE_REASONS.items():
        b = badge_for(Mode.LIVE, "paused", reason)
        assert b.text == describe_reason("paused", reason) and words in b.text and RESUME_HINT in b.text
        assert b.text.startswith("PAUSED") and b.live and b.colour == COLOURS["paused"]
    for reason, words in STOP_REASONS.items():
        b = badge_for(Mode.LIVE, "stopped", reason)
        assert b.text == f"STOPPED: {words}" and not b.live
    rec = badge_for(recording=(75.4, 31))
    assert rec.text == "REC 1:15 · 31 events" and rec.colour == COLOURS["rec"]
    assert badge_for(recording=(3, 1)).text == "REC 0:03 · 1 event"
    assert badge_for(Mode.DRY_RUN, "running", recording=(12, 5)).text == "DRY RUN · REC 0:12"
    assert format_elapsed(3725) == "1:02:05"


# ------------------------------------------------------------------------------------------ a run
def test_a_run_shows_its_mode_then_paused_then_stopped(window, tiny_model, qtbot, own_display):
    """SANDBOX while it plays, PAUSED (why, how to resume) with no plan on the overlay, then
    STOPPED with idle figures; the window and the overlay show the same badge."""
    assert window.load_model(str(tiny_model))
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    window.set_mode("sandbox")
    assert window.start()
    qtbot.waitUntil(lambda: window.ticks_seen >= 2, timeout=20_000)
    assert window.state_badge.text() == "SANDBOX" and window.overlay.badge.text == "SANDBOX"
    assert window.sandbox_radio.isChecked()
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.run_state[0] == "paused", timeout=10_000)
    paused = describe_reason("paused", "user")
    assert window.state_badge.text() == paused and window.overlay.badge.text == paused
    assert "paused by you" in paused and "Resume (F6)" in paused
    assert window.overlay.actions == []
    window.on_plan(99, [_plan_action()], 600.0)  # a plan arriving late is not drawn
    assert window.overlay.actions == []
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.run_state[0] == "running", timeout=10_000)
    assert window.state_badge.text() == "SANDBOX"
    window.stop()
    qtbot.waitUntil(lambda: window.thread is None, timeout=10_000)
    assert window.state_badge.text() == f"STOPPED: {STOP_REASONS['user']}"
    assert window.overlay.actions == [] and window.overlay.badge.state == "stopped"
    assert (window.rate_label.text(), window.latency_label.text(), window.interventions_label.text()) == \
        ("– ticks/s", "plan – ms", "0 interventions")


def _plan_action():
    from ilbot.data.action import PlannedAction
    from ilbot.data.schema import EventType

    return PlannedAction(type=EventType.MOVE, t_ms=10, x=100, y=100, sigma_x=5, sigma_y=5)


def test_the_mode_radios_show_the_mode_that_runs(window, sessions_dir, qtbot, own_display):
    """Live checked, then a dry replay: the radios say Dry run while it runs (never Live)."""
    session = write_session(sessions_dir / "s.ilbot.sqlite", 30)
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    window.live_radio.setChecked(True)
    assert window.replay(str(session), live=False)
    qtbot.waitUntil(lambda: window.run_state[0] in ("running", "stopped"), timeout=10_000)
    assert window.dry_radio.isChecked() and not window.live_radio.isChecked()
    assert window.mode() == Mode.DRY_RUN
    qtbot.waitUntil(lambda: window.thread is None, timeout=20_000)
    assert window.dry_radio.isChecked()


def test_the_sandbox_mode_is_off_for_another_game_window(window):
    window.set_mode("sandbox")
    window.window_edit.setText("0,0,800,600")
    assert window.dry_radio.isChecked() and not window.sandbox_radio.isEnabled()
    window.window_edit.setText("sandbox")
    assert window.sandbox_radio.isEnabled()


# ------------------------------------------------------------------------------------------ recording
def test_recording_shows_rec_and_the_stop_click_is_not_recorded(window, qtbot, own_display):
    """While recording the badge says REC with the time and events and the status bar says
    recording; stopping with a real click on the app's button leaves that click out."""
    from pynput.mouse import Button, Controller

    from ilbot.data.store import open_session

    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    assert window.start_recording()
    game = window.game_window
    qtbot.waitExposed(game)
    window.move(game.width() + 6, 0)
    window.raise_()
    qtbot.waitExposed(window)
    assert window.overlay.isVisible() and window.overlay.badge.text.startswith("REC")
    origin = game.mapToGlobal(game.rect().topLeft())
    mouse = Controller()
    points = [(120, 140), (330, 260)]
    for x, y in points:
        mouse.position = (origin.x() + x, origin.y() + y)
        qtbot.wait(40)
        mouse.click(Button.left)
        qtbot.wait(60)
    qtbot.waitUntil(lambda: (window.recording_progress() or (0, 0))[1] >= 4, timeout=5_000)
    qtbot.wait(1100)  # the clock moves on
    text = window.state_badge.text()
    assert text.startswith("REC 0:0") and text.endswith("events") and text != "REC 0:00 · 0 events"
    assert window.overlay.badge.text.startswith("REC")
    assert window.state_label.text().startswith("recording: 0:0")
    # stop with the app's own button, pressed and released like a person would
    button = window.record_button
    centre = button.mapToGlobal(button.rect().center())
    assert centre.x() > game.width()  # on the app, not on the game
    mouse.position = (centre.x(), centre.y())
    qtbot.wait(80)
    mouse.press(Button.left)
    qtbot.wait(120)
    mouse.release(Button.left)
    qtbot.waitUntil(lambda: window.recorder is None, timeout=10_000)
    path = window.recording_path
    with open_session(path) as s:
        clicks = [(round(e.x), round(e.y)) for e in s.events() if e.button]
    assert clicks == points  # the click on "Stop recording" is not in the session
    assert window.state_badge.text() == "IDLE" and not window.overlay.isVisible()


# ------------------------------------------------------------------------------------------ status bar
def test_status_bar_texts_never_overlap(window, qtbot):
    from ilbot.gui.status_bar import ElidedLabel

    window.resize(window.minimumSizeHint().width(), window.height())
    window.show_error("safety limits not changed: safety.region: expected [x, y, width, height] with width, "
                      "height > 0, got (0.0, 0.0, -4.0, 300.0)")
    window.state_label.setText("agent " + describe_reason("paused", "human_override"))
    window.rate_label.setText("1234.56 ticks/s")
    window.latency_label.setText("plan 1234.5 ms")
    window.interventions_label.setText("12345 interventions")
    QApplication.processEvents()
    bar = window.statusBar()
    assert bar.currentMessage() == ""  # nothing draws a temporary message under the permanent labels
    labels = [w for w in bar.findChildren(QLabel) if w.isVisible()]
    assert len(labels) >= 5
    rects = [QRect(w.mapTo(bar, w.rect().topLeft()), w.size()) for w in labels]
    for i, a in enumerate(rects):
        assert a.width() > 0
        for b in rects[i + 1:]:
            assert not a.intersects(b), (a, b)
    for w in labels:
        if isinstance(w, ElidedLabel):
            shown = w.displayed_text()
            assert w.fontMetrics().horizontalAdvance(shown) <= w.contentsRect().width()
            assert shown == w.text() or shown.endswith("…")
        else:
            assert w.fontMetrics().horizontalAdvance(w.text()) <= w.contentsRect().width(), w.text()
    assert window.notice_label.text().startswith("error: safety limits not changed")
    assert "error: safety limits" in window.messages.toPlainText()


# ------------------------------------------------------------------------------------------ settings
def test_settings_persist_across_restarts(qtbot, sessions_dir, tiny_model, tmp_path):
    from ilbot.safety import SafetyConfig

    first = make_window(qtbot, sessions_dir)
    first.show()
    assert first.load_model(str(tiny_model))
    first.set_source(f"json-dir:{tmp_path}")
    first.window_edit.setText("10,20,300,200")
    limits = dataclasses.replace(SafetyConfig(), min_dt_ms=12.5, blocked_keys="caps_lock", region=(0.0, 0.0, 50.0, 60.0))
    first.set_safety_config(limits)
    first.tabs.setCurrentIndex([first.tabs.tabText(i) for i in range(first.tabs.count())].index("Sessions"))
    first.resize(first.minimumSizeHint().width() + 20, 640)
    first.splitter.setSizes([300, 200])
    QApplication.processEvents()
    size, split = first.size(), first.splitter.sizes()
    first.close()

    second = make_window(qtbot, sessions_dir)
    try:
        second.show()
        QApplication.processEvents()
        assert second.model_edit.text() == str(tiny_model)
        assert second.source_string() == f"json-dir:{tmp_path}"
        assert second.window_edit.text() == "10,20,300,200" and second.dry_radio.isChecked()
        assert second.safety_config == limits
        assert second.tabs.tabText(second.tabs.currentIndex()) == "Sessions"
        assert second.size() == size
        assert abs(second.splitter.sizes()[1] - split[1]) <= 2
    finally:
        second.shutdown()
    # a window that does not persist (screenshot and --ticks runs) neither reads nor writes them
    fresh = make_window(qtbot, sessions_dir, persist=False)
    assert fresh.model_edit.text() == "" and fresh.source_string() == "sandbox"
    fresh.window_edit.setText("1,2,3,4")
    fresh.shutdown()
    from ilbot.gui import persist

    assert persist.get("window") == "10,20,300,200"


def test_settings_live_where_the_tests_point_them(tmp_path):
    import os

    from ilbot.gui import persist

    assert os.environ[persist.ENV_DIR] and Path(persist.app_settings().fileName()).parent == Path(os.environ[persist.ENV_DIR])
    assert persist.ORGANISATION == persist.APPLICATION == "ilbot"


def test_damaged_saved_limits_are_ignored_with_a_message(qtbot, sessions_dir):
    from ilbot.gui import persist
    from ilbot.safety import SafetyConfig

    persist.put("safety", '{"tick_ms": -5, "renamed_limit": 1}')
    win = make_window(qtbot, sessions_dir)
    assert win.safety_config == SafetyConfig()
    assert "saved safety limits ignored" in win.messages.toPlainText()
    win.shutdown()


def test_safety_given_to_the_window_wins_over_saved_limits(qtbot, sessions_dir, tmp_path):
    from ilbot.gui import persist
    from ilbot.safety import SafetyConfig

    persist.save_safety(dataclasses.replace(SafetyConfig(), min_dt_ms=99.0))
    toml = tmp_path / "limits.toml"
    toml.write_text("[safety]\nmin_dt_ms = 7\nstale_ticks = 3\n")
    win = make_window(qtbot, sessions_dir, safety_config=SafetyConfig.from_toml(toml))
    assert win.safety_config.min_dt_ms == 7.0 and win.safety_config.stale_ticks == 3
    win.shutdown()


def test_app_safety_option_reads_the_file_and_bad_ones_are_one_line(tmp_path, capsys):
    from ilbot.gui import launch

    bad = tmp_path / "bad.toml"
    bad.write_text("[safety]\ntick_ms = -1\n")
    assert launch.main(["--headless", "--ticks", "1", "--safety", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "tick_ms" in err and len(err.splitlines()) == 1


def test_a_failed_load_keeps_the_loaded_model(window, tiny_model, tmp_path):
    assert window.load_model(str(tiny_model))
    ckpt, label = window.checkpoint, window.model_label.text()
    assert window.load_model(str(tmp_path / "does-not-exist")) is False
    assert window.checkpoint is ckpt and window.checkpoint_path == str(tiny_model)
    assert window.model_label.text() == label
    assert "no such checkpoint folder" in window.errors[-1] and f"still using {tiny_model}" in window.errors[-1]


# ------------------------------------------------------------------------------------------ safety dialog
def test_safety_dialog_checks_each_field_where_it_stands(window, qtbot):
    from ilbot.gui.settings import SafetySettingsDialog, format_number

    dlg = SafetySettingsDialog(window.safety_config, window)
    qtbot.addWidget(dlg)
    dlg.show()
    e = dlg.editors
    assert e["min_dt_ms"].text() == "8" and e["max_hold_ms"].text() == "2000"  # not 8.000
    assert format_number(0.5) == "0.5" and format_number(12.25) == "12.25" and format_number(600.0) == "600"
    keys = e["blocked_keys"]
    assert keys.width() >= keys.fontMetrics().horizontalAdvance(keys.text())  # the whole list shows
    # a good edit, then two bad fields: each marked red with its own message, the good edit kept
    e["min_dt_ms"].setValue(20)
    e["tick_ms"].setValue(0)
    e["blocked_keys"].setText("caps_lock, not_a_key")
    dlg.accept()
    assert dlg.isVisible() and dlg.result() != dlg.DialogCode.Accepted  # OK does not close it
    assert set(dlg.errors) == {"tick_ms", "blocked_keys"}
    assert "longer than 0 ms" in dlg.error_labels["tick_ms"].text() and dlg.error_labels["tick_ms"].isVisible()
    assert "not_a_key" in dlg.error_labels["blocked_keys"].text()
    assert "255,225,225" in e["tick_ms"].styleSheet() and e["min_dt_ms"].styleSheet() == ""
    assert not dlg.error_labels["min_dt_ms"].isVisible()
    assert e["min_dt_ms"].value() == 20 and e["blocked_keys"].text() == "caps_lock, not_a_key"
    # fixing a field clears its mark as it is edited; then OK closes with every edit
    e["tick_ms"].setValue(450)
    assert "tick_ms" not in dlg.errors and not dlg.error_labels["tick_ms"].isVisible()
    e["blocked_keys"].setText("caps_lock, num_lock")
    dlg.accept()
    assert dlg.result() == dlg.DialogCode.Accepted
    assert window.apply_settings(dlg)
    assert (window.safety_config.min_dt_ms, window.safety_config.tick_ms) == (20.0, 450.0)
    assert window.safety_config.blocked_keys == "caps_lock, num_lock"


# ------------------------------------------------------------------------------------------ menus, keys, tooltips, size
def test_ctrl_q_quits_and_stops_everything(qtbot, sessions_dir, own_display):
    from pynput.keyboard import Controller, Key

    win = make_window(qtbot, sessions_dir)
    win.show()
    win.raise_()
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5_000)
    win.ensure_sandbox()  # something to stop: the in-app game
    win.activateWindow()
    keyboard = Controller()
    with keyboard.pressed(Key.ctrl):
        keyboard.tap("q")
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=5_000)
    assert win.sandbox is None  # shut down on the way out


def test_file_and_help_menus(window, qtbot):
    from ilbot import __version__

    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles[0] == "File" and titles[-1] == "Help" and "Settings" in titles
    quit_action = window.menu_actions["quit"]
    assert quit_action.shortcut().toString() == "Ctrl+Q"
    window.menu_actions["shortcuts"].trigger()
    box = window.help_box
    assert isinstance(box, QMessageBox) and "F12" in box.text() and "Ctrl+Q" in box.text() and "F5" in box.text()
    box.close()
    window.menu_actions["about"].trigger()
    assert __version__ in window.help_box.text() and "terms of service" in window.help_box.text()
    window.help_box.close()


def test_every_control_has_a_tooltip(window):
    controls = [w for root in (window.controls, window.panels, window.state_badge)
                for w in [root, *root.findChildren(QLabel), *root.findChildren(QAbstractButton),
                          *root.findChildren(QLineEdit), *root.findChildren(QComboBox),
                          *root.findChildren(QAbstractSpinBox)]
                if isinstance(w, (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox)) and w.isVisible()]
    controls += [window.state_badge, window.messages, window.panels.probs, window.panels.quantiles,
                 window.panels.recent, window.panels.interventions]
    assert len(controls) >= 14
    missing = [f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}" for w in controls if not w.toolTip()]
    assert not missing, missing
    assert all(window.tabs.tabToolTip(i) for i in range(window.tabs.count()))
    status = [window.state_label, window.rate_label, window.latency_label, window.interventions_label, window.notice_label]
    assert all(w.toolTip() for w in status)


def test_default_size_shows_every_panel(qtbot, sessions_dir):
    from ilbot.gui.main_window import DEFAULT_SIZE, MESSAGE_LINES
    from ilbot.gui.panels import MIN_ROWS, ROW_PX

    win = make_window(qtbot, sessions_dir, persist=False)
    free = win.screen().availableGeometry()
    w, h = win.default_size()
    assert (w, h) == (min(DEFAULT_SIZE[0], free.width()), min(DEFAULT_SIZE[1], free.height()))
    assert w >= 470 and h <= free.height()
    win.resize(*DEFAULT_SIZE)  # the default on a screen with room for it
    win.show()
    QApplication.processEvents()
    live = win.tabs.area(0)
    assert live.verticalScrollBar().maximum() == 0  # the Live tab needs no scrolling
    assert win.panels.quantiles.table.viewport().height() >= MIN_ROWS * ROW_PX
    assert win.messages.viewport().height() >= MESSAGE_LINES * win.messages.fontMetrics().lineSpacing()
    assert win.panels.recent.list.viewport().height() >= 3 * win.panels.recent.list.fontMetrics().lineSpacing()
    assert win.model_label.wordWrap()
    for panel in (win.panels.probs, win.panels.quantiles, win.panels.recent, win.panels.interventions, win.controls):
        assert panel.isVisible() and panel.height() >= panel.minimumSizeHint().height()
    win.shutdown()
