"""The main window's flows with the real parts underneath: model loading, sources, errors in
the window, safety settings, the session list, and (tests at the end) dry runs, recording and
replay with the real agent runtime."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication, QMessageBox

from ilbot.data.schema import Event
from ilbot.data.store import SessionWriter


# ------------------------------------------------------------------------------------------ helpers
def answer_next_dialog(button=QMessageBox.StandardButton.Yes, delay_ms: int = 50) -> list:
    """Click `button` on the next modal message box (a real click on the real dialog)."""
    seen = []

    def poll():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            seen.append(box.text())
            box.button(button).click()
        else:
            QTimer.singleShot(delay_ms, poll)

    QTimer.singleShot(delay_ms, poll)
    return seen


def write_session(path: Path, n: int = 5) -> Path:
    with SessionWriter(path, {"source": "test", "window": {"x": 0, "y": 0, "width": 800, "height": 600}}) as w:
        for i in range(n):
            w.add_event(Event.make(i * 20_000_000, 100 + i, 100, button=1 if i == 2 else 0, hold_ms=50 if i == 2 else 0))
    return path


@pytest.fixture
def sessions_dir(tmp_path):
    d = tmp_path / "sessions"
    d.mkdir()
    return d


@pytest.fixture
def window(qtbot, sessions_dir):
    from ilbot.gui.main_window import MainWindow

    win = MainWindow(sessions_dir=sessions_dir)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.shutdown()


# ------------------------------------------------------------------------------------------ errors
def test_bad_checkpoint_shows_an_error_and_the_app_keeps_running(window, tmp_path):
    bad = tmp_path / "bad_ckpt"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    (bad / "model.safetensors").write_bytes(b"garbage")
    assert window.load_model(str(bad)) is False
    assert window.errors and str(bad) in window.errors[-1]
    assert "error:" in window.messages.toPlainText()
    assert window.checkpoint is None and window.model_label.text() == "no model loaded"
    # a missing folder and an empty field are errors too, and start refuses without a model
    assert window.load_model(str(tmp_path / "nowhere")) is False
    assert "no such checkpoint folder" in window.errors[-1]
    window.model_edit.setText("")
    assert window.start() is False
    assert "no model chosen" in window.errors[-1]
    assert window.isVisible() and not window.running
    assert window.start_button.isEnabled()


def test_sources_are_chosen_by_name_and_argument(window):
    window.set_source("json-dir:/tmp/state")
    assert window.source_combo.currentText() == "json-dir" and window.source_string() == "json-dir:/tmp/state"
    window.set_source("http")
    assert window.source_string() == "http"
    window.set_source("replay:/x/s.ilbot.sqlite")
    assert window.source_string() == "replay:/x/s.ilbot.sqlite"
    window.set_source("screen")
    assert window.source_string() == "screen"
    window.set_source("sandbox:/tmp/elsewhere")
    assert window.source_string() == "sandbox:/tmp/elsewhere"
    window.set_source("screen")
    window.set_source("carrier-pigeon")
    assert "unknown source" in window.errors[-1]
    assert window.source_string() == "screen"


def test_a_bad_game_window_shows_an_error(window, own_display):
    window.window_edit.setText("no window has this title 12345")
    with pytest.raises(Exception):
        window.game_rect()
    assert window.start_recording() is False
    assert "no visible window" in window.errors[-1]
    window.window_edit.setText("10,20,300,200")
    r = window.game_rect()
    assert (r.x(), r.y(), r.width(), r.height()) == (10, 20, 300, 200)


# ------------------------------------------------------------------------------------------ settings
def test_safety_settings_dialog_edits_every_limit(window, qtbot):

    from ilbot.gui.settings import SafetySettingsDialog
    from ilbot.safety import SafetyConfig

    dlg = SafetySettingsDialog(window.safety_config, window)
    qtbot.addWidget(dlg)
    assert {"min_dt_ms", "cooldown_ms", "max_per_s", "region", "stale_ticks"} <= set(dlg.editors)
    dlg.editors["min_dt_ms"].setValue(25.0)
    dlg.editors["cooldown_ms"].editors["CLICK"].setValue(150.0)
    dlg.editors["stale_ticks"].setValue(9)
    dlg.editors["region"].setText("0, 0, 400, 300")
    new = dlg.values()
    assert isinstance(new, SafetyConfig)
    assert new.min_dt_ms == 25.0 and new.cooldown_ms["CLICK"] == 150.0 and new.stale_ticks == 9
    assert new.region == (0.0, 0.0, 400.0, 300.0)
    assert window.apply_settings(dlg) and window.safety_config.min_dt_ms == 25.0
    # a bad value is refused with the config's own message and the old limits stay
    dlg.editors["region"].setText("0, 0, -4, 300")
    assert window.apply_settings(dlg) is False
    assert "region" in window.errors[-1] and window.safety_config.region == (0.0, 0.0, 400.0, 300.0)
    dlg.editors["region"].setText("a, b")
    assert window.apply_settings(dlg) is False
    dlg.editors["region"].setText("")
    assert dlg.values().region is None
    # through the menu: the real dialog, cancelled, leaves the config alone
    QTimer.singleShot(100, lambda: window.settings_dialog.reject())
    before = window.safety_config
    window.safety_action.trigger()
    assert window.safety_config is before


def test_settings_dialog_rejects_non_dataclasses():
    from ilbot.gui.settings import SafetySettingsDialog

    with pytest.raises(TypeError):
        SafetySettingsDialog(object())


# ------------------------------------------------------------------------------------------ sessions
def test_session_list_open_and_delete_with_confirmation(window, sessions_dir):
    a = write_session(sessions_dir / "a.ilbot.sqlite", 5)
    time.sleep(0.01)
    b = write_session(sessions_dir / "b.ilbot.sqlite", 3)
    (sessions_dir / "broken.ilbot.sqlite").write_bytes(b"not sqlite at all")
    s = window.sessions
    s.refresh()
    assert set(s.paths()) == {a, b, sessions_dir / "broken.ilbot.sqlite"}
    info = {i.path.name: i for i in s.infos}
    assert info["a.ilbot.sqlite"].n_events == 5 and info["b.ilbot.sqlite"].n_events == 3
    assert "not a session store" in info["broken.ilbot.sqlite"].error
    # nothing selected: an error in the window
    s.tree.setCurrentItem(None)
    s.open_selected()
    assert window.errors[-1] == "select a session first"
    s.select(a)
    opened = s.open_selected()
    assert opened.n_events == 5 and s.info_box.isVisible()
    s.info_box.close()
    s.select(sessions_dir / "broken.ilbot.sqlite")
    s.open_selected()
    assert "not a session store" in window.errors[-1]
    # delete: "No" keeps it, "Yes" removes it (with its WAL companions)
    s.select(b)
    answer_next_dialog(QMessageBox.StandardButton.No)
    assert s.delete_selected() is False and b.exists()
    s.select(b)
    seen = answer_next_dialog(QMessageBox.StandardButton.Yes)
    assert s.delete_selected() is True
    assert not b.exists() and not Path(str(b) + "-wal").exists()
    assert "b.ilbot.sqlite" in seen[0]
    assert b not in s.paths()
    with pytest.raises(KeyError):
        s.select(b)
    assert s.new_session_path("a") == sessions_dir / "a-1.ilbot.sqlite"
    s.set_folder(sessions_dir / "missing")
    assert s.paths() == []


# ------------------------------------------------------------------------------------------ with a model
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny randomly initialised model for the sandbox's feature spec, saved as a checkpoint."""
    import torch

    from ilbot.data.featurespec import load_spec
    from ilbot.data.keys import KEY_VOCAB
    from ilbot.data.schema import F
    from ilbot.model import ModelConfig, UnifiedEventModel, save_checkpoint

    torch.manual_seed(0)
    model = UnifiedEventModel(ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, dropout=0.0))
    stats = {"feature_mean": [0.0] * F, "feature_std": [1.0] * F, "tick_ms": 600.0,
             "hold_ms": {"median": 100.0, "q10": 60.0, "q90": 160.0}}
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", model, spec_hash=load_spec("sandbox").hash,
                           key_vocab=KEY_VOCAB, stats=stats)


