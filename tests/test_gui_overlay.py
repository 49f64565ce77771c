"""The overlay and the live panels, drawn off-screen and as real widgets (no agent needed):
marks at their centres in outlined per-type colours that stand out on the sandbox, a minimum
drawn size, the timeline and legend in the strip outside the game, the state badge and the live
border, and the panels' plain words."""

from __future__ import annotations


from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QColor, QImage, QPainter

from ilbot.data.action import PlannedAction
from ilbot.data.schema import EventType
from ilbot.gui.overlay import (CASING, EVENT_COLOURS, LIVE_BORDER, MIN_RADIUS_PX, Overlay, OverlayStyle,
                               next_event_band, synthetic_plan)
from ilbot.gui.panels import LivePanels, describe_action
from ilbot.gui.state_badge import COLOURS, badge_for


def act(t, x, y, etype=EventType.MOVE, sx=10.0, sy=20.0, q=(10.0, 50.0, 120.0), probs=(0.1, 0.2, 0.3, 0.4), **kw):
    return PlannedAction(type=etype, t_ms=t, x=x, y=y, sigma_x=sx, sigma_y=sy, time_q=q, event_probs=probs, **kw)


def render(overlay: Overlay, w=400, h=300) -> QImage:
    img = QImage(w, h, QImage.Format.Format_ARGB32)
    img.fill(QColor(0, 0, 0, 0))
    p = QPainter(img)
    overlay.paint(p, w, h)
    p.end()
    return img


def rgba(img: QImage, x: int, y: int) -> tuple[int, int, int, int]:
    c = img.pixelColor(x, y)
    return c.red(), c.green(), c.blue(), c.alpha()


def test_overlay_window_is_frameless_on_top_and_input_transparent(qtbot):
    o = Overlay()
    qtbot.addWidget(o)
    flags = o.windowFlags()
    for f in (Qt.WindowType.FramelessWindowHint, Qt.WindowType.WindowStaysOnTopHint, Qt.WindowType.Tool,
              Qt.WindowType.WindowTransparentForInput, Qt.WindowType.X11BypassWindowManagerHint):
        assert flags & f, f
    assert o.testAttribute(Qt.WidgetAttribute.WA_TranslucentBackground)


def test_each_event_type_draws_its_colour_at_the_predicted_centre(qtbot):
    o = Overlay(OverlayStyle(legend=False, timeline=False))
    qtbot.addWidget(o)
    plan = [act(10, 60, 60, EventType.CLICK, button=1), act(20, 160, 60, EventType.KEY, key_action=1, key_id=5),
            act(30, 260, 60, EventType.SCROLL, scroll_y=1), act(40, 330, 200, EventType.MOVE)]
    o.set_plan(plan)
    img = render(o)
    for a in plan:
        assert rgba(img, int(a.x), int(a.y)) == EVENT_COLOURS[a.type] + (255,)
    # far from every plan: fully transparent (clicks and the game show through)
    assert rgba(img, 5, 290)[3] == 0


def test_one_and_two_sigma_ellipses_follow_the_sigmas(qtbot):
    o = Overlay(OverlayStyle(legend=False, timeline=False))
    qtbot.addWidget(o)
    o.set_plan([act(10, 200, 150, EventType.CLICK, sx=30, sy=10, button=1)])
    img = render(o)
    # inside the 1σ ellipse (beyond the dot): translucent fill of the CLICK colour
    r, g, b, a = rgba(img, 200 + 20, 150)
    assert 0 < a < 255 and r > g and r > b
    # between 1σ and 2σ along x (outline only): transparent; outside 2σ: transparent
    assert rgba(img, 200 + 45, 150)[3] == 0
    assert rgba(img, 200 + 75, 150)[3] == 0
    # the 2σ outline crosses x = 200 + 60 (the wide axis) but the narrow axis stops near y = 150 ± 20
    assert max(rgba(img, 200 + 60 + d, 150)[3] for d in (-1, 0, 1)) > 0
    assert rgba(img, 200, 150 + 35)[3] == 0


