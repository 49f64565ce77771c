"""The main window's status bar: fixed roles, so no two texts ever draw over each other.

Left to right: `notice` (a transient line: the latest error, cleared after `NOTICE_MS`),
`state` (what the run or the recorder is doing, as the run reported it), `rate` (ticks/s),
`latency` (plan ms) and `interventions`. Every one is a permanent label with its own place in
the layout; nothing uses `QStatusBar.showMessage` (whose temporary text is drawn under the
permanent widgets when space runs out). The two free-text roles are `ElidedLabel`s: a text
longer than its place ends in "…" (the full text is the tooltip); the figures have a fixed width
that fits their widest text. The free-text roles' tooltips hold their full text.
"""

from __future__ import annotations

from PyQt6.QtCore import QSize, Qt, QTimer
from PyQt6.QtGui import QPainter
from PyQt6.QtWidgets import QLabel, QSizePolicy, QStatusBar, QWidget

NOTICE_MS = 10_000
IDLE_TEXTS = {"rate": "– ticks/s", "latency": "plan – ms", "interventions": "0 interventions"}
WIDEST = {"rate": "9999.99 ticks/s", "latency": "plan 9999.9 ms", "interventions": "99999 interventions"}
TIPS = {
    "notice": "the latest error (also in the Messages box), cleared after 10 s",
    "state": "the run's state as it reports it (or the recording's progress)",
    "rate": "game ticks per second the agent handled over the last 20 ticks",
    "latency": "median time to plan one tick (model + sampling + safety)",
    "interventions": "safety interventions this run (by reason in the Live tab)",
}


class ElidedLabel(QLabel):
    """A one-line label that shows as much of its text as fits, ending in "…"."""

    def __init__(self, text: str = "", parent: QWidget | None = None, min_width: int = 40):
        super().__init__(text, parent)
        self._min_width = min_width
        self.base_tip = ""  # the tooltip while the text is empty
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._min_width, super().minimumSizeHint().height())

    def setText(self, text: str) -> None:  # noqa: N802
        super().setText(text)
        self.setToolTip(f"{self.base_tip}\n\n{text}" if text and self.base_tip else (text or self.base_tip))

    def displayed_text(self) -> str:
        """The text as drawn at the label's current width."""
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, max(self.contentsRect().width(), 0))

    def paintEvent(self, _event) -> None:  # noqa: N802
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(self.contentsRect(), int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
                   self.displayed_text())
        p.end()


class StatusLine:
    """The roles of a status bar; `labels[role]` is the label of each."""

    def __init__(self, bar: QStatusBar):
        self.bar = bar
        self.notice = ElidedLabel(min_width=30)
        self.notice.setStyleSheet("color: rgb(200,30,30);")
        self.state = ElidedLabel("idle", min_width=60)
        self.labels: dict[str, QLabel] = {"notice": self.notice, "state": self.state}
        bar.addPermanentWidget(self.notice, 2)
        bar.addPermanentWidget(self.state, 3)
        for role, text in IDLE_TEXTS.items():
            label = QLabel(text)
            label.setFixedWidth(label.fontMetrics().horizontalAdvance(WIDEST[role]) + 8)
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            bar.addPermanentWidget(label)
            self.labels[role] = label
        for role, label in self.labels.items():
            if isinstance(label, ElidedLabel):
                label.base_tip = TIPS[role]
                label.setText(label.text())
            else:
                label.setToolTip(TIPS[role])
        self._notice_timer = QTimer(bar)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(lambda: self.notice.setText(""))

    def show_notice(self, text: str, ms: int = NOTICE_MS) -> None:
        self.notice.setText(text)
        self._notice_timer.start(ms)

    def reset_figures(self) -> None:
        """Back to the idle figures (no stale rate or latency once a run has stopped)."""
        for role, text in IDLE_TEXTS.items():
            self.labels[role].setText(text)
