"""The File and Help menus of the main window.

- File → Quit (Ctrl+Q, application-wide, so it also works while the game window has focus):
  closes the window, which stops the agent, the recorder and any training child first.
- Help → Keyboard shortcuts (F1): a dialog listing every shortcut of the app.
- Help → About ilbot: the version, what it does and the live-mode warning.

File is the first menu and Help the last, whatever menus the window adds in between.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import QMainWindow, QMessageBox

from .. import __version__


def shortcuts(kill_key: str) -> list[tuple[str, str]]:
    """(keys, what they do) for every shortcut of the app."""
    return [
        ("F5", "start the agent"),
        ("F6", "pause / resume the agent"),
        ("F7", "start / stop recording (the key itself is never recorded)"),
        ("F9", "pause / resume the recording"),
        (kill_key.upper(), "stop the agent or replay and release every key and button (the kill switch)"),
        ("Ctrl+T", "open the Train tab"),
        ("F1", "this list"),
        ("Ctrl+Q", "quit (stops everything first)"),
    ]


def about_text() -> str:
    return (f"<b>ilbot {__version__}</b><br>"
            "Learns how you play a tick-based desktop game and plays in your style: record your play, "
            "train a model on it, then watch it play (dry run or the sandbox), or let it play live.<br><br>"
            "Live mode performs real input; the kill switch stops it. Automating an online game can break "
            "its terms of service: you answer for where you run live mode.")


def install(win: QMainWindow, kill_key) -> dict[str, QAction]:
    """Add File (first) and Help (last) to `win`'s menu bar; `kill_key()` names the kill-switch key."""
    bar = win.menuBar()
    first = bar.actions()[0] if bar.actions() else None
    file_menu = bar.addMenu("&File")
    if first is not None:
        bar.insertMenu(first, file_menu)
    quit_action = QAction("&Quit", win)
    quit_action.setShortcut(QKeySequence("Ctrl+Q"))
    quit_action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
    quit_action.setToolTip("stop the agent, the recorder and any training, then close the app")
    quit_action.triggered.connect(win.close)
    file_menu.addAction(quit_action)
    win.addAction(quit_action)  # the shortcut works while the menu bar is hidden too

    help_menu = bar.addMenu("&Help")
    keys_action = QAction("&Keyboard shortcuts", win)
    keys_action.setShortcut(QKeySequence("F1"))
    keys_action.triggered.connect(lambda: show_shortcuts(win, kill_key()))
    about_action = QAction("&About ilbot", win)
    about_action.triggered.connect(lambda: show_about(win))
    help_menu.addAction(keys_action)
    help_menu.addAction(about_action)
    win.addAction(keys_action)
    return {"quit": quit_action, "shortcuts": keys_action, "about": about_action}


def show_shortcuts(win, kill_key: str) -> QMessageBox:
    rows = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{what}</td></tr>" for k, what in shortcuts(kill_key))
    box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard shortcuts", f"<table>{rows}</table>", parent=win)
    box.setModal(False)
    box.show()
    win.help_box = box
    return box


def show_about(win) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, "About ilbot", about_text(), parent=win)
    box.setModal(False)
    box.show()
    win.help_box = box
    return box