def test_load_a_model(window, tiny_model):
    assert window.load_model(str(tiny_model)) is True
    assert window.checkpoint is not None and window.checkpoint_path == str(tiny_model)
    assert "M parameters" in window.model_label.text()
    assert "model loaded" in window.messages.toPlainText()


def test_dead_source_shows_an_error_and_the_app_keeps_running(window, tiny_model, tmp_path, qtbot):
    window.load_model(str(tiny_model))
    window.set_source(f"json-dir:{tmp_path / 'no_such_folder'}")
    window.window_edit.setText("0,0,800,600")
    with qtbot.waitSignal(window.message, timeout=10_000, check_params_cb=lambda m: m.startswith("error:")):
        assert window.start() is True
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
    assert "no_such_folder" in window.errors[-1] and "not a folder" in window.errors[-1]
    assert window.start_button.isEnabled() and window.isVisible()


def test_record_then_the_session_appears_then_replay_it(window, own_display, qtbot, sessions_dir):
    """Record real pynput input on the in-process sandbox, find the session in the list, replay it dry."""
    from pynput.mouse import Button, Controller

    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    assert window.start_recording() is True
    assert window.sandbox is not None and window.game_window.isVisible()
    qtbot.waitExposed(window.game_window)
    origin = window.game_window.mapToGlobal(window.game_window.rect().topLeft())
    mouse = Controller()
    points = [(100, 120), (300, 200), (450, 400)]
    for x, y in points:
        mouse.position = (origin.x() + x, origin.y() + y)
        qtbot.wait(30)
        mouse.click(Button.left)
        qtbot.wait(60)
    qtbot.wait(700)  # at least one game tick recorded
    path = window.stop_recording()
    assert path is not None and path.exists()
    assert path in window.sessions.paths()  # the session appears in the list, selected
    assert window.sessions.selected() == path
    info = next(i for i in window.sessions.infos if i.path == path)
    assert info.n_events >= 3 and info.n_ticks >= 1
    from ilbot.data.store import open_session

    with open_session(path) as s:
        clicks = [(round(e.x), round(e.y)) for e in s.events() if e.button]
    assert clicks == points
    # replay it, dry, from the session list's button; the end says it finished the whole session
    with qtbot.waitSignal(window.message, timeout=20_000,
                          check_params_cb=lambda m: m.startswith("replay stopped: finished after")) as ended:
        window.sessions.buttons["Replay (dry)"].click()
        assert window.running and window.run_kind == "replay"
        assert window.pause_button.isEnabled() and window.dry_radio.isChecked()  # a replay pauses like the agent
    summary = window.last_summary
    assert summary["error"] is None and summary["performed"] >= 3
    total = summary["total"]
    assert total >= 3 and ended.args[0].startswith(f"replay stopped: finished after {total} of {total} events")
    shown = [line for line in window.panels.recent.lines if "CLICK" in line]
    assert len(shown) == 3  # the three clicks were shown (dry run performs nothing)


