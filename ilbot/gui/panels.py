"""Live panels beside the controls: what the model thinks this tick and what happened.

- `EventProbPanel`: P(CLICK, KEY, SCROLL, MOVE) of the next planned event, one bar per type in
  the overlay's colours.
- `TimeQuantilePanel`: q10 / q50 / q90 of each planned event's dt this tick.
- `RecentActionsPanel`: the last actions performed (or, in dry run, shown), newest first.
- `InterventionsPanel`: safety interventions counted by reason, in plain words
  (`ilbot.safety.reason_names`: `time_floor` shows as "too soon after the last action").

`LivePanels` holds all four; the main window feeds it from the agent thread's signals. Each panel
keeps only plain Python state so the tests can read what it shows. Each panel has a tooltip
saying what it shows; the quantile table always has room for `MIN_ROWS` rows.
"""

from __future__ import annotations

from collections import deque
from typing import Mapping, Sequence

from PyQt6.QtWidgets import (QGroupBox, QLabel, QListWidget, QProgressBar, QTableWidget,
                             QTableWidgetItem, QVBoxLayout, QGridLayout, QWidget, QHeaderView)

from ..data.action import PlannedAction
from ..data.keys import KEY_VOCAB
from ..data.schema import EVENT_NAMES, EventType
from ..safety.reason_names import describe_intervention
from .overlay import EVENT_COLOURS

MIN_ROWS = 5  # the quantile table shows at least this many rows without scrolling
ROW_PX = 20


def describe_action(a: PlannedAction) -> str:
    """One line for an action: type, position and the type's own field."""
    kind = EventType(int(a.type))
    what = f"{kind.name:<6} ({a.x:.0f}, {a.y:.0f})"
    if kind == EventType.CLICK:
        what += f" button {a.button} hold {a.hold_ms:.0f} ms"
    elif kind == EventType.KEY:
        name = KEY_VOCAB[a.key_id] if 0 <= a.key_id < len(KEY_VOCAB) else a.key_id
        what += f" {('', 'press', 'release')[a.key_action] if 0 <= a.key_action < 3 else a.key_action} {name}"
    elif kind == EventType.SCROLL:
        what += " up" if a.scroll_y == 1 else " down"
    return f"+{a.t_ms:6.0f} ms  {what}  [{a.source}]"


class EventProbPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Next event type", parent)
        self.setToolTip("the model's probability of each type for the next planned event (overlay colours)")
        grid = QGridLayout(self)
        self.bars: list[QProgressBar] = []
        for i, name in enumerate(EVENT_NAMES):
            grid.addWidget(QLabel(name), i, 0)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setFormat("%p%")
            r, g, b = EVENT_COLOURS[EventType(i)]
            bar.setStyleSheet(f"QProgressBar::chunk {{ background-color: rgb({r},{g},{b}); }}")
            grid.addWidget(bar, i, 1)
            self.bars.append(bar)
        self.probs: tuple[float, ...] = ()

    def show_plan(self, actions: Sequence[PlannedAction]) -> None:
        probs = actions[0].event_probs if actions and len(actions[0].event_probs) == 4 else ()
        self.probs = tuple(float(p) for p in probs)
        for i, bar in enumerate(self.bars):
            bar.setValue(int(round(1000 * self.probs[i])) if self.probs else 0)


class TimeQuantilePanel(QGroupBox):
    COLUMNS = ("type", "t (ms)", "q10", "q50", "q90")

    def __init__(self, parent: QWidget | None = None, max_rows: int = 8):
        super().__init__("Time quantiles (dt, ms)", parent)
        self.setToolTip("each planned event this tick: its type, due time after the tick start, and the "
                        "q10 / q50 / q90 of its time since the previous event")
        self.max_rows = max_rows
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(ROW_PX)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        frame = 2 * self.table.frameWidth()
        self.table.setMinimumHeight(self.table.horizontalHeader().sizeHint().height() + MIN_ROWS * ROW_PX + frame)
        layout.addWidget(self.table)
        self.rows: list[tuple] = []

    def show_plan(self, actions: Sequence[PlannedAction]) -> None:
        self.rows = []
        for a in actions[: self.max_rows]:
            q = tuple(float(v) for v in a.time_q[:3]) if len(a.time_q) >= 3 else (float("nan"),) * 3
            self.rows.append((EventType(int(a.type)).name, float(a.t_ms)) + q)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, v in enumerate(row):
                text = v if isinstance(v, str) else ("–" if v != v else f"{v:.0f}")  # v != v: NaN (no quantiles)
                self.table.setItem(r, c, QTableWidgetItem(text))


class RecentActionsPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None, keep: int = 50):
        super().__init__("Recent actions", parent)
        self.setToolTip("the last actions performed (sandbox, live) or shown (dry run), newest first")
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        layout.addWidget(self.list)
        self.keep = keep
        self.lines: deque[str] = deque(maxlen=keep)

    def add(self, actions: Sequence[PlannedAction], tick: int | None = None) -> None:
        for a in actions:
            line = (f"tick {tick}  " if tick is not None else "") + describe_action(a)
            self.lines.appendleft(line)
            self.list.insertItem(0, line)
        while self.list.count() > self.keep:
            self.list.takeItem(self.list.count() - 1)

    def clear(self) -> None:
        self.lines.clear()
        self.list.clear()


class InterventionsPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Safety interventions", parent)
        self.setToolTip("how often each safety layer held back or changed an action this run, by reason")
        layout = QVBoxLayout(self)
        self.total_label = QLabel("none")
        self.list = QListWidget()
        layout.addWidget(self.total_label)
        layout.addWidget(self.list)
        self.counts: dict[str, int] = {}

    def show_counts(self, counts: Mapping[str, int]) -> None:
        self.counts = {str(k): int(v) for k, v in counts.items() if int(v)}
        self.list.clear()
        for reason, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])):
            self.list.addItem(f"{describe_intervention(reason)}: {n}")
            self.list.item(self.list.count() - 1).setToolTip(reason)
        total = sum(self.counts.values())
        self.total_label.setText(f"{total} in total" if total else "none")


class LivePanels(QWidget):
    """The four live panels in a grid; `show_plan`, `add_performed`, `show_interventions`."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QGridLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.probs = EventProbPanel()
        self.quantiles = TimeQuantilePanel()
        self.recent = RecentActionsPanel()
        self.interventions = InterventionsPanel()
        layout.addWidget(self.probs, 0, 0)
        layout.addWidget(self.interventions, 0, 1)
        layout.addWidget(self.quantiles, 1, 0, 1, 2)
        layout.addWidget(self.recent, 2, 0, 1, 2)

    def show_plan(self, tick: int, actions: Sequence[PlannedAction]) -> None:
        self.probs.show_plan(actions)
        self.quantiles.show_plan(actions)

    def add_performed(self, tick: int | None, actions: Sequence[PlannedAction]) -> None:
        self.recent.add(actions, tick)

    def show_interventions(self, counts: Mapping[str, int]) -> None:
        self.interventions.show_counts(counts)
