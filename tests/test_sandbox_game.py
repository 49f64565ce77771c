"""The sandbox window under the test's own Xvfb: real pynput input changes the game; state publishing."""

import json
import urllib.request

import pytest

from ilbot.errors import UserError
from ilbot.sandbox.game import SandboxWindow
from ilbot.sandbox.logic import GameConfig
from ilbot.sandbox.publish import JsonDirPublisher, StateServer


@pytest.fixture
def window(qtbot, own_display):
    win = SandboxWindow(GameConfig(seed=21, gather_ticks=2), tick_ms=600)
    qtbot.addWidget(win)
    win.move(0, 0)
    win.show()
    qtbot.waitExposed(win)
    win.raise_()
    win.activateWindow()
    return win


def _screen(win, x, y):
    g = win.mapToGlobal(win.rect().topLeft())
    return int(g.x() + x), int(g.y() + y)


def test_real_pynput_click_wheel_and_key_change_the_game(window, qtbot):
    from pynput import keyboard, mouse

    m, kb = mouse.Controller(), keyboard.Controller()
    game = window.game
    node = game.nodes()[0]
    x, y = game.to_window(node.wx, node.wy)
    m.position = _screen(window, x, y)
    qtbot.waitUntil(lambda: abs(game.mouse[0] - round(x)) <= 1 and abs(game.mouse[1] - round(y)) <= 1, timeout=3000)
    m.click(mouse.Button.left)
    qtbot.waitUntil(lambda: game.player.target == node.id, timeout=3000)
    window.step()
    window.step()  # gather_ticks=2: the item arrives
    assert game.inventory_count() == 1 and window.last_doc["score"] == 1

    m.position = _screen(window, 300, 300)
    qtbot.wait(50)
    m.scroll(0, 2)  # two notches up: zoom in
    qtbot.waitUntil(lambda: game.zoom == pytest.approx(1.21), timeout=3000)
    m.scroll(0, -1)
    qtbot.waitUntil(lambda: game.zoom == pytest.approx(1.1), timeout=3000)
    assert window.step()["zoom"] == pytest.approx(1.1)

    kb.press(keyboard.Key.space)
    kb.release(keyboard.Key.space)
    qtbot.waitUntil(lambda: game.inventory_count() == 0, timeout=3000)
    assert game.banked == 1
    kb.press("e")  # not the empty key: nothing happens
    kb.release("e")
    qtbot.wait(100)
    assert game.banked == 1


def test_timer_ticks_and_publishes_json_files(qtbot, own_display, tmp_path):
    pub = JsonDirPublisher(tmp_path / "state", keep=3)
    done = []
    win = SandboxWindow(GameConfig(seed=5), [pub], tick_ms=50, max_ticks=6, on_finished=lambda: done.append(1))
    qtbot.addWidget(win)
    win.show()
    win.start()
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert files == ["tick_4.json", "tick_5.json", "tick_6.json"]  # keep=3; no .tmp left behind
    doc = json.loads((tmp_path / "state" / "tick_6.json").read_text())
    assert doc["tick"] == 6 and doc["window"]["width"] == 800 and {"x", "y"} <= set(doc["window"])
    assert pub.published == 7  # tick 0 at start + 6 ticks
    win.grab()  # paints without error (nodes, panel)


def test_paint_while_gathering_and_zoomed(window, qtbot):
    game = window.game
    node = game.nodes()[0]
    game.click(*game.to_window(node.wx, node.wy))
    game.inventory[0].update(id=1511, quantity=1)
    game.scroll(5)
    img = window.grab().toImage()
    assert img.width() == 800 and img.height() == 600


def test_http_server_serves_the_latest_state():
    srv = StateServer(0)
    try:
        srv.publish({"tick": 7, "score": 3})
        with urllib.request.urlopen(srv.url, timeout=5) as r:
            assert json.loads(r.read()) == {"tick": 7, "score": 3}
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(srv.url.replace("/state", "/nope"), timeout=5)
    finally:
        srv.close()
    with pytest.raises(UserError, match="non-loopback"):
        StateServer(0, host="0.0.0.0")


def test_publisher_refuses_unwritable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create"):
        JsonDirPublisher(blocker / "sub")
