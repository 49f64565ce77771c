"""The models list: the training runs in a runs folder, with each one's headline figures.

A run is a folder with `best/` or `last/` checkpoints (`ilbot train --out RUN`). For each run the
list shows its steps, best validation loss and — when it has been evaluated — the in-window
event accuracy, event macro-F1, dt q50 MAE and xy MAE of its newest report (`RUN/reports/*/` as
the app writes them, or `RUN/report/`). The run whose checkpoint the app has loaded is marked
"● in use".

`ModelsList` emits `use_requested(run path)` ("Use this model"; the main window loads it),
`evaluate_requested(run path)`, `selected(run path)` and `report_requested(report folder)`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem,
                             QVBoxLayout, QWidget)

REPORTS = "reports"  # RUN/reports/<stamp>/report.json: the app's evaluations of a run
HEADLINE = (("event_accuracy", "event acc", "{:.3f}"), ("event_macro_f1", "macro-F1", "{:.3f}"),
            ("dt_mae_q50_ms", "dt q50 MAE ms", "{:.1f}"), ("xy_mae_px", "xy MAE px", "{:.1f}"))
COLUMNS = ["", "run", "steps", "val loss", *[label for _, label, _ in HEADLINE]]
IN_USE = "● in use"


@dataclass
class RunInfo:
    path: Path
    steps: int | None = None
    best_val: float | None = None
    resumable: bool = False
    report: Path | None = None  # the newest report folder
    figures: dict = field(default_factory=dict)  # HEADLINE keys → in-window model value


def is_run(folder: Path) -> bool:
    return any((folder / sub / "model.safetensors").is_file() for sub in ("best", "last"))


def latest_report(run: Path) -> Path | None:
    """The newest folder holding a report.json: RUN/reports/*/ or RUN/report/."""
    found = [p.parent for p in (run / REPORTS).glob("*/report.json")] + \
            [p.parent for p in [run / "report" / "report.json"] if p.is_file()]
    return max(found, key=lambda p: (p / "report.json").stat().st_mtime) if found else None


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _best_val_from_metrics(run: Path) -> float | None:
    best = None
    try:
        lines = (run / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if doc.get("kind") == "val" and isinstance(doc.get("loss"), (int, float)):
            best = doc["loss"] if best is None else min(best, doc["loss"])
    return best


def read_run(run: Path) -> RunInfo:
    run = Path(run)
    info = RunInfo(run)
    state = _read_json(run / "last" / "train_state.json")
    info.resumable = bool(state) and (run / "last" / "train_state.safetensors").is_file()
    if isinstance(state.get("step"), int):
        info.steps = state["step"]
    best = state.get("best_val")
    info.best_val = best if isinstance(best, (int, float)) else _best_val_from_metrics(run)
    info.report = latest_report(run)
    if info.report is not None:
        model = _read_json(info.report / "report.json").get("in_window", {}).get("model", {})
        info.figures = {k: model[k] for k, _, _ in HEADLINE if isinstance(model.get(k), (int, float))}
    return info


def list_runs(folder: Path) -> list[RunInfo]:
    """The runs directly in `folder`, newest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and is_run(p)]
    runs.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [read_run(p) for p in runs]


def same_model(run: Path, model_path: str | Path | None) -> bool:
    """Whether `model_path` (a run folder or one of its checkpoints) is this run."""
    if not model_path:
        return False
    try:
        m, r = Path(model_path).resolve(), Path(run).resolve()
    except OSError:
        return False
    return m == r or (m.parent == r and m.name in ("best", "last"))


def _fmt(value, fmt: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return fmt.format(value)


class ModelsList(QWidget):
    use_requested = pyqtSignal(str)
    evaluate_requested = pyqtSignal(str)
    report_requested = pyqtSignal(str)
    selected = pyqtSignal(str)

    def __init__(self, folder: Path, current_model: Callable[[], str | None] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.folder = Path(folder)
        self.current_model = current_model or (lambda: None)
        self.runs: list[RunInfo] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.folder_label.setToolTip("the runs folder; command-line runs: tensorboard --logdir on it shows their curves")
        row.addWidget(self.folder_label, 1)
        for text, slot, tip in (("Folder…", self.choose_folder, "list the runs of another folder"),
                                ("Refresh", self.refresh, "read the runs folder again")):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, s=slot: s())
            row.addWidget(b)
        layout.addLayout(row)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(COLUMNS)
        self.tree.setRootIsDecorated(False)
        self.tree.setToolTip("in-window figures of the newest report; Evaluate makes one")
        self.tree.currentItemChanged.connect(lambda *_: self._selection_changed())
        self.tree.itemDoubleClicked.connect(lambda *_: self.show_report())
        layout.addWidget(self.tree, 1)
        row = QHBoxLayout()
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("load this run's best checkpoint into the agent")
        self.use_button.clicked.connect(self.use_selected)
        self.eval_button = QPushButton("Evaluate")
        self.eval_button.setToolTip("ilbot eval on the run's dataset: report tables and plots")
        self.eval_button.clicked.connect(self.evaluate_selected)
        self.report_button = QPushButton("Show report")
        self.report_button.setToolTip("the newest evaluation report of this run: its tables and plots")
        self.report_button.clicked.connect(self.show_report)
        for b in (self.use_button, self.eval_button, self.report_button):
            row.addWidget(b)
        layout.addLayout(row)
        self.refresh()

    def set_folder(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.refresh()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", str(self.folder))
        if folder:
            self.set_folder(Path(folder))

    def refresh(self) -> None:
        keep = self.selected_run()
        self.folder_label.setText(str(self.folder))
        self.runs = list_runs(self.folder)
        self.tree.clear()
        current = self.current_model()
        for info in self.runs:
            cols = [IN_USE if same_model(info.path, current) else "", info.path.name,
                    "—" if info.steps is None else str(info.steps), _fmt(info.best_val, "{:.4g}"),
                    *[_fmt(info.figures.get(k), fmt) for k, _, fmt in HEADLINE]]
            item = QTreeWidgetItem(cols)
            item.setData(0, Qt.ItemDataRole.UserRole, str(info.path))
            item.setToolTip(1, str(info.path) + ("" if info.report is None else f"\nreport: {info.report}"))
            self.tree.addTopLevelItem(item)
        for i in range(len(COLUMNS)):
            self.tree.resizeColumnToContents(i)
        if keep is not None:
            self.select(keep, quiet=True)
        self._selection_changed(emit=False)

    def mark_in_use(self) -> None:
        """Re-read which run is loaded (after the main window loaded a model)."""
        current = self.current_model()
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setText(0, IN_USE if same_model(Path(item.data(0, Qt.ItemDataRole.UserRole)), current) else "")

    def in_use(self) -> Path | None:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.text(0) == IN_USE:
                return Path(item.data(0, Qt.ItemDataRole.UserRole))
        return None

    def info(self, run: Path) -> RunInfo | None:
        for info in self.runs:
            if info.path == Path(run):
                return info
        return None

    def select(self, run: Path, quiet: bool = False) -> bool:
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if Path(item.data(0, Qt.ItemDataRole.UserRole)) == Path(run):
                if quiet:
                    self.tree.blockSignals(True)
                self.tree.setCurrentItem(item)
                self.tree.blockSignals(False)
                return True
        return False

    def selected_run(self) -> Path | None:
        item = self.tree.currentItem()
        return Path(item.data(0, Qt.ItemDataRole.UserRole)) if item is not None else None

    def _selection_changed(self, emit: bool = True) -> None:
        run = self.selected_run()
        info = self.info(run) if run is not None else None
        for b in (self.use_button, self.eval_button):
            b.setEnabled(run is not None)
        self.report_button.setEnabled(info is not None and info.report is not None)
        if emit and run is not None:
            self.selected.emit(str(run))

    def use_selected(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.use_requested.emit(str(run))
            self.mark_in_use()

    def evaluate_selected(self) -> None:
        run = self.selected_run()
        if run is not None:
            self.evaluate_requested.emit(str(run))

    def show_report(self) -> None:
        run = self.selected_run()
        info = self.info(run) if run is not None else None
        if info is not None and info.report is not None:
            self.report_requested.emit(str(info.report))