def test_start_pause_and_stop_a_dry_run_on_the_sandbox(window, tiny_model, qtbot, own_display):
    """Load a model, choose the sandbox source, start a dry run: plans reach the overlay and the
    panels every tick through Qt signals; pause, resume, stop."""
    assert window.load_model(str(tiny_model))
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    assert window.start() is True
    assert window.running and not window.start_button.isEnabled()
    assert window.thread is not None and window.thread.isRunning()
    qtbot.waitUntil(lambda: window.ticks_seen >= 3, timeout=15_000)
    overlay = window.overlay
    assert overlay.isVisible() and overlay.tick >= 0
    game = window.game_window
    assert overlay.game_rect().topLeft() == game.mapToGlobal(game.rect().topLeft())
    assert overlay.game_rect().size() == game.size()
    assert overlay.geometry().top() == overlay.game_rect().top()  # the strip (legend, timeline) is below
    assert overlay.geometry().height() == game.height() + overlay.style_.strip_px
    assert "ticks/s" in window.rate_label.text() and window.rate_label.text() != "– ticks/s"
    assert window.latency_label.text().startswith("plan ") and "ms" in window.latency_label.text()
    assert "interventions" in window.interventions_label.text()
    assert window.last_stats["ticks"] >= 3 and window.last_stats["state"] == "running"
    qtbot.waitUntil(lambda: len(window.panels.recent.lines) > 0, timeout=15_000)  # dry run shows actions
    # pause (F6's slot): the runtime stops planning; resume; stop
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.thread.paused, timeout=5_000)
    assert window.pause_button.text().startswith("Resume")
    seen = window.ticks_seen
    qtbot.wait(1500)
    assert window.ticks_seen <= seen + 1  # at most a tick in flight
    window.toggle_pause()
    qtbot.waitUntil(lambda: window.ticks_seen >= seen + 2, timeout=15_000)
    window.stop()
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
    assert window.thread is None and window.start_button.isEnabled()
    assert window.last_summary["error"] is None and window.last_summary["state"] == "stopped"
    assert overlay.actions == []
    assert "agent stopped: by you after" in window.messages.toPlainText()
    assert not window.errors


