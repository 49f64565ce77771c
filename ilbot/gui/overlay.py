"""The overlay: what the agent plans to do this tick and what state it is in, drawn over the game.

A frameless, always-on-top, input-transparent window covering the game window's client area
(so a planned action's window-relative pixels are the overlay's own pixels) plus a strip just
below it (or above it, when the game reaches the bottom of the screen). Over the game it draws:

- for each planned event, the predicted cursor position as a dot in the event type's colour
  (fixed colours chosen to stand out on any game, never a game's green), its 1σ ellipse (light
  translucent fill, outlined) and 2σ ellipse (dashed outline) from the planner's sigma_x /
  sigma_y; every mark has a dark casing under its colour, so it reads on light and dark games;
- the sampled path: a dashed white line on a dark casing through consecutive planned positions;
- the state badge (ilbot.gui.state_badge) at the top centre: SANDBOX / DRY RUN / LIVE, PAUSED
  (why, and how to resume), WAITING FOR GAME STATE, REC; in a live run a red border around the
  whole game area.

In the strip outside the game: the legend (type → colour) and the timeline bar spanning the tick
(a mark at each event's due time and the q10–q90 band, with the q50 line, of the next event's
time), so nothing covers the game's own text (the sandbox's hint line sits at its bottom).

Decisions where the design is silent:
- time_q holds the quantiles of the slot's dt (time since the previous event, DESIGN §2), so the
  band of event i is drawn from the previous event's due time: [t_{i-1} + q10, t_{i-1} + q90].
- Ellipses have a minimum radius (MIN_RADIUS_PX, 14 px across) so a near-certain position stays
  visible.
- While the run is paused or stopped the overlay shows no plan (`set_badge` with such a state
  clears it and `set_plan` is ignored until the run runs again).
- Input transparency needs WindowTransparentForInput; under a window manager the frame would eat
  clicks, hence X11BypassWindowManagerHint. Translucency needs a compositor (xcompmgr under Xvfb);
  without one transparent pixels are black, so the overlay is only useful with one running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from PyQt6.QtCore import QEvent, QObject, QPointF, QRect, QRectF, Qt
from PyQt6.QtGui import QBrush, QColor, QFont, QFontMetrics, QGuiApplication, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QWidget

from ..data.action import PlannedAction
from ..data.schema import EVENT_NAMES, TICK_MS, EventType

# Fixed colour per event type, in EventType order (CLICK, KEY, SCROLL, MOVE): saturated hues far
# from each other and from the greens, browns and greys games are made of (the sandbox is green).
EVENT_COLOURS: dict[EventType, tuple[int, int, int]] = {
    EventType.CLICK: (255, 40, 40),  # red
    EventType.KEY: (0, 200, 255),  # cyan
    EventType.SCROLL: (255, 230, 0),  # yellow
    EventType.MOVE: (235, 60, 235),  # magenta
}
CASING = (15, 15, 15)  # the dark outline under every mark
LIVE_BORDER = (255, 30, 30)
MIN_RADIUS_PX = 7.0  # smallest drawn 1σ semi-axis: 14 px across
DOT_RADIUS_PX = 4.0  # opaque centre dot: the predicted position itself
STRIP_MARGIN = 4  # around the legend and timeline in the strip outside the game


def event_colour(event_type: int, alpha: int = 255) -> QColor:
    r, g, b = EVENT_COLOURS[EventType(int(event_type))]
    return QColor(r, g, b, alpha)


def casing(alpha: int = 220) -> QColor:
    return QColor(*CASING, alpha)


@dataclass
class OverlayStyle:
    """Drawing parameters of the overlay (alphas 0..255, sizes in pixels)."""

    fill_1sigma_alpha: int = 70
    line_2sigma_alpha: int = 200
    path_alpha: int = 220
    timeline_height: int = 18
    legend: bool = True
    timeline: bool = True
    badge: bool = True
    live_border_px: int = 5

    @property
    def strip_px(self) -> int:
        """Height of the strip outside the game (legend and timeline); 0 without either."""
        return self.timeline_height + 2 * STRIP_MARGIN if (self.legend or self.timeline) else 0


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
    """Input-transparent, always-on-top drawing of the current plan and state over the game window.

    `set_plan(actions, tick_ms)` replaces what is drawn (call it every tick, from the GUI thread:
    the main window connects it to the agent thread's plan signal); `set_badge(badge)` sets the
    state badge (ilbot.gui.state_badge.Badge, or None for none); `align_to(rect)` places it over
    the game client area in screen coordinates (plus the strip outside it); `follow(widget)` keeps
    it aligned with an in-process game window as it moves or resizes; `game_rect()` is the game
    area it covers, in screen coordinates."""

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
        self.badge = None  # ilbot.gui.state_badge.Badge
        self.frames = 0  # paint events so far (for fps figures)
        self.last_paint_ms = 0.0
        self.strip_above = False  # the strip sits above the game (no room below it on the screen)
        self._game_rect = QRect()
        self._followed: QWidget | None = None

    # -- data ---------------------------------------------------------------------------------
    @property
    def holding(self) -> bool:
        """Paused or stopped: no plan is shown."""
        return self.badge is not None and getattr(self.badge, "state", "") in ("paused", "stopped")

    def set_plan(self, actions: Sequence[PlannedAction], tick_ms: float = TICK_MS, tick: int = -1) -> None:
        self.actions = [] if self.holding else list(actions)
        self.tick_ms = float(tick_ms) if tick_ms and tick_ms > 0 else TICK_MS
        self.tick = tick
        self.update()

    def clear(self) -> None:
        self.set_plan([], self.tick_ms)

    def set_badge(self, badge) -> None:
        """Show `badge` (None: no badge); a paused or stopped badge also clears the plan."""
        if badge == self.badge:
            return
        self.badge = badge
        if self.holding:
            self.actions = []
        self.update()

    # -- geometry -----------------------------------------------------------------------------
    def align_to(self, rect: QRect) -> None:
        """Cover `rect` (screen coordinates of the game window's client area) and the strip
        below it (above it when the screen ends below the game)."""
        rect = QRect(rect)
        strip = self.style_.strip_px
        screen = QGuiApplication.screenAt(rect.center()) or QGuiApplication.primaryScreen()
        area = screen.geometry() if screen is not None else None
        above = bool(strip and area is not None and rect.bottom() + strip > area.bottom()
                     and rect.top() - strip >= area.top())
        self._game_rect = rect
        self.strip_above = above
        geometry = QRect(rect.x(), rect.y() - (strip if above else 0), rect.width(), rect.height() + strip)
        if geometry != self.geometry():
            self.setGeometry(geometry)
        self.update()

    def game_rect(self) -> QRect:
        """The game area this overlay covers, in screen coordinates."""
        return QRect(self._game_rect)

    def game_area(self, width: int, height: int) -> QRect:
        """The game's part of a `width` x `height` overlay, in the overlay's own pixels."""
        strip = self.style_.strip_px
        return QRect(0, strip if self.strip_above else 0, width, max(height - strip, 1))

    def strip_area(self, width: int, height: int) -> QRect:
        """The strip outside the game (legend and timeline), in the overlay's own pixels."""
        strip = self.style_.strip_px
        return QRect(0, 0 if self.strip_above else max(height - strip, 0), width, strip)

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
        """Draw the current plan and state onto `p` over a `width` x `height` overlay (the game
        area and the strip; also used off-screen, into an image, to measure paint time and by
        tests)."""
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        p.fillRect(QRect(0, 0, width, height), QColor(0, 0, 0, 0))  # fully transparent base
        p.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        game = self.game_area(width, height)
        p.save()
        p.setClipRect(game)
        p.translate(game.topLeft())  # plan pixels are game-window pixels
        self._paint_path(p)
        for a in self.actions:
            self._paint_event(p, a)
        p.restore()
        if self.badge is not None and getattr(self.badge, "live", False):
            self._paint_live_border(p, game)
        if self.badge is not None and self.style_.badge:
            self._paint_badge(p, game)
        strip = self.strip_area(width, height)
        if self.style_.legend and strip.height() > 0:
            self._paint_legend(p, strip)
        if self.style_.timeline and strip.height() > 0:
            self._paint_timeline(p, self.timeline_rect(width, height))

    def _paint_path(self, p: QPainter) -> None:
        if len(self.actions) < 2:
            return
        # One line per segment, not one polyline: stroking a self-intersecting polyline makes Qt
        # fill the whole stroke outline as one path (~100 ms for 100 points), separate segments
        # cost ~3 ms. White and dark dashes in turn (two 1 px dashed passes, offset by one
        # dash): the line reads on light and dark games. Pens wider than 1 px cost ~10x here.
        points = [QPointF(a.x, a.y) for a in self.actions]
        for colour, offset in ((QColor(255, 255, 255, self.style_.path_alpha), 0.0), (casing(self.style_.path_alpha), 4.0)):
            pen = QPen(colour, 1.0)
            pen.setDashPattern([4.0, 4.0])
            pen.setDashOffset(offset)
            p.setPen(pen)
            for a, b in zip(points, points[1:]):
                p.drawLine(a, b)

    def _paint_event(self, p: QPainter, a: PlannedAction) -> None:
        c = QPointF(a.x, a.y)
        rx = max(float(a.sigma_x), MIN_RADIUS_PX)
        ry = max(float(a.sigma_y), MIN_RADIUS_PX)
        # Fill and outline are separate calls: one drawEllipse with both a pen and a brush makes
        # the raster engine stroke and fill an antialiased path (~4x the time). The 1σ fill is
        # drawn without antialiasing (its jagged edge lies under the antialiased outline).
        # Outlines are 1 px pens and filled paths (wider pens take the slow stroker, ~10x): the 1σ
        # outline is a 2 px ring of the type's colour on a 5 px dark band (a filled ring), the 2σ
        # outline a dashed ring beside a dark one.
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(event_colour(a.type, self.style_.fill_1sigma_alpha)))
        p.drawEllipse(c, rx, ry)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        p.setBrush(Qt.BrushStyle.NoBrush)
        alpha = self.style_.line_2sigma_alpha
        band = QPainterPath()  # the dark casing: a ring from 2 px inside to 3 px outside the 1σ ellipse
        band.setFillRule(Qt.FillRule.OddEvenFill)
        band.addEllipse(c, rx + 3.0, ry + 3.0)
        band.addEllipse(c, max(rx - 2.0, 0.5), max(ry - 2.0, 0.5))
        p.setPen(Qt.PenStyle.NoPen)
        p.fillPath(band, casing(255))
        p.setPen(QPen(event_colour(a.type, 255), 1.0))
        p.drawEllipse(c, rx - 0.5, ry - 0.5)  # 1σ: two 1 px rings make a solid 2 px line of the type's colour
        p.drawEllipse(c, rx + 0.5, ry + 0.5)
        p.setPen(QPen(casing(alpha), 1.0))
        p.drawEllipse(c, 2 * rx + 1.0, 2 * ry + 1.0)
        p.setPen(QPen(event_colour(a.type, alpha), 1.0, Qt.PenStyle.DashLine))
        p.drawEllipse(c, 2 * rx, 2 * ry)  # 2σ: dashed outline only, so overlapping plans stay readable
        # the predicted position: an opaque dot on a dark disc
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QBrush(casing(255)))
        p.drawEllipse(c, DOT_RADIUS_PX + 1.5, DOT_RADIUS_PX + 1.5)
        p.setBrush(QBrush(event_colour(a.type)))
        p.drawEllipse(c, DOT_RADIUS_PX, DOT_RADIUS_PX)

    def _paint_live_border(self, p: QPainter, game: QRect) -> None:
        w = self.style_.live_border_px
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(*LIVE_BORDER, 235))
        g = QRectF(game)
        for r in (QRectF(g.left(), g.top(), g.width(), w), QRectF(g.left(), g.bottom() + 1 - w, g.width(), w),
                  QRectF(g.left(), g.top(), w, g.height()), QRectF(g.right() + 1 - w, g.top(), w, g.height())):
            p.drawRect(r)

    def badge_rect(self, game: QRect) -> QRectF:
        """Where the badge is drawn: centred at the top of the game area."""
        font = self._badge_font()
        text_w = QFontMetrics(font).horizontalAdvance(self.badge.text) if self.badge is not None else 0
        w = min(text_w + 20, max(game.width() - 16, 20))
        h = QFontMetrics(font).height() + 8
        top = game.top() + (self.style_.live_border_px + 4 if getattr(self.badge, "live", False) else 6)
        return QRectF(game.left() + (game.width() - w) / 2, top, w, h)

    @staticmethod
    def _badge_font() -> QFont:
        f = QFont("DejaVu Sans", 10)
        f.setBold(True)
        return f

    def _paint_badge(self, p: QPainter, game: QRect) -> None:
        box = self.badge_rect(game)
        font = self._badge_font()
        p.setFont(font)
        p.setPen(QPen(casing(230), 2))
        p.setBrush(QColor(*self.badge.colour, 235))
        p.drawRoundedRect(box, 5, 5)
        p.setPen(QColor(255, 255, 255))
        text = QFontMetrics(font).elidedText(self.badge.text, Qt.TextElideMode.ElideRight, int(box.width()) - 12)
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    @staticmethod
    def _legend_width() -> int:
        fm = QFontMetrics(QFont("DejaVu Sans", 8))
        return sum(16 + fm.horizontalAdvance(n) + 8 for n in EVENT_NAMES) + 4

    def _paint_legend(self, p: QPainter, strip: QRect) -> None:
        """The legend (a dot of each type's colour and its name) at the strip's left."""
        font = QFont("DejaVu Sans", 8)
        fm = QFontMetrics(font)
        p.setFont(font)
        h = self.style_.timeline_height
        top = strip.top() + STRIP_MARGIN
        width = self._legend_width()
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 170))
        p.drawRoundedRect(QRectF(strip.left() + STRIP_MARGIN, top, width, h), 4, 4)
        x = strip.left() + STRIP_MARGIN + 4
        for i, name in enumerate(EVENT_NAMES):
            centre = QPointF(x + 6, top + h / 2)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(casing(255))
            p.drawEllipse(centre, 5.5, 5.5)
            p.setBrush(event_colour(i))
            p.drawEllipse(centre, 4, 4)
            p.setPen(QColor(255, 255, 255))
            tw = fm.horizontalAdvance(name)
            p.drawText(QRectF(x + 14, top, tw + 4, h), Qt.AlignmentFlag.AlignVCenter, name)
            x += 16 + tw + 8

    def timeline_rect(self, width: int, height: int) -> QRectF:
        """The timeline bar, in the overlay's own pixels (inside the strip, right of the legend)."""
        strip = self.strip_area(width, height)
        left = strip.left() + STRIP_MARGIN + (self._legend_width() + STRIP_MARGIN if self.style_.legend else 0)
        return QRectF(left, strip.top() + STRIP_MARGIN, max(strip.right() + 1 - STRIP_MARGIN - left, 1),
                      self.style_.timeline_height)

    def _paint_timeline(self, p: QPainter, bar: QRectF) -> None:
        h = self.style_.timeline_height
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(0, 0, 0, 170))
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
    """`n` planned events spread over a `width` x `height` window (paint-time measurements and tests)."""
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

