"""The screen adapter and the window lookup on the test's own Xvfb, with a real Qt window."""

import json

import numpy as np
import pytest

from ilbot.agent.capture import make_adapter
from ilbot.agent.capture.screen import GRID_H, GRID_W, ScreenAdapter, grey_grid
from ilbot.agent.window import WindowGeometry, find_window, resolve_window
from ilbot.errors import UserError

TITLE = "ilbot screen test window"
GEOMETRY = (200, 150, 320, 160)


@pytest.fixture
def half_window(qtbot, own_display):
    """A window whose left half is black and right half white."""
    from PyQt6.QtGui import QColor, QPainter
    from PyQt6.QtWidgets import QWidget

    class Half(QWidget):
        def paintEvent(self, e):
            p = QPainter(self)
            w, h = self.width(), self.height()
            p.fillRect(0, 0, w // 2, h, QColor(0, 0, 0))
            p.fillRect(w // 2, 0, w - w // 2, h, QColor(255, 255, 255))
            p.end()

    win = Half()
    win.setWindowTitle(TITLE)
    win.setGeometry(*GEOMETRY)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    qtbot.wait(200)
    return win


def test_find_window_by_title_gives_the_client_area(half_window):
    geo = find_window(TITLE)
    assert (geo.x, geo.y, geo.width, geo.height) == GEOMETRY
    assert geo.title == TITLE
    assert geo.as_dict() == {"x": 200, "y": 150, "width": 320, "height": 160}
    assert geo.to_window(210, 160) == (10, 10) and geo.to_screen(10, 10) == (210, 160)
    loose = resolve_window("SCREEN TEST")  # case-insensitive substring
    assert (loose.x, loose.y) == (200, 150)


def test_unknown_title_names_what_was_seen(half_window):
    with pytest.raises(UserError, match=f"no visible window.*{TITLE}"):
        find_window("no such game")


def test_region_and_whole_screen(own_display):
    assert resolve_window("10,20,30,40") == WindowGeometry(10, 20, 30, 40, title="region 10,20,30,40")
    screen = resolve_window(None)
    assert (screen.x, screen.y, screen.width, screen.height) == (0, 0, 1280, 800)
    geo = WindowGeometry(1, 2, 3, 4)
    assert resolve_window(geo) is geo


def test_screen_features_are_the_downsampled_grey_window(half_window):
    geo = find_window(TITLE)
    ad = make_adapter("screen", window=geo, tick_ms=10_000)
    assert isinstance(ad, ScreenAdapter) and ad.describe() == "screen:200,150,320,160"
    rgb = ad.grab()
    assert rgb.shape == (160, 320, 3)
    cap = ad.poll()
    grid = cap.features.reshape(GRID_H, GRID_W)  # [8, 16]
    assert np.allclose(grid[:, :8], 0.0, atol=0.01) and np.allclose(grid[:, 8:], 1.0, atol=0.01)
    doc = json.loads(cap.raw_json)
    assert doc["screen"]["region"] == [200, 150, 320, 160] and len(doc["screen"]["grey"]) == 128
    assert ad.poll() is None  # one grab per tick
    assert ad.spec_name == "screen" and ad.spec_hash
    assert not ad.reports_ticks  # no tick of its own: the runtime keeps its grid
    ad.close()
    assert ad.poll() is None


def test_screen_region_from_the_source_string(own_display):
    with make_adapter("screen:0,0,64,32", tick_ms=1) as ad:
        cap = ad.poll()
        assert cap.tick == 0 and cap.features.shape == (128,)


def test_failed_grab_counts_an_error_and_goes_stale(own_display):
    ad = ScreenAdapter((5000, 5000, 64, 32), tick_ms=1)  # off the 1280x800 screen
    assert ad.poll() is None and ad.counters["errors"] == 1


def test_screen_rejects_tiny_regions_and_images():
    with pytest.raises(UserError, match="smaller than"):
        ScreenAdapter((0, 0, 8, 8))
    with pytest.raises(ValueError):
        grey_grid(np.zeros((4, 4, 3), np.uint8))


def test_grey_grid_is_an_area_average():
    img = np.zeros((16, 32, 3), np.uint8)  # 2x2 pixel blocks
    img[0, 0] = 255  # one white pixel in the top-left block of 4
    g = grey_grid(img).reshape(GRID_H, GRID_W)
    assert g[0, 0] == pytest.approx(0.25, abs=1e-3) and g.sum() == pytest.approx(0.25, abs=1e-3)


@pytest.fixture
def xlib_window(own_display):
    """A bare X window with only the old WM_NAME title, as some game clients set, at 40,50."""
    from Xlib import X, display

    d = display.Display()
    root = d.screen().root
    w = root.create_window(40, 50, 120, 90, 0, d.screen().root_depth, X.InputOutput, X.CopyFromParent,
                           background_pixel=d.screen().white_pixel, override_redirect=True)
    w.set_wm_name("old style game")
    w.map()
    d.sync()
    yield w
    w.destroy()
    d.close()


def test_title_from_wm_name_with_a_tree_walk(xlib_window):
    from ilbot.agent.window import list_windows

    assert "old style game" in [t for t, _ in list_windows()]
    geo = find_window("old style game")
    assert (geo.x, geo.y, geo.width, geo.height) == (40, 50, 120, 90)


def test_window_manager_client_list_is_used_when_present(half_window, xlib_window):
    """With a window manager, only `_NET_CLIENT_LIST` counts (its frames are not clients). We
    play the window manager's part by setting that property on the root window."""
    from Xlib import Xatom, display

    d = display.Display()
    root = d.screen().root
    atom = d.intern_atom("_NET_CLIENT_LIST")
    root.change_property(atom, Xatom.WINDOW, 32, [xlib_window.id])
    d.sync()
    try:
        assert find_window("old style game").width == 120
        with pytest.raises(UserError, match="no visible window"):
            find_window(TITLE)  # a Qt window the "window manager" does not list
    finally:
        root.delete_property(atom)
        d.sync()
        d.close()
    assert find_window(TITLE).width == 320


def test_no_display_is_a_user_error(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4242")
    with pytest.raises(UserError, match="cannot connect to the X display"):
        find_window("anything")
