"""`SandboxWindow`: the PyQt6 window of the practice game (DESIGN §8).

It renders `SandboxGame` (the rules, ilbot/sandbox/logic.py), feeds it real mouse, keyboard and
wheel input, advances it every `tick_ms` on a monotonic deadline (a single-shot precise QTimer
re-armed to the next deadline, so ticks do not drift with slow paints), and publishes the state
document after every tick (and once at start, tick 0) to each publisher. The published document
adds the client area's screen position to `window` ({x, y, width, height}), which is what a
recorder or executor needs to turn window-relative positions into screen positions.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QFont, QKeyEvent, QMouseEvent, QPainter, QPen, QWheelEvent
from PyQt6.QtWidgets import QWidget

from ..data.keys import key_name
from .logic import EMPTY_ITEM, INVENTORY_SLOTS, KINDS, GameConfig, SandboxGame

_QT_KEYS = {  # Qt key → key vocabulary name, for keys whose text is empty or ambiguous
    Qt.Key.Key_Space: "space", Qt.Key.Key_Return: "enter", Qt.Key.Key_Enter: "enter", Qt.Key.Key_Escape: "esc",
    Qt.Key.Key_Tab: "tab", Qt.Key.Key_Backspace: "backspace", Qt.Key.Key_Shift: "shift", Qt.Key.Key_Control: "ctrl",
    Qt.Key.Key_Alt: "alt", Qt.Key.Key_Up: "up", Qt.Key.Key_Down: "down", Qt.Key.Key_Left: "left",
    Qt.Key.Key_Right: "right", Qt.Key.Key_F12: "f12",
}
_BUTTONS = {Qt.MouseButton.LeftButton: 1, Qt.MouseButton.RightButton: 2, Qt.MouseButton.MiddleButton: 3}
_KIND_COLOURS = {"tree": QColor(46, 125, 50), "rock": QColor(120, 110, 100)}
_ITEM_COLOURS = {KINDS["tree"][0]: QColor(141, 98, 58), KINDS["rock"][0]: QColor(184, 115, 51)}


class SandboxWindow(QWidget):
    """The game window. `publishers` each have `.publish(doc)`; `max_ticks` closes it after that tick."""

    ticked = pyqtSignal(dict)  # the published document, after each tick
    closed = pyqtSignal()  # the window was closed

    def __init__(self, config: GameConfig | None = None, publishers: Iterable = (), tick_ms: float = 600.0,
                 max_ticks: int | None = None, on_finished: Callable[[], None] | None = None):
        super().__init__()
        self.game = SandboxGame(config)
        cfg = self.game.cfg
        self.publishers = list(publishers)
        self.tick_ms = float(tick_ms)
        self.max_ticks = max_ticks
        self.on_finished = on_finished
        self.last_doc: dict | None = None
        self._wheel_rest = 0  # angle delta not yet a whole notch (touchpads send fractions)
        self.setWindowTitle("ilbot sandbox")
        self.setFixedSize(cfg.width, cfg.height)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_timer)
        self._next_ns = 0

    # --- ticking --------------------------------------------------------------------------
    def start(self) -> None:
        """Publish tick 0 and start ticking."""
        self.publish()
        self._next_ns = time.monotonic_ns() + int(self.tick_ms * 1e6)
        self._arm()

    def stop(self) -> None:
        self._timer.stop()

    def _arm(self) -> None:
        delay_ms = max(0, (self._next_ns - time.monotonic_ns()) // 1_000_000)
        self._timer.start(int(delay_ms))

    def _on_timer(self) -> None:
        now = time.monotonic_ns()
        if now < self._next_ns:  # woke early (timer granularity): wait the rest
            self._arm()
            return
        self.step()
        self._next_ns += int(self.tick_ms * 1e6)
        if self._next_ns < now:  # far behind (machine stalled): skip ahead rather than burst
            self._next_ns = now + int(self.tick_ms * 1e6)
        if self.max_ticks is not None and self.game.tick_index >= self.max_ticks:
            if self.on_finished is not None:
                self.on_finished()
            return
        self._arm()

    def step(self) -> dict:
        """One tick now: advance the game, repaint, publish."""
        self.game.tick()
        self.update()
        return self.publish()

    def publish(self) -> dict:
        doc = self.game.state()
        origin = self.mapToGlobal(self.rect().topLeft())
        doc["window"].update({"x": origin.x(), "y": origin.y()})
        for p in self.publishers:
            p.publish(doc)
        self.last_doc = doc
        self.ticked.emit(doc)
        return doc

    def closeEvent(self, e) -> None:  # noqa: N802 (Qt's name)
        self.stop()
        self.closed.emit()
        super().closeEvent(e)

    # --- input ----------------------------------------------------------------------------
    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        self.game.move(e.position().x(), e.position().y())

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        self.game.click(e.position().x(), e.position().y(), _BUTTONS.get(e.button(), 0))
        self.update()

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        self._wheel_rest += e.angleDelta().y()
        notches = int(self._wheel_rest / 120)  # toward zero: a partial notch waits for the rest
        if notches:
            self._wheel_rest -= notches * 120
            self.game.scroll(notches)
            self.update()

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802
        if e.isAutoRepeat():
            return
        name = _QT_KEYS.get(Qt.Key(e.key())) or key_name(e.text())
        if self.game.key(name):
            self.update()

    # --- drawing --------------------------------------------------------------------------
    def paintEvent(self, _e) -> None:  # noqa: N802
        g, cfg = self.game, self.game.cfg
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        v = cfg.view_size
        p.fillRect(QRectF(0, 0, v, v), QColor(88, 140, 72))
        # grid lines that zoom with the world, so zoom is visible even with few nodes
        p.setPen(QPen(QColor(78, 128, 64), 1))
        step = 60 * g.zoom
        c = g.centre
        k = int(c / step) + 1
        for i in range(-k, k + 1):
            p.drawLine(QPointF(c + i * step, 0), QPointF(c + i * step, v))
            p.drawLine(QPointF(0, c + i * step), QPointF(v, c + i * step))
        r = g.node_radius_px()
        target = g.player.target
        for node in g.nodes():
            if not g.visible(node):
                continue
            x, y = g.to_window(node.wx, node.wy)
            p.setBrush(QBrush(_KIND_COLOURS[node.kind]))
            p.setPen(QPen(QColor(255, 235, 59) if node.id == target else QColor(30, 30, 30), 3 if node.id == target else 1))
            p.drawEllipse(QPointF(x, y), r, r)
            p.setPen(QColor(255, 255, 255))
            p.drawText(QRectF(x - r, y - r, 2 * r, 2 * r), Qt.AlignmentFlag.AlignCenter, str(node.remaining))
        # the player, at the view's centre, with a line to its target and a progress bar
        p.setPen(QPen(QColor(20, 20, 20), 1))
        p.setBrush(QBrush(QColor(33, 150, 243)))
        p.drawEllipse(QPointF(c, c), 9, 9)
        if target is not None:
            node = next(n for n in g.nodes() if n.id == target)
            x, y = g.to_window(node.wx, node.wy)
            p.setPen(QPen(QColor(255, 235, 59), 2, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(c, c), QPointF(x, y))
            frac = 1.0 - g.player.ticks_left / cfg.gather_ticks
            p.fillRect(QRectF(c - 20, c - 24, 40, 6), QColor(40, 40, 40))
            p.fillRect(QRectF(c - 20, c - 24, 40 * frac, 6), QColor(255, 235, 59))
        self._paint_panel(p)
        p.end()

    def _paint_panel(self, p: QPainter) -> None:
        g, cfg = self.game, self.game.cfg
        x0, w = cfg.view_size, cfg.width - cfg.view_size
        p.fillRect(QRectF(x0, 0, w, cfg.height), QColor(62, 53, 41))
        p.setPen(QColor(255, 255, 255))
        p.setFont(QFont("DejaVu Sans", 10))
        p.drawText(QRectF(x0 + 10, 8, w - 20, 20), Qt.AlignmentFlag.AlignLeft,
                   f"score {g.score}   banked {g.banked}")
        p.drawText(QRectF(x0 + 10, 28, w - 20, 20), Qt.AlignmentFlag.AlignLeft,
                   f"tick {g.tick_index}   zoom {g.zoom:.2f}")
        cell, gap, cols = 40, 6, 4
        top = 60
        left = x0 + (w - cols * cell - (cols - 1) * gap) / 2
        for i, slot in enumerate(g.inventory[:INVENTORY_SLOTS]):
            r, col = divmod(i, cols)
            rect = QRectF(left + col * (cell + gap), top + r * (cell + gap), cell, cell)
            p.fillRect(rect, QColor(90, 78, 62))
            if slot["id"] != EMPTY_ITEM:
                p.fillRect(rect.adjusted(8, 8, -8, -8), _ITEM_COLOURS.get(slot["id"], QColor(200, 200, 200)))
        p.drawText(QRectF(x0 + 10, cfg.height - 30, w - 20, 20), Qt.AlignmentFlag.AlignLeft,
                   "click: gather   space: empty")
