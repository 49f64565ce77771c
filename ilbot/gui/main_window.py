"""The main window: choose model, source, game window and mode; start, pause, stop; record;
sessions; live panels; status bar; messages.

Layout (narrow, to sit beside the game window): the controls on top, tabs with the live panels
and the session list, the message area, and the status bar (tick rate, plan latency, safety
interventions).

Decisions where the design is silent:
- Errors never leave the window: a failing action (bad checkpoint, dead source, unreadable
  session) writes one line to the message area and the status bar, and the controls return to
  their idle state. No modal error dialog, so nothing blocks an unattended run.
- The agent runs in an `AgentThread` (ilbot/gui/agent_thread.py); plans reach the overlay and the
  panels through queued Qt signals, never by touching widgets from another thread.
- Live mode needs a confirmation on every start (the dialog names the kill-switch key); declining
  falls back to dry run. The kill switch is a global hotkey while the agent runs live; in the app
  (the sandbox window included) F12 stops too, through an application-wide shortcut.
- Shortcuts (application-wide, so they work while the in-process game window has focus):
  F5 start, F6 pause/resume, F7 record/stop recording, F12 (the kill-switch key) stop.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

from PyQt6.QtCore import QRect, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QColor, QKeySequence, QShortcut
from PyQt6.QtWidgets import (QButtonGroup, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout,
                             QLabel, QLineEdit, QMainWindow, QPlainTextEdit, QPushButton,
                             QRadioButton, QTabWidget, QVBoxLayout, QWidget, QGridLayout, QApplication)

from ..errors import UserError
from . import wiring
from .agent_thread import AgentThread, describe_error
from .overlay import Overlay
from .panels import LivePanels
from .sessions import SessionList, ask
from .settings import SafetySettingsDialog
from .train_panel import TrainPanel

TRACK_MS = 1000  # how often the overlay re-finds a game window given by title
SOURCES = ("sandbox", "json-dir", "http", "screen", "replay")
SOURCE_HINTS = {
    "sandbox": "built-in game here (or the state folder of one elsewhere)",
    "json-dir": "folder of tick_<n>.json files",
    "http": "http://127.0.0.1:8081 (loopback)",
    "screen": "the game window (or a region x,y,w,h)",
    "replay": "session file *.ilbot.sqlite",
}


class MainWindow(QMainWindow):
    message = pyqtSignal(str)  # every line written to the message area (tests listen)

    def __init__(self, *, model: str | None = None, source: str = "sandbox", window: str = "sandbox",
                 sessions_dir: Path | None = None, safety_config=None, tick_ms: float = 600.0,
                 kill_key: str = wiring.DEFAULT_KILL_KEY):
        super().__init__()
        self.setWindowTitle("ilbot")
        self.tick_ms = tick_ms
        self.checkpoint = None  # the loaded checkpoint (ilbot.model Checkpoint)
        self.checkpoint_path: str | None = None
        self.safety_config = safety_config if safety_config is not None else wiring.default_safety_config()
        self.kill_key = kill_key
        self.thread: AgentThread | None = None
        self.run_kind = ""  # "agent" or "replay"
        self.recorder = None
        self.recording_path: Path | None = None
        self.game_window = None  # the in-process sandbox window, when the source is the sandbox
        self.sandbox = None  # wiring.SandboxHost
        self.overlay = Overlay()
        self._track_timer = QTimer(self)
        self._track_timer.timeout.connect(self._track_window)
        self.errors: list[str] = []
        self.run_state: tuple[str, str] = ("", "")  # the run's (state, reason), as it reported it
        self.ticks_seen = 0
        self.last_stats: dict = {}
        self._tick_times: deque[float] = deque(maxlen=20)
        self.last_summary: dict = {}

        self._build_controls(model, source, window)
        self._build_layout(sessions_dir)
        self.set_source(self._initial_source)  # after the message area exists: a bad one is shown there
        self._build_menu()
        self._build_shortcuts()
        self._build_status()
        self._set_running(False)
        self.resize(470, 770)

    # ---------------------------------------------------------------------------------- layout
    def _build_controls(self, model, source, window) -> None:
        box = QGroupBox("Agent")
        form = QFormLayout(box)
        self.model_edit = QLineEdit(model or "")
        self.model_edit.setPlaceholderText("checkpoint folder (or training run folder)")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.clicked.connect(self.browse_model)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(lambda: self.load_model())
        self.model_label = QLabel("no model loaded")
        row = QHBoxLayout()
        row.addWidget(self.model_edit, 1)
        row.addWidget(browse)
        row.addWidget(self.load_button)
        form.addRow("Model", row)
        form.addRow("", self.model_label)

        self.source_combo = QComboBox()
        self.source_combo.addItems(SOURCES)
        self.source_arg = QLineEdit()
        self.source_combo.currentTextChanged.connect(self._source_changed)
        src_browse = QPushButton("…")
        src_browse.setMaximumWidth(30)
        src_browse.clicked.connect(self.browse_source)
        row = QHBoxLayout()
        row.addWidget(self.source_combo)
        row.addWidget(self.source_arg, 1)
        row.addWidget(src_browse)
        form.addRow("Source", row)
        self._initial_source = source

        self.window_edit = QLineEdit(window)
        self.window_edit.setPlaceholderText("'sandbox', a window title, or a region x,y,w,h")
        form.addRow("Game window", self.window_edit)

        self.sandbox_radio = QRadioButton("Sandbox")
        self.sandbox_radio.setToolTip("apply each action to the built-in sandbox game in this process (no real input)")
        self.dry_radio = QRadioButton("Dry run")
        self.dry_radio.setToolTip("show what the agent would do (overlay) without performing anything")
        self.live_radio = QRadioButton("Live")
        self.live_radio.setToolTip("perform real mouse and keyboard input (asks first; the kill switch stops it)")
        self.sandbox_radio.setChecked(True)
        group = QButtonGroup(self)
        for b in (self.sandbox_radio, self.dry_radio, self.live_radio):
            group.addButton(b)
        self.killswitch_label = QLabel()
        row = QHBoxLayout()
        row.addWidget(self.sandbox_radio)
        row.addWidget(self.dry_radio)
        row.addWidget(self.live_radio)
        row.addWidget(self.killswitch_label, 1)
        form.addRow("Mode", row)
        self._update_killswitch_label()

        self.start_button = QPushButton("Start (F5)")
        self.pause_button = QPushButton("Pause (F6)")
        self.stop_button = QPushButton("Stop (F12)")
        self.record_button = QPushButton("Record (F7)")
        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)
        self.record_button.clicked.connect(self.toggle_record)
        grid = QGridLayout()
        for i, b in enumerate((self.start_button, self.pause_button, self.stop_button, self.record_button)):
            grid.addWidget(b, i // 2, i % 2)
        form.addRow(grid)
        self.controls = box

    def _build_layout(self, sessions_dir) -> None:
        self.sessions = SessionList(sessions_dir)
        self.sessions.replay_requested.connect(lambda p, live: self.replay(p, live))
        self.sessions.error.connect(self.show_error)
        self.panels = LivePanels()
        self.messages = QPlainTextEdit()
        self.messages.setReadOnly(True)
        self.messages.setMaximumBlockCount(500)
        self.messages.setPlaceholderText("messages and errors appear here")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.panels, "Live")
        self.tabs.addTab(self.sessions, "Sessions")
        self.train = TrainPanel(sessions_dir=self.sessions.folder, current_model=lambda: self.checkpoint_path)
        self.train.use_model.connect(lambda run: self.load_model(run))
        self.train.message.connect(self.log)
        self.train.error.connect(self.show_error)
        self.tabs.addTab(self.train, "Train")
        msg_box = QGroupBox("Messages")
        QVBoxLayout(msg_box).addWidget(self.messages)
        msg_box.setMaximumHeight(120)
        self.messages.setMinimumHeight(40)
        central = QWidget()
        cv = QVBoxLayout(central)
        cv.addWidget(self.controls)
        cv.addWidget(self.tabs, 1)
        cv.addWidget(msg_box)
        self.setCentralWidget(central)

    def _build_menu(self) -> None:
        menu = self.menuBar().addMenu("&Settings")
        act = QAction("Safety limits…", self)
        act.triggered.connect(self.edit_safety)
        menu.addAction(act)
        self.safety_action = act
        train_menu = self.menuBar().addMenu("&Train")
        self.train_action = QAction("Build, train and evaluate…", self)
        self.train_action.setShortcut(QKeySequence("Ctrl+T"))
        self.train_action.triggered.connect(lambda: self.tabs.setCurrentWidget(self.train))
        train_menu.addAction(self.train_action)

    def _build_shortcuts(self) -> None:
        self.shortcuts = {}
        for key, slot in (("F5", lambda: self.start()), ("F6", self.toggle_pause), ("F7", self.toggle_record),
                          (self.killswitch_key().upper(), self.stop)):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.ApplicationShortcut)  # also while the game window has focus
            sc.activated.connect(slot)
            self.shortcuts[key] = sc

    def _build_status(self) -> None:
        self.rate_label = QLabel("– ticks/s")
        self.latency_label = QLabel("plan – ms")
        self.interventions_label = QLabel("0 interventions")
        self.state_label = QLabel("idle")
        sb = self.statusBar()
        for w in (self.state_label, self.rate_label, self.latency_label, self.interventions_label):
            sb.addPermanentWidget(w)

    # ---------------------------------------------------------------------------------- helpers
    def log(self, text: str) -> None:
        self.messages.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")
        self.message.emit(text)

    def show_error(self, text: str) -> None:
        """An error in the window: the message area (red) and the status bar. The app keeps going."""
        self.errors.append(text)
        self.messages.appendHtml(f'<span style="color:{QColor(200, 30, 30).name()}">'
                                 f'{time.strftime("%H:%M:%S")}  error: {_escape(text)}</span>')
        self.statusBar().showMessage(f"error: {text}", 10_000)
        self.message.emit(f"error: {text}")

    def killswitch_key(self) -> str:
        return self.kill_key

    def _update_killswitch_label(self) -> None:
        self.killswitch_label.setText(f"kill switch: {self.killswitch_key().upper()}")

    def _source_changed(self, name: str) -> None:
        self.source_arg.setPlaceholderText(SOURCE_HINTS.get(name, ""))

    def set_source(self, source: str) -> None:
        """Select a source from its string form: 'sandbox', 'json-dir:PATH', 'http[:URL]', 'replay:S'."""
        name, _, arg = source.partition(":")
        if name not in SOURCES:
            self.show_error(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
            return
        self.source_combo.setCurrentText(name)
        self._source_changed(name)
        self.source_arg.setText(arg)

    def source_string(self) -> str:
        name, arg = self.source_combo.currentText(), self.source_arg.text().strip()
        return f"{name}:{arg}" if arg else name

    def browse_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Checkpoint folder", self.model_edit.text())
        if folder:
            self.model_edit.setText(folder)
            self.load_model()

    def browse_source(self) -> None:
        name = self.source_combo.currentText()
        if name == "json-dir":
            path = QFileDialog.getExistingDirectory(self, "State folder")
        elif name == "replay":
            path, _ = QFileDialog.getOpenFileName(self, "Session", str(self.sessions.folder), "Sessions (*.ilbot.sqlite)")
        else:
            return
        if path:
            self.source_arg.setText(path)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        for w in (self.model_edit, self.load_button, self.source_combo, self.source_arg, self.window_edit,
                  self.sandbox_radio, self.dry_radio, self.live_radio):
            w.setEnabled(not running)
        if not running:
            self._source_changed(self.source_combo.currentText())
        self.pause_button.setText("Pause (F6)")

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.isRunning()

    # ---------------------------------------------------------------------------------- model
    def load_model(self, path: str | None = None) -> bool:
        path = (path or self.model_edit.text()).strip()
        if path:
            self.model_edit.setText(path)
        try:
            ckpt = wiring.load_model(path)
        except Exception as e:  # noqa: BLE001 - shown in the window; the model loaded before stays
            kept = f" (still using {self.checkpoint_path})" if self.checkpoint is not None else ""
            self.show_error(describe_error(e) + kept)
            return False
        self.checkpoint, self.checkpoint_path = ckpt, path
        self.model_label.setText(wiring.describe_checkpoint(ckpt, path))
        self.log(f"model loaded: {path}")
        return True

    # ---------------------------------------------------------------------------------- game window
    def ensure_sandbox(self) -> None:
        """Open the in-process sandbox game (once) and align the overlay with it."""
        if self.sandbox is None:
            self.sandbox = wiring.SandboxHost(tick_ms=self.tick_ms)
            self.sandbox.on_closed.append(self._game_closed)
            self.game_window = self.sandbox.window
            self.log(f"sandbox game opened (state in {self.sandbox.state_dir})")
        self.sandbox.show()
        self.overlay.follow(self.game_window)

    def game_rect(self) -> QRect:
        """Screen rectangle of the game window's client area, from the game-window field."""
        spec = self.window_edit.text().strip() or "sandbox"
        if spec == "sandbox":
            self.ensure_sandbox()
            w = self.game_window
            return QRect(w.mapToGlobal(w.rect().topLeft()), w.size())
        g = wiring.resolve_window(spec)
        return QRect(g.x, g.y, g.width, g.height)

    def _game_closed(self) -> None:
        """The person closed the sandbox window: the run stops and the overlay clears."""
        if self.thread is not None and self.thread.runtime is not None:
            self.thread.runtime.stop("window_closed")
        self.overlay.clear()
        self.overlay.hide()

    def set_mode(self, mode: str) -> None:
        """Pick the execution mode's radio ('sandbox', 'dry_run' or 'live')."""
        {"sandbox": self.sandbox_radio, "dry_run": self.dry_radio, "live": self.live_radio}[str(mode)].setChecked(True)

    def mode(self):
        """The execution mode the radios pick (sandbox mode needs the in-app sandbox)."""
        from ..agent.assemble import Mode

        if self.live_radio.isChecked():
            return Mode.LIVE
        if self.sandbox_radio.isChecked():
            return Mode.SANDBOX
        return Mode.DRY_RUN

    def _request(self, rect: QRect, **kw):
        """The run request for the chosen mode; sandbox mode applies actions to the in-app game."""
        from ..agent.assemble import Mode, RunRequest

        mode = self.mode()
        game = dispatch = None
        if mode == Mode.SANDBOX:
            if self.sandbox is None or self.window_edit.text().strip() not in ("", "sandbox"):
                raise UserError("the Sandbox mode plays the built-in sandbox game: pick Dry run or Live for another game")
            game, dispatch = self.sandbox.game, wiring.GuiDispatcher()
            self._dispatcher = dispatch  # kept alive (and on the GUI thread) while the run lasts
        return RunRequest(window=(rect.x(), rect.y(), rect.width(), rect.height()), mode=mode,
                          safety=self.safety_config, kill_hotkey=self.killswitch_key(), game=game, dispatch=dispatch,
                          **kw)

    # ---------------------------------------------------------------------------------- run
    def _confirm_live(self, what: str) -> bool:
        key = self.killswitch_key().upper()
        return ask(self, "Live mode",
                   f"{what} will perform real mouse and keyboard input on the game window.\n\n"
                   f"Kill switch: {key} stops it and releases every key and button.\n"
                   "Automating an online game can break its terms of service; you answer for where you run this.\n\n"
                   "Go live?")

    def start(self, ticks: int | None = None) -> bool:
        """Start the agent with the chosen model, source, window and mode. Returns whether it started."""
        if self.running:
            return False
        live = self.live_radio.isChecked()
        if live and not self._confirm_live("The agent"):
            self.dry_radio.setChecked(True)
            self.log("live mode declined: staying in dry run")
            return False
        if self.checkpoint is None and not self.load_model():
            return False
        source = self.source_string()
        try:
            if source == "sandbox" or self.window_edit.text().strip() in ("", "sandbox"):
                self.ensure_sandbox()
            rect = self.game_rect()
            if source == "sandbox":
                source = self.sandbox.source
            request = self._request(rect, model=self.checkpoint, source=source, tick_ms=self.tick_ms)
        except Exception as e:  # noqa: BLE001
            self.show_error(describe_error(e))
            return False
        self._launch(AgentThread(lambda th: wiring.build_run(request, th), ticks=ticks, name="agent"), "agent",
                     rect, f"agent started ({request.mode.label}) on {source}")
        return True

    def replay(self, session: str, live: bool = False, ticks: int | None = None) -> bool:
        """Re-perform a recorded session (dry run by default) through safety and an executor."""
        if self.running:
            self.show_error("stop the running agent before replaying")
            return False
        if live and not self._confirm_live("The replay"):
            self.log("live replay declined")
            return False
        try:
            rect = self.game_rect()
            request = self._request(rect, session=session)
            if live:
                request.mode = type(request.mode).LIVE
            elif request.mode.value == "live":
                request.mode = type(request.mode).DRY_RUN
        except Exception as e:  # noqa: BLE001
            self.show_error(describe_error(e))
            return False
        self._launch(AgentThread(lambda th: wiring.build_run(request, th), ticks=ticks, name="replay"), "replay",
                     rect, f"replay of {Path(session).name} started ({request.mode.label})")
        return True

    def _launch(self, thread: AgentThread, kind: str, rect: QRect, text: str) -> None:
        self.thread, self.run_kind = thread, kind
        self.ticks_seen = 0
        self._tick_times.clear()
        self.panels.recent.clear()
        thread.planned.connect(self.on_plan)
        thread.performed.connect(self.on_performed)
        thread.stats.connect(self.on_stats)
        thread.failed.connect(self.show_error)
        thread.state.connect(self.on_state)
        thread.finished_run.connect(self.on_finished)
        spec = self.window_edit.text().strip()
        if spec not in ("", "sandbox"):
            self.overlay.unfollow()
            self.overlay.align_to(rect)
            if not wiring.is_region(spec):  # a window found by title: follow it as it moves
                self._track_timer.start(TRACK_MS)
        self.overlay.clear()
        self.overlay.show()
        self.overlay.raise_()
        self._set_running(True)
        self.state_label.setText(f"{kind}: starting")
        self.log(text)
        thread.start()

    def _track_window(self) -> None:
        """Re-align the overlay with a game window found by title (it may move or resize)."""
        if not self.running:
            self._track_timer.stop()
            return
        try:
            x, y, w, h = wiring.resolve_window(self.window_edit.text().strip())
        except Exception:  # noqa: BLE001 - the window may be gone for a moment; keep the last place
            return
        self.overlay.align_to(QRect(int(x), int(y), int(w), int(h)))

    def toggle_pause(self) -> None:
        if not self.running:
            return
        paused = not self.thread.paused
        self.thread.set_paused(paused)
        self.log("pause requested" if paused else "resume requested")

    def stop(self, wait_ms: int = 5000) -> None:
        """Stop the agent (or replay) and release everything. Also the in-app kill-switch key."""
        th = self.thread
        if th is None:
            return
        th.request_stop()
        if not th.wait(wait_ms):
            self.show_error(f"the {self.run_kind} did not stop within {wait_ms} ms")
            return
        QApplication.processEvents()  # deliver the thread's last queued signals (finished_run)

    # ---------------------------------------------------------------------------------- signals
    def on_plan(self, tick: int, actions: list, tick_ms: float) -> None:
        self.overlay.set_plan(actions, tick_ms, tick)
        self.panels.show_plan(tick, actions)

    def on_performed(self, tick: int, actions: list) -> None:
        self.panels.add_performed(tick, actions)

    def on_stats(self, stats: dict) -> None:
        self.last_stats = stats
        self.ticks_seen += 1
        self._tick_times.append(stats.get("t", time.monotonic()))
        if len(self._tick_times) >= 2:
            span = self._tick_times[-1] - self._tick_times[0]
            if span > 0:
                self.rate_label.setText(f"{(len(self._tick_times) - 1) / span:.2f} ticks/s")
        lat = wiring.plan_latency_ms(stats)
        if lat is not None:
            self.latency_label.setText(f"plan {lat:.1f} ms")
        interventions = wiring.interventions(stats)
        self.interventions_label.setText(f"{sum(interventions.values())} interventions")
        self.panels.show_interventions(interventions)

    def on_state(self, state: str, reason: str) -> None:
        """The run's state machine moved (ilbot.agent.run): shown as the run reports it, never inferred."""
        from ..agent.run import describe_reason

        text = describe_reason(state, reason)
        self.run_state = (state, reason)
        self.pause_button.setText("Resume (F6)" if state == "paused" else "Pause (F6)")
        if state == "paused":
            self.overlay.clear()  # nothing is planned while paused: no old plan on the game
        if state == "paused" and reason == "stale_state":
            self.show_error(text)
        else:
            self.log(f"{self.run_kind} {text}")
        self.state_label.setText(f"{self.run_kind}: {text}")

    def on_finished(self, summary: dict) -> None:
        self.last_summary = summary
        th = self.sender() if isinstance(self.sender(), AgentThread) else self.thread
        if th is not None:
            th.wait(2000)
        if th is self.thread:
            self.thread = None
        self._set_running(False)
        self.state_label.setText("idle")
        for label, text in ((self.rate_label, "– ticks/s"), (self.latency_label, "plan – ms"),
                            (self.interventions_label, "0 interventions")):
            label.setText(text)  # no stale figures once stopped
        self.overlay.clear()
        from ..agent.run import describe_reason

        n = summary.get("ticks", summary.get("chunks", 0))
        what = describe_reason("stopped", summary.get("reason", ""))
        self.log(f"{self.run_kind} {what} after {n} {'ticks' if self.run_kind == 'agent' else 'chunks'}"
                 + (f" ({summary['error']})" if summary.get("error") else ""))

    # ---------------------------------------------------------------------------------- recording
    def toggle_record(self) -> None:
        if self.recorder is None:
            self.start_recording()
        else:
            self.stop_recording()

    def start_recording(self) -> bool:
        if self.recorder is not None:
            return False
        try:
            rect = self.game_rect()
            source = self.source_string()
            if source == "sandbox":
                self.ensure_sandbox()
                source = self.sandbox.source
            path = self.sessions.new_session_path(time.strftime("session-%Y%m%d-%H%M%S"))
            self.recorder = wiring.start_recorder(path, (rect.x(), rect.y(), rect.width(), rect.height()), source,
                                                  self.killswitch_key())
        except Exception as e:  # noqa: BLE001
            self.recorder = None
            self.show_error(describe_error(e))
            return False
        self.recording_path = path
        self._record_timer = QTimer(self)  # the recorder's own stop key (F7) pressed in any window
        self._record_timer.timeout.connect(self._check_record_stop)
        self._record_timer.start(100)
        self.record_button.setText("Stop recording (F7)")
        self.log(f"recording to {path}")
        return True

    def _check_record_stop(self) -> None:
        if self.recorder is not None and self.recorder.stop_requested.is_set():
            self.stop_recording()

    def stop_recording(self) -> Path | None:
        rec, path = self.recorder, self.recording_path
        if rec is None:
            return None
        self.recorder = None
        self._record_timer.stop()
        self.record_button.setText("Record (F7)")
        try:
            summary = wiring.stop_recorder(rec)
        except Exception as e:  # noqa: BLE001
            self.show_error(describe_error(e))
            summary = None
        self.sessions.refresh()
        if path is not None and path.exists():
            self.sessions.select(path)
        self.log(f"recording stopped: {path}" + (f" ({summary})" if summary else ""))
        return path

    # ---------------------------------------------------------------------------------- settings
    def edit_safety(self) -> None:
        dlg = SafetySettingsDialog(self.safety_config, self)
        self.settings_dialog = dlg
        if dlg.exec() == SafetySettingsDialog.DialogCode.Accepted:
            self.apply_settings(dlg)

    def apply_settings(self, dlg: SafetySettingsDialog) -> bool:
        try:
            config = dlg.values()
        except UserError as e:
            self.show_error(f"safety limits not changed: {e}")
            return False
        self.set_safety_config(config)
        return True

    def set_safety_config(self, config) -> None:
        self.safety_config = config
        self._update_killswitch_label()
        self.log("safety limits updated" + (" (take effect at the next start)" if self.running else ""))

    # ---------------------------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop everything this window started: agent, recorder, overlay, sandbox."""
        self.stop()
        self.train.shutdown()  # a training child checkpoints and exits
        if self.recorder is not None:
            self.stop_recording()
        self.overlay.close()
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
            self.game_window = None


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

