"""A readable preview of one session store (Sessions → Open).

`SessionPreview(summary)` is a non-modal dialog: the length, events in all and by type, ticks and
tick length, the recorded game window, source, user, creation time and `correction` segments,
then a small plot of events over time (one curve per type, events per second), then the rest of
the store's meta as key/value rows (nested values as `a.b`), never raw JSON.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import (QDialog, QDialogButtonBox, QFormLayout, QLabel, QTreeWidget, QTreeWidgetItem,
                             QVBoxLayout, QWidget)

from ..data.progress import format_duration
from ..data.schema import EVENT_NAMES
from ..data.session_summary import SessionSummary

TIMELINE_BINS = 60
TYPE_COLOURS = {"CLICK": (210, 40, 40), "KEY": (40, 110, 200), "SCROLL": (150, 60, 180), "MOVE": (40, 150, 70)}
SHOWN_META = ("window", "source", "user", "created", "tick_ms")  # shown in the form above the meta rows


def flatten(meta: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested meta as (dotted key, text) rows."""
    rows = []
    for key, value in meta.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows += flatten(value, f"{name}.")
        elif isinstance(value, list):
            rows.append((name, ", ".join(str(v) for v in value) if len(value) <= 20 else f"{len(value)} items"))
        else:
            rows.append((name, "" if value is None else str(value)))
    return rows


def describe(summary: SessionSummary) -> dict[str, str]:
    """The form's rows: label → text."""
    s = summary
    by_type = ", ".join(f"{name} {s.events_by_type.get(name, 0):,}" for name in EVENT_NAMES)
    rows = {"Length": f"{format_duration(s.duration_s)} ({s.duration_s:.1f} s)",
            "Events": f"{s.n_events:,} ({by_type})",
            "Ticks": (f"{s.n_ticks:,}" + (f", {float(s.meta['tick_ms']):g} ms each" if _number(s.meta.get("tick_ms")) else "")
                      if s.n_ticks else "none recorded (no game state)")}
    win = s.window
    rows["Window"] = f"{win[2]:g}×{win[3]:g} at ({win[0]:g}, {win[1]:g})" if win else "not recorded"
    for key, label in (("source", "Source"), ("user", "User"), ("created", "Created")):
        if s.meta.get(key) not in (None, ""):
            rows[label] = str(s.meta[key])
    rows["Corrections"] = "no segments table" if s.corrections is None else f"{s.corrections} segment(s)"
    return rows


def _number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return not isinstance(v, bool)


class SessionPreview(QDialog):
    def __init__(self, summary: SessionSummary, parent: QWidget | None = None):
        super().__init__(parent)
        self.summary = summary
        self.setWindowTitle(f"Session {summary.path.name}")
        self.setModal(False)
        v = QVBoxLayout(self)
        title = QLabel(f"<b>{summary.path.name}</b>")
        title.setToolTip(str(summary.path))
        v.addWidget(title)
        form = QFormLayout()
        self.rows = describe(summary)
        self.labels: dict[str, QLabel] = {}
        for label, text in self.rows.items():
            w = QLabel(text)
            w.setWordWrap(True)
            self.labels[label] = w
            form.addRow(label, w)
        v.addLayout(form)

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(140)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.setLabel("left", "events/s")
        self.plot.addLegend(offset=(-10, 10), brush=(255, 255, 255, 210), labelTextColor=(40, 40, 40))
        self.curves: dict[str, pg.PlotDataItem] = {}
        if summary.timeline.size and summary.bin_s > 0:
            edges = np.arange(summary.timeline.shape[1] + 1) * summary.bin_s
            for i, name in enumerate(EVENT_NAMES):
                counts = summary.timeline[i]
                if counts.any():
                    self.curves[name] = self.plot.plot(edges, counts / summary.bin_s, stepMode="center",
                                                       pen=pg.mkPen(TYPE_COLOURS[name], width=2), name=name)
        else:
            self.plot.setTitle("no events")
        v.addWidget(self.plot, 1)

        self.meta_tree = QTreeWidget()
        self.meta_tree.setHeaderLabels(["meta", "value"])
        self.meta_tree.setRootIsDecorated(False)
        for key, text in flatten({k: val for k, val in summary.meta.items() if k not in SHOWN_META}):
            self.meta_tree.addTopLevelItem(QTreeWidgetItem([key, text]))
        self.meta_tree.resizeColumnToContents(0)
        self.meta_tree.setMaximumHeight(130)
        v.addWidget(self.meta_tree)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        v.addWidget(buttons)
        self.resize(520, 520)
