"""An evaluation report in the app: the tables of `report.json` and the PNG plots beside it.

`ReportView.load(folder)` reads what `ilbot eval --out FOLDER` wrote: one table per slot kind
(in-window, look-ahead) with the metrics `ilbot eval` prints (plus event accuracy) for the model
and every baseline, the best value of each row in bold; a line on
free running and what was evaluated; then each plot, scaled to the view's width. A folder without
a readable report.json shows its one-line reason instead.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFont, QPixmap
from PyQt6.QtWidgets import (QAbstractItemView, QHeaderView, QLabel, QScrollArea, QTableWidget, QTableWidgetItem,
                             QVBoxLayout, QWidget)

from ..eval.headline import HEADLINE

KINDS = (("in_window", "In-window slots"), ("lookahead", "Look-ahead slots"))
# (report key, row label, format): the rows `ilbot eval` prints
ROWS = list(HEADLINE)
LOWER_IS_BETTER = {"dt_mae_q50_ms", "xy_mae_px", "xy_nll", "event_brier", "event_ece", "dt_wis_ms", "x_crps_px",
                   "y_crps_px"}
HIGHER_IS_BETTER = {"event_accuracy", "event_macro_f1"}
PLOT_TITLES = {"confusion.png": "Event confusion (rows: true type)", "dt_calibration.png": "Timing calibration",
               "xy_calibration.png": "Position calibration",
               "coverage.png": "Coverage per session, with its 90 % session-bootstrap interval",
               "events_per_tick.png": "Events per tick, real vs sampled"}


def cell_text(value, fmt: str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict):
        return "/".join(f"{v:.1f}" for v in value.values())
    if isinstance(value, float) and not math.isfinite(value):
        return "—"
    return fmt.format(value) if fmt else str(value)


class ReportView(QScrollArea):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.folder: Path | None = None
        self.report: dict = {}
        self.tables: dict[str, QTableWidget] = {}
        self.plots: dict[str, QLabel] = {}
        self._pixmaps: dict[str, QPixmap] = {}
        self.clear("no report shown: evaluate a model, then Show report")

    def _reset(self) -> QVBoxLayout:
        body = QWidget()
        layout = QVBoxLayout(body)
        self.setWidget(body)
        self.tables, self.plots, self._pixmaps = {}, {}, {}
        return layout

    def clear(self, text: str = "") -> None:
        layout = self._reset()
        self.title = QLabel(text)
        self.title.setWordWrap(True)
        layout.addWidget(self.title)
        layout.addStretch(1)
        self.folder, self.report = None, {}

    def load(self, folder) -> bool:
        """Show the report in `folder`; False (and the reason on the view) when there is none."""
        folder = Path(folder)
        try:
            report = json.loads((folder / "report.json").read_text())
            if not isinstance(report, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            self.clear(f"{folder}: no readable report.json ({e.__class__.__name__}: {e})")
            return False
        layout = self._reset()
        self.folder, self.report = folder, report
        meta = report.get("meta", {})
        model = Path(str(meta.get("model", "?")))
        if model.name in ("best", "last"):
            model = Path(model.parent.name) / model.name
        self.title = QLabel(f"<b>{folder.name}</b> — model {model}, "
                            f"split {meta.get('split', '?')}, {meta.get('n_windows', '?')} windows")
        self.title.setWordWrap(True)
        self.title.setToolTip(str(folder))
        layout.addWidget(self.title)
        for kind, heading in KINDS:
            if kind in report:
                n = report.get("n_slots", {}).get(kind, "?")
                layout.addWidget(QLabel(f"{heading} ({n} slots)"))
                table = self._table(report[kind])
                self.tables[kind] = table
                layout.addWidget(table)
        fr = report.get("free_running") or {}
        if fr:
            dt = fr.get("dt_wasserstein_ms")
            idle = fr.get("idle_tick_rate") or {}
            text = (f"Free running ({fr.get('n_ticks')} ticks): events/tick W1 "
                    f"{cell_text(fr.get('events_per_tick_wasserstein'), '{:.3f}')}, dt W1 {cell_text(dt, '{:.1f}')} ms, "
                    f"idle ticks {cell_text(idle.get('model'), '{:.2f}')} (real {cell_text(idle.get('real'), '{:.2f}')})")
            label = QLabel(text)
            label.setWordWrap(True)
            layout.addWidget(label)
        for png in sorted(folder.glob("*.png")):
            pix = QPixmap(str(png))
            if pix.isNull():
                continue
            layout.addWidget(QLabel(PLOT_TITLES.get(png.name, png.stem.replace("_", " "))))
            label = QLabel()
            label.setAlignment(Qt.AlignmentFlag.AlignLeft)
            self._pixmaps[png.name] = pix
            self.plots[png.name] = label
            layout.addWidget(label)
        layout.addStretch(1)
        self._scale_plots()
        return True

    def _table(self, section: dict) -> QTableWidget:
        cols = (["model"] if "model" in section else []) + list(section.get("baselines", {}))
        values = {"model": section.get("model", {})} | section.get("baselines", {})
        table = QTableWidget(len(ROWS), len(cols))
        table.setHorizontalHeaderLabels(cols)
        table.setVerticalHeaderLabels([label for _, label, _ in ROWS])
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        bold = QFont()
        bold.setBold(True)
        for r, (key, _, fmt) in enumerate(ROWS):
            numbers = {c: values[c].get(key) for c in cols if isinstance(values[c].get(key), (int, float))}
            best = None
            if numbers and key in LOWER_IS_BETTER:
                best = min(numbers, key=numbers.get)
            elif numbers and key in HIGHER_IS_BETTER:
                best = max(numbers, key=numbers.get)
            for c, name in enumerate(cols):
                item = QTableWidgetItem(cell_text(values[name].get(key), fmt))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if name == best:
                    item.setFont(bold)
                table.setItem(r, c, item)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        row_h = table.verticalHeader().defaultSectionSize()
        header_h = table.horizontalHeader().sizeHint().height()
        scroll_h = table.horizontalScrollBar().sizeHint().height()  # room for a horizontal scroll bar
        height = header_h + row_h * table.rowCount() + scroll_h + 2 * table.frameWidth()
        table.setMinimumHeight(height)
        table.setMaximumHeight(height)
        return table

    def cell(self, kind: str, metric_label: str, column: str) -> str:
        """The text shown for one metric (row label) and model/baseline (column) — for tests."""
        table = self.tables[kind]
        rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
        cols = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
        return table.item(rows.index(metric_label), cols.index(column)).text()

    def _scale_plots(self) -> None:
        width = max(self.viewport().width() - 24, 200)
        for name, label in self.plots.items():
            pix = self._pixmaps[name]
            label.setPixmap(pix.scaledToWidth(min(width, pix.width()), Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._scale_plots()
