"""The overlay on the real X server (the test session's own Xvfb) with a compositor: pixel
checks of the drawn ellipses at the predicted centres, and clicks passing through to the window
below (real pynput input)."""

from __future__ import annotations

import time

import pytest
from PyQt6.QtGui import QColor, QPainter
from PyQt6.QtWidgets import QApplication, QWidget

from ilbot.data.action import PlannedAction
from ilbot.data.schema import EventType
from ilbot.gui.overlay import EVENT_COLOURS, Overlay, OverlayStyle
from ilbot.gui.screenshot import compositor_running, ensure_compositor, grab, stop_compositor


@pytest.fixture(scope="module")
def compositor(xvfb):
    proc = ensure_compositor()
    assert compositor_running()
    yield proc
    stop_compositor(proc)


class Target(QWidget):
    """A plain grey window that records the clicks it receives."""

    def __init__(self):
        super().__init__()
        self.clicks: list[tuple[int, int, int]] = []
        self.setWindowTitle("ilbot test target")

    def paintEvent(self, _e):  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(90, 90, 90))
        p.end()

    def mousePressEvent(self, e):  # noqa: N802
        self.clicks.append((int(e.position().x()), int(e.position().y()), e.button().value))


def pump(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)


@pytest.fixture
def scene(qtbot, own_display, compositor):
    target = Target()
    qtbot.addWidget(target)
    target.setGeometry(40, 40, 400, 300)
    target.show()
    qtbot.waitExposed(target)
    overlay = Overlay(OverlayStyle(legend=False, timeline=False))
    qtbot.addWidget(overlay)
    overlay.follow(target)
    overlay.show()
    overlay.raise_()
    qtbot.waitExposed(overlay)
    return target, overlay


PLAN = [
    PlannedAction(EventType.CLICK, 50.0, 80.0, 70.0, sigma_x=12, sigma_y=8, button=1, time_q=(20, 50, 90)),
    PlannedAction(EventType.KEY, 120.0, 300.0, 90.0, sigma_x=6, sigma_y=6, key_action=1, key_id=5),
    PlannedAction(EventType.SCROLL, 200.0, 120.0, 220.0, sigma_x=20, sigma_y=10, scroll_y=1),
    PlannedAction(EventType.MOVE, 300.0, 330.0, 240.0, sigma_x=9, sigma_y=25),
]


def screen_pixel(x: int, y: int, tmp_path) -> tuple[int, int, int]:
    import mss

    with mss.MSS() as sct:
        shot = sct.grab({"left": x, "top": y, "width": 1, "height": 1})
    return tuple(shot.pixel(0, 0))


def test_ellipses_are_drawn_at_the_predicted_centres_over_the_game(scene, tmp_path):
    target, overlay = scene
    overlay.set_plan(PLAN, 600.0, 1)
    frames = overlay.frames
    pump(0.5)
    assert overlay.frames > frames
    origin = target.mapToGlobal(target.rect().topLeft())
    for a in PLAN:
        sx, sy = origin.x() + int(a.x), origin.y() + int(a.y)
        assert screen_pixel(sx, sy, tmp_path) == EVENT_COLOURS[a.type], a.type
        # the 1σ fill tints the game window: a blend of the type colour and the grey below
        r, g, b = screen_pixel(sx + int(a.sigma_x * 0.7), sy, tmp_path)
        assert (r, g, b) != (90, 90, 90)
    # away from the plan the game shows through unchanged (translucent overlay, compositor on)
    assert screen_pixel(origin.x() + 200, origin.y() + 10, tmp_path) == (90, 90, 90)
    out = grab((origin.x(), origin.y(), 400, 300), tmp_path / "overlay.png")
    assert out.stat().st_size > 1000


def test_clicks_pass_through_the_overlay_to_the_window_below(scene):
    from pynput.mouse import Button, Controller

    target, overlay = scene
    overlay.set_plan(PLAN, 600.0, 1)
    pump(0.3)
    origin = target.mapToGlobal(target.rect().topLeft())
    mouse = Controller()
    a = PLAN[0]  # right on the CLICK dot, the most opaque pixel of the overlay
    mouse.position = (origin.x() + int(a.x), origin.y() + int(a.y))
    pump(0.1)
    mouse.click(Button.left)
    deadline = time.monotonic() + 3
    while not target.clicks and time.monotonic() < deadline:
        pump(0.02)
    assert target.clicks, "the click did not reach the window below the overlay"
    x, y, button = target.clicks[0]
    assert abs(x - int(a.x)) <= 1 and abs(y - int(a.y)) <= 1 and button == 1
