"""The overlay and the live panels, drawn off-screen and as real widgets (no agent needed)."""

from __future__ import annotations


from PyQt6.QtCore import QRect, Qt
from PyQt6.QtGui import QColor, QImage, QPainter

from ilbot.data.action import PlannedAction
from ilbot.data.schema import EventType
from ilbot.gui.overlay import (EVENT_COLOURS, Overlay, OverlayStyle, bench_paint, next_event_band,
                               synthetic_plan)
from ilbot.gui.panels import LivePanels, describe_action


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
    assert o.geometry() == QRect(top_left, game.size())
    game.resize(300, 200)
    qtbot.waitUntil(lambda: o.geometry().size() == game.size())
    o.align_to(QRect(10, 20, 30, 40))
    assert o.geometry() == QRect(10, 20, 30, 40)


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


def test_bench_paint_reports_figures(qtbot):
    r = bench_paint(100, 200, 150, frames=3)
    assert r["events"] == 100 and r["frames"] == 3
    assert r["paint_mean_ms"] > 0 and r["max_fps"] > 0


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
    assert panels.interventions.list.item(0).text() == "cooldown: 5"
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