def test_sampled_path_joins_consecutive_positions(qtbot):
    o = Overlay(OverlayStyle(legend=False, timeline=False))
    qtbot.addWidget(o)
    o.set_plan([act(10, 20, 150, sx=1, sy=1), act(20, 380, 150, sx=1, sy=1)])
    img = render(o)
    on_path = [rgba(img, x, 150) for x in range(60, 340)]
    assert sum(1 for c in on_path if c[3] > 0 and c[0] > 200 and c[1] > 200 and c[2] > 200) > 100  # dashed white


def test_timeline_band_is_the_next_events_q10_q90(qtbot):
    o = Overlay(OverlayStyle(legend=False, timeline=True, timeline_height=18))
    qtbot.addWidget(o)
    o.set_plan([act(100, 50, 50, EventType.CLICK, q=(60.0, 100.0, 300.0), button=1)], tick_ms=600)
    w, h = 604, 200
    img = render(o, w, h)
    y = h - 4 - 9  # middle of the bar
    scale = (w - 8) / 600.0

    def x_at(ms):
        return int(4 + ms * scale)

    inside = rgba(img, x_at(200), y)
    before = rgba(img, x_at(30), y)
    after = rgba(img, x_at(330), y)  # (the text sits at the right end)
    assert inside[0] > 2 * inside[1]  # the CLICK-coloured band
    assert before[0] < 60 and after[0] < 60  # only the dark bar outside [q10, q90]
    assert next_event_band(o.actions) == (60.0, 100.0, 300.0)


def test_next_event_band_counts_from_the_previous_event():
    plan = [act(100, 0, 0, q=(50, 100, 150)), act(250, 0, 0, q=(100, 150, 400))]
    assert next_event_band(plan, 1) == (200.0, 250.0, 500.0)
    assert next_event_band(plan, 2) is None
    assert next_event_band([act(1, 0, 0, q=())]) is None


def test_follow_keeps_the_overlay_on_the_game_window(qtbot):
    from PyQt6.QtWidgets import QWidget

    game = QWidget()
    qtbot.addWidget(game)
    game.setGeometry(100, 80, 320, 240)
    game.show()
    qtbot.waitExposed(game)
    o = Overlay()
    qtbot.addWidget(o)
    o.follow(game)
    top_left = game.mapToGlobal(game.rect().topLeft())
    strip = o.style_.strip_px
    assert o.game_rect() == QRect(top_left, game.size())
    assert o.geometry() == QRect(top_left.x(), top_left.y(), 320, 240 + strip)  # the strip below the game
    game.resize(300, 200)
    qtbot.waitUntil(lambda: o.game_rect().size() == game.size())
    o.align_to(QRect(10, 20, 30, 40))
    assert o.game_rect() == QRect(10, 20, 30, 40) and o.geometry() == QRect(10, 20, 30, 40 + strip)
    # a game reaching the screen's bottom: the strip goes above it, and plan pixels stay game pixels
    screen = o.screen().geometry()
    o.align_to(QRect(10, screen.bottom() + 1 - 300, 400, 300))
    assert o.strip_above and o.geometry().top() == screen.bottom() + 1 - 300 - strip
    assert o.game_area(400, 300 + strip).top() == strip


def test_overlay_widget_paints_and_clears(qtbot):
    o = Overlay()
    qtbot.addWidget(o)
    o.setGeometry(0, 0, 300, 200)
    o.set_plan(synthetic_plan(10, 300, 200), tick_ms=0)  # a bad tick length falls back to 600 ms
    assert o.tick_ms == 600
    o.show()
    qtbot.waitUntil(lambda: o.frames > 0)
    assert o.last_paint_ms >= 0
    o.clear()
    assert o.actions == []
    img = render(o, 300, 200)  # idle: legend and the idle timeline only
    assert rgba(img, 150, 100)[3] == 0


