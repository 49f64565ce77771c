"""The dry-run overlay: what the agent plans to do this tick, drawn over the game window.

A frameless, always-on-top, input-transparent window aligned with the game window's client area
(so a planned action's window-relative pixels are the overlay's own pixels). For each planned
event it draws:

- the predicted cursor position as an opaque dot in the event type's colour (fixed colours,
  legend in the top-left corner), with its 1σ ellipse (filled, translucent) and 2σ ellipse
  (outline) from the planner's sigma_x / sigma_y;
- the sampled path: a dashed line through consecutive planned positions, in plan order;
- a timeline bar along the bottom edge spanning the tick: a mark at each event's due time and
  the q10–q90 band (with the q50 line) of the next event's time.

Decisions where the design is silent:
- time_q holds the quantiles of the slot's dt (time since the previous event, DESIGN §2), so the
  band of event i is drawn from the previous event's due time: [t_{i-1} + q10, t_{i-1} + q90].
- Ellipses have a minimum radius (MIN_RADIUS_PX) so a near-certain position stays visible.
- Input transparency needs WindowTransparentForInput; under a window manager the frame would eat
  clicks, hence X11BypassWindowManagerHint. Translucency needs a compositor (xcompmgr under Xvfb);
  without one transparent pixels are black, so the overlay is only useful with one running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from PyQt6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QFont, QImage, QPainter, QPen
from PyQt6.QtWidgets import QWidget

from ..data.action import PlannedAction
from ..data.schema import EVENT_NAMES, TICK_MS, EventType

# Fixed colour per event type, in EventType order (CLICK, KEY, SCROLL, MOVE).
EVENT_COLOURS: dict[EventType, tuple[int, int, int]] = {
    EventType.CLICK: (230, 40, 40),  # red
    EventType.KEY: (40, 120, 255),  # blue
    EventType.SCROLL: (255, 190, 0),  # amber
    EventType.MOVE: (40, 200, 90),  # green
}
MIN_RADIUS_PX = 3.0  # smallest drawn 1σ semi-axis
DOT_RADIUS_PX = 4.0  # opaque centre dot: the predicted position itself


def event_colour(event_type: int, alpha: int = 255) -> QColor:
    r, g, b = EVENT_COLOURS[EventType(int(event_type))]
    return QColor(r, g, b, alpha)


@dataclass
class OverlayStyle:
    """Drawing parameters of the overlay (alphas 0..255, sizes in pixels)."""

    fill_1sigma_alpha: int = 60
    line_2sigma_alpha: int = 170
    path_alpha: int = 200
    timeline_height: int = 18
    legend: bool = True
    timeline: bool = True


def next_event_band(actions: Sequence[PlannedAction], index: int = 0) -> tuple[float, float, float] | None:
    """(q10, q50, q90) of event `index`'s due time in ms since the tick start, or None when the
    plan has no such event or it carries no quantiles. time_q is the slot's dt, measured from the
    previous event's due time (the tick's start for the first event)."""
    if index >= len(actions) or len(actions[index].time_q) < 3:
        return None
    base = actions[index - 1].t_ms if index > 0 else 0.0
    q10, q50, q90 = (float(q) for q in actions[index].time_q[:3])
    return base + q10, base + q50, base + q90


class Overlay(QWidget):
    """Input-transparent, always-on-top drawing of the current plan over the game window.

    `set_plan(actions, tick_ms)` replaces what is drawn (call it every tick, from the GUI thread:
    the main window connects it to the agent thread's plan signal); `align_to(rect)` places it over
    the game client area in screen coordinates; `follow(widget)` keeps it aligned with an
    in-process game window as it moves or resizes."""

    def __init__(self, style: OverlayStyle | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.style_ = style or OverlayStyle()
        self.setWindowFlags(
            Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.Tool
            | Qt.WindowType.WindowTransparentForInput
            | Qt.WindowType.X11BypassWindowManagerHint
        )
        self.setAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setWindowTitle("ilbot overlay")
        self.actions: list[PlannedAction] = []
        self.tick_ms = TICK_MS
        self.tick = -1
        self.frames = 0  # paint events so far (for fps figures)
        self.last_paint_ms = 0.0
        self._followed: QWidget | None = None

    # -- data ---------------------------------------------------------------------------------
    def set_plan(self, actions: Sequence[PlannedAction], tick_ms: float = TICK_MS, tick: int = -1) -> None:
        self.actions = list(actions)
        self.tick_ms = float(tick_ms) if tick_ms and tick_ms > 0 else TICK_MS
        self.tick = tick
        self.update()

    def clear(self) -> None:
        self.set_plan([], self.tick_ms)

    # -- geometry -----------------------------------------------------------------------------
    def align_to(self, rect: QRect) -> None:
        """Cover `rect` (screen coordinates of the game window's client area)."""
        if rect != self.geometry():
            self.setGeometry(rect)

    def follow(self, widget: QWidget) -> None:
        """Stay aligned with `widget`'s client area (moves and resizes are tracked)."""
        self.unfollow()
        self._followed = widget
        widget.installEventFilter(self)
        self._realign()

    def unfollow(self) -> None:
        if self._followed is not None:
            self._followed.removeEventFilter(self)
            self._followed = None

    def _realign(self) -> None:
        w = self._followed
        if w is None:
            return
        top_left = w.mapToGlobal(w.rect().topLeft())
        self.align_to(QRect(top_left, w.size()))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self._followed and event.type() in (QEvent.Type.Move, QEvent.Type.Resize, QEvent.Type.Show):
            self._realign()
            self.raise_()
        return False

    # -- drawing ------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        t0 = time.perf_counter()
        p = QPainter(self)
        try:
            self.paint(p, self.width(), self.height())
        finally:
            p.end()
        self.frames += 1
        self.last_paint_ms = (time.perf_counter() - t0) * 1e3

    def paint(self, p: QPainter, width: int, height: int) -> None:
        """Draw the current plan onto `p` over a `width` x `height` area (also used off-screen by
        the paint benchmark and tests)."""
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.fillRect(QRect(0, 0, width, height), QColor(0, 0, 0, 0))  # fully transparent base
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        self._paint_path(p)
        for a in self.actions:
            self._paint_event(p, a)
        if self.style_.legend:
            self._paint_legend(p)
        if self.style_.timeline:
            self._paint_timeline(p, width, height)

    def _paint_path(self, p: QPainter) -> None:
        if len(self.actions) < 2:
            return
        # One line per segment, not one polyline: stroking a self-intersecting polyline makes Qt
        # fill the whole stroke outline as one path (~100 ms for 100 points), separate segments
        # cost ~3 ms.
        p.setPen(QPen(QColor(255, 255, 255, self.style_.path_alpha), 1.0, Qt.PenStyle.DashLine))
        prev = QPointF(self.actions[0].x, self.actions[0].y)
        for a in self.actions[1:]:
            cur = QPointF(a.x, a.y)
            p.drawLine(prev, cur)
            prev = cur

    def _paint_event(self, p: QPainter, a: PlannedAction) -> None:
        c = QPointF(a.x, a.y)
        rx = max(float(a.sigma_x), MIN_RADIUS_PX)
        ry = max(float(a.sigma_y), MIN_RADIUS_PX)
        # Fill and outline are separate calls: one drawEllipse with both a pen and a brush makes
        # the raster engine stroke and fill an antialiased path (~4x the time). The 1σ fill is
        # drawn without antialiasing (its jagged edge lies under the antialiased outline).
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(event_colour(a.type, self.style_.fill_1sigma_alpha)))
        p.drawEllipse(c, rx, ry)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(event_colour(a.type, self.style_.line_2sigma_alpha), 1.0))
        p.drawEllipse(c, rx, ry)  # 1σ outline
        p.setPen(QPen(event_colour(a.type, self.style_.line_2sigma_alpha), 1.0, Qt.PenStyle.DashLine))
        p.drawEllipse(c, 2 * rx, 2 * ry)  # 2σ: outline only, so overlapping plans stay readable
        # the predicted position: an opaque dot
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(event_colour(a.type)))
        p.drawEllipse(c, DOT_RADIUS_PX, DOT_RADIUS_PX)

    def _paint_legend(self, p: QPainter) -> None:
        p.setFont(QFont("DejaVu Sans", 8))
        box = QRectF(4, 4, 74, 14 * len(EVENT_NAMES) + 6)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 140))
        p.drawRoundedRect(box, 4, 4)
        for i, name in enumerate(EVENT_NAMES):
            y = 8 + 14 * i
            p.setBrush(event_colour(i))
            p.drawEllipse(QPointF(14, y + 6), 4, 4)
            p.setPen(QColor(255, 255, 255))
            p.drawText(QRectF(24, y, 54, 13), Qt.AlignmentFlag.AlignVCenter, name)
            p.setPen(Qt.PenStyle.NoPen)

    def _paint_timeline(self, p: QPainter, width: int, height: int) -> None:
        h = self.style_.timeline_height
        bar = QRectF(4, height - h - 4, max(width - 8, 1), h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 150))
        p.drawRect(bar)
        scale = bar.width() / self.tick_ms  # pixels per ms of the tick

        def xpos(t_ms: float) -> float:
            return bar.left() + min(max(t_ms, 0.0), self.tick_ms) * scale

        band = next_event_band(self.actions)
        if band is not None:
            q10, q50, q90 = band
            colour = event_colour(self.actions[0].type, 110)
            p.setBrush(colour)
            p.drawRect(QRectF(xpos(q10), bar.top() + 2, max(xpos(q90) - xpos(q10), 1.0), h - 4))
            p.setPen(QPen(event_colour(self.actions[0].type), 2))
            p.drawLine(QPointF(xpos(q50), bar.top() + 1), QPointF(xpos(q50), bar.bottom() - 1))
        for a in self.actions:
            p.setPen(QPen(event_colour(a.type), 1.5))
            p.drawLine(QPointF(xpos(a.t_ms), bar.top() + h * 0.55), QPointF(xpos(a.t_ms), bar.bottom()))
        p.setPen(QColor(255, 255, 255))
        p.setFont(QFont("DejaVu Sans", 7))
        if band is None:
            text = "idle tick" if not self.actions else f"{len(self.actions)} events"
        else:
            text = f"next {band[1]:.0f} ms [{band[0]:.0f}–{band[2]:.0f}]  ·  {len(self.actions)} events"
        p.drawText(bar.adjusted(4, 0, -4, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)


def synthetic_plan(n: int, width: int, height: int, seed: int = 0) -> list[PlannedAction]:
    """`n` planned events spread over a `width` x `height` window (benchmarks and tests)."""
    import random

    rng = random.Random(seed)
    t = 0.0
    out = []
    for i in range(n):
        dt = rng.uniform(1.0, TICK_MS / max(n, 1))
        t += dt
        etype = EventType(rng.randrange(4))
        out.append(PlannedAction(
            type=etype, t_ms=t, x=rng.uniform(0, width), y=rng.uniform(0, height),
            sigma_x=rng.uniform(2, 40), sigma_y=rng.uniform(2, 40),
            button=1 if etype == EventType.CLICK else 0, key_action=1 if etype == EventType.KEY else 0,
            key_id=1 if etype == EventType.KEY else 0, scroll_y=1 if etype == EventType.SCROLL else 0,
            event_probs=(0.25, 0.25, 0.25, 0.25), time_q=(dt * 0.5, dt, dt * 2.0)))
    return out


def bench_paint(n_events: int = 100, width: int = 800, height: int = 600, frames: int = 300) -> dict:
    """Paint time of the overlay with `n_events` ellipses, off-screen into an ARGB image of the
    game window's size (the same paint code the widget runs). Needs a QApplication."""
    overlay = Overlay()
    overlay.set_plan(synthetic_plan(n_events, width, height), TICK_MS)
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        p = QPainter(image)
        overlay.paint(p, width, height)
        p.end()
        times.append((time.perf_counter() - t0) * 1e3)
    overlay.deleteLater()
    times.sort()
    mean = sum(times) / len(times)
    return {
        "events": n_events, "size": f"{width}x{height}", "frames": frames,
        "paint_mean_ms": round(mean, 3), "paint_p50_ms": round(times[len(times) // 2], 3),
        "paint_p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
        "max_fps": round(1e3 / mean, 1),
    }