def test_a_source_that_stops_producing_pauses_with_an_error(window, tiny_model, tmp_path, qtbot, own_display):
    state = tmp_path / "state"
    state.mkdir()  # an existing but silent json-dir source: the stale watchdog must pause the agent
    window.load_model(str(tiny_model))
    window.window_edit.setText("0,0,800,600")
    window.set_mode("dry_run")
    # the screen source makes its own features: a model for the sandbox spec is refused with a clear error
    window.set_source("screen:0,0,800,600")
    assert window.start() is True
    # the error arrives from the agent thread: wait for it, not for `running` (which may read False
    # before the thread has even started on a loaded machine)
    qtbot.waitUntil(lambda: any("does not match source" in e for e in window.errors), timeout=10_000)
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
    # a source that never sends any state: "waiting for game state", then a one-line error; the app goes on
    window.set_source(f"sandbox:{state}")
    assert window.start() is True
    qtbot.waitUntil(lambda: window.run_state[0] == "waiting_for_state", timeout=10_000)
    assert "waiting for game state" in window.state_label.text()
    qtbot.waitUntil(lambda: any("no game state from" in e for e in window.errors), timeout=30_000)
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
    assert window.last_summary["reason"] == "no_state"


def test_live_mode_asks_first_and_declining_stays_dry(window, tiny_model, qtbot):
    window.load_model(str(tiny_model))
    window.live_radio.setChecked(True)
    seen = answer_next_dialog(QMessageBox.StandardButton.No)
    assert window.start() is False
    assert seen and "F12" in seen[0] and "terms of service" in seen[0]
    assert window.dry_radio.isChecked() and not window.running
    seen = answer_next_dialog(QMessageBox.StandardButton.No)
    assert window.replay("whatever.ilbot.sqlite", live=True) is False
    assert "declined" in window.messages.toPlainText()


def test_shortcuts_work_while_the_game_window_has_focus(window, tiny_model, qtbot, own_display):
    """F6 pauses and F12 (the kill-switch key) stops the agent, pressed with real input while the
    sandbox game window has the keyboard focus."""
    from pynput.keyboard import Controller, Key

    window.load_model(str(tiny_model))
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    assert window.start()
    qtbot.waitUntil(lambda: window.ticks_seen >= 1, timeout=15_000)
    game = window.game_window
    game.raise_()
    game.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is game, timeout=5_000)
    keyboard = Controller()
    keyboard.tap(Key.f6)
    qtbot.waitUntil(lambda: window.thread is not None and window.thread.paused, timeout=5_000)
    assert QApplication.activeWindow() is game
    keyboard.tap(Key.f12)
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
    assert window.last_summary["state"] == "stopped" and window.last_summary["error"] is None