def test_panels_show_probabilities_quantiles_actions_and_interventions(qtbot):
    panels = LivePanels()
    qtbot.addWidget(panels)
    plan = [act(100, 10, 20, EventType.CLICK, probs=(0.7, 0.1, 0.1, 0.1), q=(50, 100, 200), button=1, hold_ms=90),
            act(200, 30, 40, EventType.KEY, key_action=1, key_id=1), act(250, 1, 2, EventType.SCROLL, scroll_y=2),
            act(300, 5, 6, EventType.MOVE)]
    panels.show_plan(3, plan)
    assert panels.probs.probs == (0.7, 0.1, 0.1, 0.1)
    assert [b.value() for b in panels.probs.bars] == [700, 100, 100, 100]
    assert panels.quantiles.rows[0] == ("CLICK", 100.0, 50.0, 100.0, 200.0)
    assert panels.quantiles.table.rowCount() == 4
    assert panels.quantiles.table.item(0, 3).text() == "100"
    panels.add_performed(3, plan)
    assert panels.recent.list.count() == 4
    assert panels.recent.lines[0].startswith("tick 3") and "MOVE" in panels.recent.lines[0]
    assert "hold 90 ms" in panels.recent.lines[3] and "down" in panels.recent.lines[1]
    panels.show_interventions({"bounds": 2, "cooldown": 5, "rate": 0})
    assert panels.interventions.counts == {"bounds": 2, "cooldown": 5}
    assert panels.interventions.list.item(0).text() == "too soon after the same kind of action: 5"  # plain words
    assert panels.interventions.list.item(0).toolTip() == "cooldown"
    assert panels.interventions.total_label.text() == "7 in total"
    panels.show_plan(4, [])  # an idle tick empties the probabilities
    assert panels.probs.probs == () and panels.quantiles.rows == []


def test_recent_actions_keep_only_the_newest(qtbot):
    panels = LivePanels()
    qtbot.addWidget(panels)
    panels.recent.keep = 5
    panels.add_performed(None, [act(i, i, 0) for i in range(12)])
    assert panels.recent.list.count() == 5
    assert describe_action(act(1, 2, 3, EventType.KEY, key_action=2, key_id=10**6)).count("release") == 1


# ------------------------------------------------------------------------------------------ readable
def over(img: QImage, background: QColor) -> QImage:
    """`img` (the overlay's transparent drawing) composited over a plain background."""
    out = QImage(img.size(), QImage.Format.Format_ARGB32)
    out.fill(background)
    p = QPainter(out)
    p.drawImage(0, 0, img)
    p.end()
    return out


def luminance(c: QColor) -> float:
    return 0.2126 * c.red() + 0.7152 * c.green() + 0.0722 * c.blue()


def test_marks_are_outlined_so_they_read_on_light_and_dark_games(qtbot):
    o = Overlay(OverlayStyle(legend=False, timeline=False))
    qtbot.addWidget(o)
    plan = [act(10 * i, 60 + 90 * i, 100, etype, sx=30, sy=30) for i, etype in enumerate(EventType)]
    o.set_plan(plan)
    img = render(o)
    for a in plan:
        cx, cy = int(a.x), int(a.y)
        ring = range(cy + 27, cy + 34)  # across the 1σ outline (radius 30), below the centre (the path runs along y)
        on_white = [over(img, QColor(255, 255, 255)).pixelColor(cx, y) for y in ring]
        on_black = [over(img, QColor(0, 0, 0)).pixelColor(cx, y) for y in ring]
        assert min(luminance(c) for c in on_white) < 60, a.type  # the dark casing shows on a light game
        colour = EVENT_COLOURS[a.type]  # the type's own colour, solid, shows on a dark game (and a light one)
        for seen in (on_black, on_white):
            assert min(sum((u - v) ** 2 for u, v in zip((c.red(), c.green(), c.blue()), colour)) ** 0.5
                       for c in seen) < 40, a.type
        # the dot: its colour at the centre, a dark rim around it
        assert rgba(img, cx, cy)[:3] == EVENT_COLOURS[a.type]
        rim = img.pixelColor(cx + 4, cy)  # between the dot (radius 4) and its rim's edge (5.5)
        assert rim.alpha() > 200 and luminance(rim) < 60


def test_ellipses_have_a_minimum_drawn_size(qtbot):
    o = Overlay(OverlayStyle(legend=False, timeline=False))
    qtbot.addWidget(o)
    o.set_plan([act(10, 100, 100, EventType.MOVE, sx=0.2, sy=0.5)])  # a near-certain position
    img = render(o)
    r = int(MIN_RADIUS_PX)
    assert MIN_RADIUS_PX * 2 >= 12
    for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r)):
        assert max(rgba(img, 100 + dx + d, 100 + dy)[3] for d in (-1, 0, 1)) > 100  # the 1σ outline
    assert rgba(img, 100 + r - 1 - 1, 100)[3] > 0  # the light fill inside it
    assert max(rgba(img, 100 + 2 * r + d, 100)[3] for d in (-1, 0, 1)) > 0  # the 2σ ring twice as far


