"""The session list: recordings (`*.ilbot.sqlite`) in a folder, with open, replay and delete.

`SessionList` shows one row per store (name, events, ticks, created), newest first, and emits
`replay_requested(path, live)` and `error(message)`; the main window connects them. Opening a
store shows a readable preview (ilbot.gui.session_preview: length, events by type, ticks, window,
events over time); a damaged store shows its one-line error instead.
Deleting asks for confirmation and removes the store with its WAL/SHM companions.

The folder defaults to `~/.ilbot/sessions` (override with ILBOT_SESSIONS or the folder button).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QFileDialog, QGridLayout, QGroupBox, QLabel, QMessageBox, QPushButton,
                             QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from ..errors import UserError

SUFFIX = ".ilbot.sqlite"
COMPANIONS = ("-wal", "-shm", "-journal")  # SQLite files that live beside a store


def default_sessions_dir() -> Path:
    return Path(os.environ.get("ILBOT_SESSIONS") or Path.home() / ".ilbot" / "sessions")


@dataclass
class SessionInfo:
    path: Path
    n_events: int | None = None
    n_ticks: int | None = None
    created: str = ""
    meta: dict | None = None
    error: str = ""  # why it could not be read (a damaged store is listed, not hidden)


def read_info(path: Path) -> SessionInfo:
    from ..data.store import open_session

    try:
        with open_session(path) as s:
            return SessionInfo(path, s.n_events, s.n_ticks, str(s.meta.get("created", "")), dict(s.meta))
    except UserError as e:
        return SessionInfo(path, error=str(e))


def list_sessions(folder: Path) -> list[SessionInfo]:
    """The stores in `folder`, newest first (by modification time)."""
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    return [read_info(p) for p in paths]


def delete_session(path: Path) -> None:
    path.unlink()
    for suffix in COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.unlink()


def ask(parent: QWidget, title: str, text: str) -> bool:
    """A Yes/No confirmation (default No)."""
    answer = QMessageBox.question(parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


NO_SESSIONS = "no sessions yet (Record, F7, records one here)"
BUTTON_TIPS = {"Folder…": "choose the folder the app records into and lists",
               "Refresh": "read the folder again",
               "Open": "a preview of the selected session: length, events, events over time",
               "Replay (dry)": "show the selected session's input through the safety layers (nothing is performed)",
               "Replay (live)": "perform the selected session's input on the game (asks first)",
               "Delete": "delete the selected session file (asks first)"}


class SessionList(QGroupBox):
    replay_requested = pyqtSignal(str, bool)  # path, live
    error = pyqtSignal(str)

    def __init__(self, folder: Path | None = None, parent: QWidget | None = None):
        super().__init__("Sessions", parent)
        self.folder = Path(folder) if folder else default_sessions_dir()
        self.infos: list[SessionInfo] = []
        layout = QVBoxLayout(self)
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.folder_label)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["session", "events", "ticks", "created"])
        self.tree.setRootIsDecorated(False)
        self.tree.setToolTip("the sessions recorded into this folder: double-click one for its preview")
        self.tree.itemDoubleClicked.connect(lambda *_: self.open_selected())
        layout.addWidget(self.tree)
        row = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for name, slot in (("Folder…", self.choose_folder), ("Refresh", self.refresh), ("Open", self.open_selected),
                           ("Replay (dry)", lambda: self.replay_selected(False)),
                           ("Replay (live)", lambda: self.replay_selected(True)), ("Delete", self.delete_selected)):
            b = QPushButton(name)
            b.setToolTip(BUTTON_TIPS[name])
            b.clicked.connect(lambda _=False, s=slot: s())
            row.addWidget(b, len(self.buttons) // 3, len(self.buttons) % 3)
            self.buttons[name] = b
        layout.addLayout(row)
        self.refresh()

    # -- model ------------------------------------------------------------------------------
    def set_folder(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.refresh()

    def new_session_path(self, stem: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{stem}{SUFFIX}"
        n = 1
        while path.exists():
            path = self.folder / f"{stem}-{n}{SUFFIX}"
            n += 1
        return path

    def refresh(self) -> None:
        self.infos = list_sessions(self.folder)
        self.folder_label.setText(str(self.folder) if self.infos else f"{self.folder}: {NO_SESSIONS}")
        self.tree.clear()
        for info in self.infos:
            if info.error:
                cols = [info.path.name, "—", "—", f"unreadable: {info.error}"]
            else:
                cols = [info.path.name, str(info.n_events), str(info.n_ticks), info.created]
            item = QTreeWidgetItem(cols)
            item.setData(0, Qt.ItemDataRole.UserRole, str(info.path))
            item.setToolTip(0, str(info.path))
            self.tree.addTopLevelItem(item)
        for column in range(self.tree.columnCount()):  # whole names, not "sandbox-dem…"
            self.tree.resizeColumnToContents(column)

    def paths(self) -> list[Path]:
        return [i.path for i in self.infos]

    def select(self, path: Path) -> None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if Path(item.data(0, Qt.ItemDataRole.UserRole)) == Path(path):
                self.tree.setCurrentItem(item)
                return
        raise KeyError(path)

    def selected(self) -> Path | None:
        item = self.tree.currentItem()
        return Path(item.data(0, Qt.ItemDataRole.UserRole)) if item is not None else None

    # -- actions ----------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Sessions folder", str(self.folder))
        if folder:
            self.set_folder(Path(folder))

    def _need_selection(self) -> Path | None:
        path = self.selected()
        if path is None:
            self.error.emit("select a session first")
        return path

    def open_selected(self) -> SessionInfo | None:
        path = self._need_selection()
        if path is None:
            return None
        from ..data.session_summary import summarize_session
        from .session_preview import TIMELINE_BINS, SessionPreview

        info = read_info(path)
        if info.error:
            self.error.emit(info.error)
            return info
        try:
            summary = summarize_session(path, bins=TIMELINE_BINS)
        except UserError as e:
            self.error.emit(str(e))
            return SessionInfo(path, error=str(e))
        box = SessionPreview(summary, parent=self)
        box.show()
        self.info_box = box
        return info

    def replay_selected(self, live: bool) -> None:
        path = self._need_selection()
        if path is not None:
            self.replay_requested.emit(str(path), bool(live))

    def delete_selected(self) -> bool:
        path = self._need_selection()
        if path is None:
            return False
        if not ask(self, "Delete session", f"Delete {path.name}? This cannot be undone."):
            return False
        try:
            delete_session(path)
        except OSError as e:
            self.error.emit(f"{path}: cannot delete ({e.strerror})")
            return False
        self.refresh()
        return True