def test_live_replay_performs_the_recorded_clicks_on_the_game(window, own_display, qtbot, sessions_dir):
    """Record three clicks, then replay the session live (after confirming): the game window
    receives the same clicks at the same window positions, through real pynput input."""
    from PyQt6.QtCore import QEvent, QObject
    from pynput.mouse import Button, Controller

    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    assert window.start_recording()
    qtbot.waitExposed(window.game_window)
    game = window.game_window
    origin = game.mapToGlobal(game.rect().topLeft())
    mouse = Controller()
    points = [(60, 500), (250, 80), (520, 330)]
    for x, y in points:
        mouse.position = (origin.x() + x, origin.y() + y)
        qtbot.wait(30)
        mouse.click(Button.left)
        qtbot.wait(60)
    path = window.stop_recording()

    class Presses(QObject):
        def __init__(self):
            super().__init__()
            self.seen = []

        def eventFilter(self, obj, e):  # noqa: N802
            if e.type() == QEvent.Type.MouseButtonPress:
                self.seen.append((round(e.position().x()), round(e.position().y())))
            return False

    presses = Presses()
    game.installEventFilter(presses)
    mouse.position = (origin.x() + 700, origin.y() + 550)  # park the pointer elsewhere
    window.sessions.select(path)
    seen = answer_next_dialog(QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.message, timeout=20_000,
                          check_params_cb=lambda m: m.startswith("replay stopped: finished after")):
        window.sessions.buttons["Replay (live)"].click()
    assert seen and "Kill switch: F12" in seen[0]
    game.removeEventFilter(presses)
    assert presses.seen == points
    assert window.last_summary["error"] is None


def test_overlay_follows_a_game_window_found_by_title(window, tiny_model, qtbot, tmp_path, own_display):
    from PyQt6.QtWidgets import QWidget

    game = QWidget()
    qtbot.addWidget(game)
    game.setWindowTitle("ilbot tracked game")
    game.setGeometry(300, 200, 320, 240)
    game.show()
    qtbot.waitExposed(game)
    window.load_model(str(tiny_model))
    window.set_source(f"sandbox:{tmp_path}")  # a silent source is enough here
    window.window_edit.setText("ilbot tracked game")
    assert window.start()

    def on_game():
        tl = game.mapToGlobal(game.rect().topLeft())
        return window.overlay.game_rect() == QRect(tl, game.size())

    from PyQt6.QtCore import QRect

    qtbot.waitUntil(on_game, timeout=5_000)
    game.move(100, 50)
    qtbot.waitUntil(on_game, timeout=5_000)  # re-found by title within a second or two
    window.stop()
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)



def test_closing_the_game_window_stops_the_run_and_start_reopens_it(window, qtbot, own_display):
    """The sandbox window closes: the run stops (window_closed) and the overlay clears; Start
    reopens the game, which ticks again, and the agent plays it (sandbox execution mode)."""
    from ilbot.sandbox import SHIPPED_MODEL

    assert window.load_model(str(SHIPPED_MODEL))
    window.set_source("sandbox")
    window.window_edit.setText("sandbox")
    window.set_mode("sandbox")
    assert window.start() is True
    qtbot.waitUntil(lambda: window.ticks_seen >= 2, timeout=20_000)
    window.game_window.close()
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
    assert window.last_summary["reason"] == "window_closed" and window.overlay.actions == []
    tick = window.sandbox.game.tick_index
    assert window.start() is True
    qtbot.waitUntil(lambda: window.sandbox.game.tick_index >= tick + 3 and window.ticks_seen >= 2, timeout=20_000)
    assert window.game_window.isVisible() and window.running and window.run_state[0] == "running"
    window.stop()
    qtbot.waitUntil(lambda: not window.running, timeout=10_000)