def test_colours_stand_out_on_the_sandbox_and_from_each_other(qtbot):
    """Every colour that covers 1 % or more of the sandbox game is far from every event colour
    (no green on green), and the four colours are far from each other."""
    from ilbot.sandbox.game import SandboxWindow

    game = SandboxWindow()
    qtbot.addWidget(game)
    img = game.grab().toImage()
    counts: dict = {}
    for y in range(0, img.height(), 4):
        for x in range(0, img.width(), 4):
            c = img.pixelColor(x, y)
            counts[(c.red(), c.green(), c.blue())] = counts.get((c.red(), c.green(), c.blue()), 0) + 1
    total = sum(counts.values())
    game_colours = [c for c, n in counts.items() if n / total >= 0.01]
    assert game_colours  # the green ground at least

    def dist(a, b):
        return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5

    for etype, colour in EVENT_COLOURS.items():
        assert min(dist(colour, g) for g in game_colours) > 120, (etype, colour)
    colours = list(EVENT_COLOURS.values())
    assert min(dist(a, b) for i, a in enumerate(colours) for b in colours[i + 1:]) > 150
    assert luminance(QColor(*CASING)) < 30


def test_timeline_and_legend_sit_in_the_strip_below_the_game(qtbot):
    """Nothing of the overlay's own furniture covers the game: the bottom rows (where the
    sandbox writes its hint line) stay clear; the timeline bar is in the strip under the game."""
    o = Overlay()
    qtbot.addWidget(o)
    w, gh = 800, 300
    h = gh + o.style_.strip_px
    o.set_plan([act(100, 200, 100, EventType.CLICK, sx=5, sy=5, q=(60.0, 100.0, 300.0), button=1)], tick_ms=600)
    img = render(o, w, h)
    assert o.game_area(w, h) == QRect(0, 0, w, gh)
    assert all(rgba(img, x, y)[3] == 0 for y in range(gh - 40, gh) for x in range(0, w, 3))
    bar = o.timeline_rect(w, h)
    assert bar.top() >= gh and bar.bottom() <= h
    ms = 200  # inside the next event's [q10, q90] = [60, 300] ms: the CLICK-coloured band
    x = int(bar.left() + ms * bar.width() / 600)
    r, g, b, a = rgba(img, x, int(bar.center().y()))
    assert a > 0 and r > 2 * g
    assert rgba(img, 10, int(bar.center().y()))[3] > 0  # the legend at the strip's left


def test_badge_shows_the_state_and_live_draws_a_red_border(qtbot):
    from ilbot.agent.assemble import Mode

    o = Overlay()
    qtbot.addWidget(o)
    w, gh = 400, 300
    h = gh + o.style_.strip_px
    o.set_plan([act(10, 50, 200)])
    o.set_badge(badge_for(Mode.DRY_RUN, "running"))
    img = render(o, w, h)
    box = o.badge_rect(o.game_area(w, h))
    assert rgba(img, int(box.left()) + 4, int(box.center().y()))[:3] == COLOURS["dry_run"]
    assert rgba(img, 1, gh // 2)[3] == 0  # no border in dry run
    o.set_badge(badge_for(Mode.LIVE, "running"))
    img = render(o, w, h)
    for x, y in ((1, gh // 2), (w - 2, gh // 2), (w // 2, gh - 2), (w // 4, 1)):
        assert rgba(img, x, y)[:3] == LIVE_BORDER, (x, y)
    box = o.badge_rect(o.game_area(w, h))
    assert rgba(img, int(box.left()) + 4, int(box.center().y()))[:3] == COLOURS["live"]
    # paused: the plan goes, and plans arriving late are not drawn
    o.set_badge(badge_for(Mode.LIVE, "paused", "human_override"))
    assert o.actions == []
    o.set_plan([act(10, 50, 200)])
    assert o.actions == [] and "you moved the mouse" in o.badge.text
    o.set_badge(badge_for(Mode.LIVE, "running"))
    o.set_plan([act(10, 50, 200)])
    assert len(o.actions) == 1
