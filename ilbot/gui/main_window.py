"""The main window: choose model, source, game window and mode; start, pause, stop; record;
sessions; live panels; status bar; messages.

Layout (narrow, to sit beside the game window): the state badge on top (ilbot.gui.state_badge:
SANDBOX / DRY RUN / LIVE, PAUSED with its reason and how to resume, WAITING FOR GAME STATE, REC
while recording; the overlay shows the same badge over the game), the controls, then the tabs
(live panels, sessions, training) and the message area in a splitter, and the status bar
(ilbot.gui.status_bar: fixed roles for the latest error, the run's state, tick rate, plan
latency and safety interventions, so no two texts overlap). The default size shows every panel
(`default_size`: 560x900, or what fits the screen). Menus: File (Quit, Ctrl+Q), Settings, Train,
Help (shortcuts, About) (ilbot.gui.app_menus); every control has a tooltip.

Decisions where the design is silent:
- Errors never leave the window: a failing action (bad checkpoint, dead source, unreadable
  session) writes one line to the message area and the status bar's notice, and the controls
  return to their idle state. No modal error dialog, so nothing blocks an unattended run. A
  failed Load keeps the model loaded before.
- The state shown is the one the run reports (its mode and its state machine's state and
  reason); the Mode radios follow the mode the run actually has (a dry replay never shows Live).
  While paused or stopped the overlay shows no plan; once stopped the figures go back to idle.
- Settings persist across restarts (ilbot.gui.persist): model, source, window, safety limits and
  the layout, unless the window is made with `persist=False` (screenshot and --ticks runs).
- Stopping a recording with the app's button pauses the recorder as the button is pressed, so the
  click on the button is not recorded.
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
                             QRadioButton, QVBoxLayout, QWidget, QGridLayout, QApplication,
                             QSplitter)

from ..agent.window import is_region, resolve_window
from ..errors import UserError
from ..safety.reason_names import interventions
from . import app_menus, wiring
from . import persist as saved_settings
from .agent_thread import AgentThread, describe_error
from .overlay import Overlay
from .panels import LivePanels
from .sessions import SessionList, ask
from .scroll_tabs import ScrollingTabs
from .settings import SafetySettingsDialog
from .state_badge import StateBadge, badge_for, recording_text
from .status_bar import StatusLine
from .train_panel import TrainPanel

TRACK_MS = 1000  # how often the overlay re-finds a game window given by title
DEFAULT_SIZE = (560, 900)  # shows every panel: 5+ quantile rows, 5+ message lines, the model line
MESSAGE_LINES = 5
SOURCES = ("sandbox", "json-dir", "http", "screen", "replay")
SOURCE_HINTS = {
    "sandbox": "built-in game here (or the state folder of one elsewhere)",
    "json-dir": "folder of tick_<n>.json files",
    "http": "http://127.0.0.1:8081 (loopback)",
    "screen": "the game window (or a region x,y,w,h)",
    "replay": "session file *.ilbot.sqlite",
}


def end_message(kind: str, summary: dict) -> str:
    """The message-area line for a run that ended: how it ended and how far it got (a replay in
    the session's events, the agent in ticks)."""
    from ..agent.run import describe_reason

    what = describe_reason("stopped", summary.get("reason", ""))
    if kind == "replay" or "total" in summary:  # how much of the session it replayed
        n, total = summary.get("done", 0), summary.get("total", "?")
        far = f"after {n} of {total} events ({summary.get('performed', 0)} performed)"
    else:
        far = f"after {summary.get('ticks', 0)} ticks"
    return f"{kind} {what} {far}" + (f" ({summary['error']})" if summary.get("error") else "")


class MainWindow(QMainWindow):
    message = pyqtSignal(str)  # every line written to the message area (tests listen)

    def __init__(self, *, model: str | None = None, source: str | None = None, window: str | None = None,
                 sessions_dir: Path | None = None, safety_config=None, tick_ms: float = 600.0,
                 kill_key: str = wiring.DEFAULT_KILL_KEY, persist: bool = True):
        super().__init__()
        self.setWindowTitle("ilbot")
        self.tick_ms = tick_ms
        self.checkpoint = None  # the loaded checkpoint (ilbot.model Checkpoint)
        self.checkpoint_path: str | None = None
        self.persist = persist  # read and write the saved settings (ilbot.gui.persist)
        saved = saved_settings.saved_start() if persist else {}
        model = model if model is not None else saved.get("model")
        source = source or saved.get("source") or "sandbox"
        window = window or saved.get("window") or "sandbox"
        self._settings_note = None
        if safety_config is None and persist:
            safety_config, self._settings_note = saved_settings.load_safety()
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
        self.run_mode = None  # the execution mode the running (or last) run reported
        self._record_timer: QTimer | None = None

        self._build_controls(model, source, window)
        self._build_layout(sessions_dir)
        self.set_source(self._initial_source)  # after the message area exists: a bad one is shown there
        self._build_menu()
        self.menu_actions = app_menus.install(self, self.killswitch_key)
        for changed in (self.source_combo.currentTextChanged, self.source_arg.textChanged):
            changed.connect(lambda *_: self._save("source", self.source_string()))
        self.window_edit.textChanged.connect(lambda text: self._save("window", text.strip()))
        self._build_shortcuts()
        self._build_status()
        self._set_running(False)
        self.resize(*self.default_size())
        self.splitter.setSizes([10_000, self.splitter.widget(1).minimumSizeHint().height()])  # the rest to the tabs
        if persist:
            self._restore_layout()
        if self._settings_note:
            self.log(self._settings_note)

    # ---------------------------------------------------------------------------------- layout
    def _build_controls(self, model, source, window) -> None:
        box = QGroupBox("Agent")
        form = QFormLayout(box)
        self.model_edit = QLineEdit(model or "")
        self.model_edit.setPlaceholderText("checkpoint folder (or training run folder)")
        self.model_edit.setToolTip("the model the agent plays with: a checkpoint folder or a training run folder")
        browse = QPushButton("…")
        browse.setMaximumWidth(30)
        browse.setToolTip("choose the model's folder")
        browse.clicked.connect(self.browse_model)
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("load the model named on the left (a failed load keeps the model in use)")
        self.load_button.clicked.connect(lambda: self.load_model())
        self.model_label = QLabel("no model loaded")
        self.model_label.setWordWrap(True)
        self.model_label.setToolTip("the model in use: its size, tick length and feature spec")
        row = QHBoxLayout()
        row.addWidget(self.model_edit, 1)
        row.addWidget(browse)
        row.addWidget(self.load_button)
        form.addRow("Model", row)
        form.addRow("", self.model_label)

        self.source_combo = QComboBox()
        self.source_combo.addItems(SOURCES)
        self.source_combo.setToolTip("where the game state comes from: the built-in sandbox, a folder of JSON "
                                     "ticks, a RuneLite HTTP plugin, the screen, or a recorded session")
        self.source_arg = QLineEdit()
        self.source_arg.setToolTip("the source's argument (its folder, URL, region or session); empty: its default")
        self.source_combo.currentTextChanged.connect(self._source_changed)
        src_browse = QPushButton("…")
        src_browse.setMaximumWidth(30)
        src_browse.setToolTip("choose the source's folder or session file")
        src_browse.clicked.connect(self.browse_source)
        row = QHBoxLayout()
        row.addWidget(self.source_combo)
        row.addWidget(self.source_arg, 1)
        row.addWidget(src_browse)
        form.addRow("Source", row)
        self._initial_source = source

        self.window_edit = QLineEdit(window)
        self.window_edit.setPlaceholderText("'sandbox', a window title, or a region x,y,w,h")
        self.window_edit.setToolTip("the game window the agent acts on and the overlay covers: 'sandbox', "
                                    "a window title, or a screen region x,y,w,h")
        form.addRow("Game window", self.window_edit)
        self.window_edit.textChanged.connect(lambda _t: self._update_mode_choices())

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
        self.killswitch_label.setToolTip("this key stops the agent and releases every key and button, in any window")
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
        self.record_button.pressed.connect(self._record_button_pressed)
        for b, tip in ((self.start_button, "start the agent with this model, source, window and mode (F5)"),
                       (self.pause_button, "pause the agent (it lets go of every key and button) or resume it (F6)"),
                       (self.stop_button, "stop the agent or replay and release everything (the kill-switch key)"),
                       (self.record_button, "record your own play on the game window into a new session (F7 "
                                            "starts and stops; F9 pauses)")):
            b.setToolTip(tip)
        grid = QGridLayout()
        for i, b in enumerate((self.start_button, self.pause_button, self.stop_button, self.record_button)):
            grid.addWidget(b, 0, i)  # one row: the window stays short enough to show every panel
        form.addRow(grid)
        self.controls = box

    def _build_layout(self, sessions_dir) -> None:
        self.sessions = SessionList(sessions_dir)
        from .corrections import CorrectionRecorder

        self.corrections = CorrectionRecorder(self.sessions.folder)
        self.sessions.replay_requested.connect(lambda p, live: self.replay(p, live))
        self.sessions.error.connect(self.show_error)
        self.panels = LivePanels()
        self.messages = QPlainTextEdit()
        self.messages.setReadOnly(True)
        self.messages.setMaximumBlockCount(500)
        self.messages.setPlaceholderText("messages and errors appear here")
        self.tabs = ScrollingTabs()  # a page taller than the window scrolls (ilbot.gui.scroll_tabs)
        self.tabs.addTab(self.panels, "Live")
        self.tabs.addTab(self.sessions, "Sessions")
        self.train = TrainPanel(sessions_dir=self.sessions.folder, current_model=lambda: self.checkpoint_path)
        self.train.use_model.connect(lambda run: self.load_model(run))
        self.train.message.connect(self.log)
        self.train.error.connect(self.show_error)
        self.tabs.addTab(self.train, "Train")
        msg_box = QGroupBox("Messages")
        QVBoxLayout(msg_box).addWidget(self.messages)
        self.messages.setToolTip("what the app did, and every error (in red)")
        m = self.messages
        m.setMinimumHeight(m.fontMetrics().lineSpacing() * MESSAGE_LINES + 2 * m.frameWidth()
                           + 2 * int(m.document().documentMargin()) + 4)
        tab_tips = {"Live": "what the model plans this tick and what the safety layers did",
                    "Sessions": "your recorded sessions: open, replay, delete",
                    "Train": "build a dataset from sessions, train, evaluate, pick the model"}
        for i in range(self.tabs.count()):
            self.tabs.setTabToolTip(i, tab_tips.get(self.tabs.tabText(i), self.tabs.tabText(i)))
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(msg_box)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setChildrenCollapsible(False)
        self.state_badge = StateBadge()
        central = QWidget()
        cv = QVBoxLayout(central)
        cv.addWidget(self.state_badge)
        cv.addWidget(self.controls)
        cv.addWidget(self.splitter, 1)
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
        self.status = StatusLine(self.statusBar())
        self.notice_label = self.status.notice
        self.state_label = self.status.state
        self.rate_label = self.status.labels["rate"]
        self.latency_label = self.status.labels["latency"]
        self.interventions_label = self.status.labels["interventions"]

    def default_size(self) -> tuple[int, int]:
        """DEFAULT_SIZE, or what fits the screen's free area (never below the layout's minimum)."""
        screen = self.screen() or QApplication.primaryScreen()
        w, h = DEFAULT_SIZE
        if screen is not None:
            free = screen.availableGeometry()
            w, h = min(w, free.width()), min(h, free.height())
        hint = self.minimumSizeHint()
        return max(w, hint.width()), max(h, hint.height())

    # ---------------------------------------------------------------------------------- helpers
    def log(self, text: str) -> None:
        self.messages.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")
        self.message.emit(text)

    def show_error(self, text: str) -> None:
        """An error in the window: the message area (red) and the status bar. The app keeps going."""
        self.errors.append(text)
        self.messages.appendHtml(f'<span style="color:{QColor(200, 30, 30).name()}">'
                                 f'{time.strftime("%H:%M:%S")}  error: {_escape(text)}</span>')
        self.status.show_notice(f"error: {text}")
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
            self._update_mode_choices()
        self.pause_button.setText("Pause (F6)")

    def _update_mode_choices(self) -> None:
        """The Sandbox mode plays only the built-in sandbox game: with another game window it is
        off, and a Sandbox choice becomes Dry run."""
        on_sandbox = self.window_edit.text().strip() in ("", "sandbox")
        if not self.running:
            self.sandbox_radio.setEnabled(on_sandbox)
        if not on_sandbox and self.sandbox_radio.isChecked():
            self.dry_radio.setChecked(True)

    @property
    def running(self) -> bool:
        """A run is going: from its start until its end has been handled (`on_finished`, which
        also fills `last_summary`), so `not running` always comes with the run's summary."""
        return self.thread is not None

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
        self.model_label.setToolTip(path)
        self._save("model", path)
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
        g = resolve_window(spec)
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

        mode = Mode.parse(kw.pop("mode")) if "mode" in kw else self.mode()
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
        # live: what the person does after taking over is recorded as a correction (ilbot.gui.corrections)
        self._correction_source = ((rect.x(), rect.y(), rect.width(), rect.height()), source) if live else None
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
            request = self._request(rect, session=session, mode="live" if live else "dry_run")
        except Exception as e:  # noqa: BLE001
            self.show_error(describe_error(e))
            return False
        self.set_mode(request.mode.value)  # the radios show the mode that runs
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
        thread.state.connect(self._run_state_changed)  # after on_state: badges and the Mode radios
        thread.finished_run.connect(self.on_finished)
        self.run_state, self.run_mode = ("starting", ""), None
        spec = self.window_edit.text().strip()
        if spec not in ("", "sandbox"):
            self.overlay.unfollow()
            self.overlay.align_to(rect)
            if not is_region(spec):  # a window found by title: follow it as it moves
                self._track_timer.start(TRACK_MS)
        self.overlay.set_badge(None)
        self.overlay.clear()
        self.show_state()
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
            g = resolve_window(self.window_edit.text().strip())
        except Exception:  # noqa: BLE001 - the window may be gone for a moment; keep the last place
            return
        self.overlay.align_to(QRect(g.x, g.y, g.width, g.height))

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
        by_reason = interventions(stats)
        self.interventions_label.setText(f"{sum(by_reason.values())} interventions")
        self.panels.show_interventions(by_reason)

    def on_state(self, state: str, reason: str) -> None:
        """The run's state machine moved (ilbot.agent.run): shown as the run reports it, never inferred."""
        from ..agent.run import describe_reason

        text = describe_reason(state, reason)
        self.run_state = (state, reason)
        self._track_correction(state, reason)
        self.pause_button.setText("Resume (F6)" if state == "paused" else "Pause (F6)")
        if state == "paused":
            self.overlay.clear()  # nothing is planned while paused: no old plan on the game
        if state == "paused" and reason == "stale_state":
            self.show_error(text)
        elif state != "stopped":  # the end is logged once, with its figures, by on_finished
            self.log(f"{self.run_kind} {text}")
        self.state_label.setText(f"{self.run_kind}: {text}")

    def _track_correction(self, state: str, reason: str) -> None:
        """The person took over a live run: record them until they hand back (or the run ends)."""
        if state == "paused" and reason == "human_override" and getattr(self, "_correction_source", None):
            rect, source = self._correction_source
            try:
                path = self.corrections.begin(rect, source, self.killswitch_key())
                self.log(f"recording your correction to {path.name} (Resume hands back to the agent)")
            except Exception as e:  # noqa: BLE001 - the run goes on without the recording
                self.show_error(f"cannot record the correction: {describe_error(e)}")
        elif state in ("running", "stopped") and self.corrections.active:
            try:
                self.log(self.corrections.end())
            except Exception as e:  # noqa: BLE001
                self.show_error(f"correction not saved: {describe_error(e)}")
            self.sessions.refresh()

    def on_finished(self, summary: dict) -> None:
        self._track_correction("stopped", summary.get("reason", ""))
        self.last_summary = summary
        th = self.sender() if isinstance(self.sender(), AgentThread) else self.thread
        if th is not None:
            th.wait(2000)
        if th is self.thread:
            self.thread = None
        self._set_running(False)
        self.status.reset_figures()  # no stale figures once stopped
        from ..agent.run import describe_reason

        reason = summary.get("reason") or ("error" if summary.get("error") else self.run_state[1])
        self.run_state = ("stopped", reason)
        self.state_label.setText(f"idle ({self.run_kind} {describe_reason('stopped', reason)})")
        self.overlay.clear()
        self.show_state()
        self.log(end_message(self.run_kind, summary))

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
        if not self.running:  # the overlay shows REC over the game
            if self.window_edit.text().strip() not in ("", "sandbox"):
                self.overlay.unfollow()
                self.overlay.align_to(rect)
            self.overlay.clear()
            self.overlay.show()
            self.overlay.raise_()
        self.show_state()
        self.log(f"recording to {path}")
        return True

    def _check_record_stop(self) -> None:
        if self.recorder is not None and self.recorder.stop_requested.is_set():
            self.stop_recording()
        elif self.recorder is not None:
            self.show_state()  # elapsed time and events

    def _record_button_pressed(self) -> None:
        """The mouse went down on Stop recording: pause the recorder now, so this click (outside
        the game) never reaches the session. Released elsewhere (no click): recording goes on."""
        rec = self.recorder
        if rec is None:
            return
        rec.paused = True

        def released() -> None:
            self.record_button.released.disconnect(on_release)
            QTimer.singleShot(0, lambda: setattr(rec, "paused", False) if self.recorder is rec else None)

        on_release = lambda: released()  # noqa: E731
        self.record_button.released.connect(on_release)

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
        if not self.running:
            self.run_state = ("", "")
            self.state_label.setText("idle")
            self.overlay.hide()
        self.show_state()
        self.log(f"recording stopped: {path}" + (f" ({summary})" if summary else ""))
        return path

    # ---------------------------------------------------------------------------------- state
    def recording_progress(self) -> tuple[float, int] | None:
        """(seconds recorded, events recorded) while recording, else None."""
        rec = self.recorder
        if rec is None or not getattr(rec, "start_ns", None):
            return None
        c = rec.counters
        return (time.monotonic_ns() - rec.start_ns) / 1e9, sum(int(c.get(k, 0)) for k in ("CLICK", "KEY", "SCROLL", "MOVE"))

    def current_badge(self):
        """The state badge for what runs now (ilbot.gui.state_badge.badge_for)."""
        state, reason = self.run_state
        return badge_for(self.run_mode or self.mode(), state, reason, kind=self.run_kind,
                         recording=self.recording_progress())

    def show_state(self) -> None:
        """Show the current badge in the window and on the overlay (and the recording's progress
        in the status bar while only recording)."""
        badge = self.current_badge()
        self.state_badge.show_badge(badge)
        self.overlay.set_badge(badge)
        rec = self.recording_progress()
        if rec is not None and not self.running:
            self.state_label.setText("recording: " + recording_text(*rec)[len("REC "):])

    def _run_state_changed(self, state: str, reason: str) -> None:
        """The run reported a state: the Mode radios show the mode the run actually has, and the
        badges show the state (on_state has already recorded it)."""
        if self.sender() is not None and self.sender() is not self.thread:
            return  # a finished run's late signal
        mode = getattr(getattr(self.thread, "runtime", None), "mode", None)
        if mode is not None:
            self.run_mode = mode
            self.set_mode(mode.value)
        self.show_state()

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
        if self.persist:
            saved_settings.save_safety(config)
        self.log("safety limits updated" + (" (take effect at the next start)" if self.running else ""))

    def _save(self, name: str, value) -> None:
        if self.persist:
            saved_settings.put(name, value)

    def save_layout(self) -> None:
        """Remember the window's geometry, the splitter and the open tab."""
        self._save("geometry", self.saveGeometry())
        self._save("splitter", self.splitter.saveState())
        self._save("tab", self.tabs.tabText(self.tabs.currentIndex()))

    def _restore_layout(self) -> None:
        geometry, splitter, tab = (saved_settings.get(k) for k in ("geometry", "splitter", "tab"))
        if geometry is not None:
            self.restoreGeometry(geometry)
        if splitter is not None:
            self.splitter.restoreState(splitter)
        for i in range(self.tabs.count()):
            if tab and self.tabs.tabText(i) == tab:
                self.tabs.setCurrentIndex(i)

    # ---------------------------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:  # noqa: N802
        if self.persist:
            self.save_layout()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop everything this window started: agent, recorder, overlay, sandbox. Its
        application-wide shortcuts go dead, so a window left over (not yet deleted) never makes
        another window's keys ambiguous."""
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(False)
        for action in self.menu_actions.values():
            action.setEnabled(False)
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

