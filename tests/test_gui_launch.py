"""`python main.py`: the headless fallback without a display, the screenshot
mode (real app, real runtime, compositor, pixel checks on the saved PNG) and `ilbot app`."""

from __future__ import annotations

import json

import pytest
from PyQt6.QtGui import QImage

from ilbot.gui import launch
from ilbot.gui.overlay import EVENT_COLOURS

from test_gui_app import tiny_model  # noqa: F401 - the shared tiny checkpoint fixture


def test_without_a_display_it_says_so_and_runs_the_headless_agent(tiny_model, monkeypatch, capsys):  # noqa: F811
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert launch.main(["--model", str(tiny_model), "--ticks", "12"]) == 0
    out = capsys.readouterr().out
    assert "no display" in out
    assert "headless sandbox run: 12 ticks" in out and "plan latency" in out
    # --screenshot needs a display: a clear error, exit 2
    assert launch.main(["--model", str(tiny_model), "--screenshot", "x.png"]) == 2
    assert "needs a display" in capsys.readouterr().err
    # another game's source cannot play headless: one line, naming the command that can
    assert launch.main(["--model", str(tiny_model), "--source", "json-dir:x", "--ticks", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "json-dir:x" in err and "ilbot play" in err


def test_headless_json_summary(tiny_model, capsys):  # noqa: F811
    assert launch.main(["--model", str(tiny_model), "--headless", "--ticks", "5", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ticks"] == 5
    assert summary["actions"] == sum(summary["actions_by_type"].values())
    assert set(summary["actions_by_type"]) == {"CLICK", "KEY", "SCROLL", "MOVE"}
    assert "planned" not in summary["interventions"] and summary["plan_ms_p50"] > 0


def test_bad_options_and_a_bad_model_are_one_line_errors(tmp_path, capsys):
    assert launch.main(["--ticks", "0"]) == 2
    assert "--ticks must be at least 1" in capsys.readouterr().err
    assert launch.main(["--headless", "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "no such checkpoint folder" in err and len(err.strip().splitlines()) == 1


def test_ilbot_app_is_the_same_command(tiny_model, capsys):  # noqa: F811
    from ilbot.cli import main as cli_main

    assert cli_main(["app", "--model", str(tiny_model), "--headless", "--ticks", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["ticks"] == 3
    assert launch.SHIPPED_MODEL.name  # a path under ilbot/sandbox/assets


def test_screenshot_mode_saves_app_and_overlay(tiny_model, tmp_path, own_display, qapp):  # noqa: F811
    png = tmp_path / "shot.png"
    rc = launch.main(["--model", str(tiny_model), "--screenshot", str(png), "--ticks", "3",
                      "--sessions", str(tmp_path / "sessions")])
    assert rc == 0 and png.exists()
    img = QImage(str(png))
    assert img.width() >= 800 and img.height() >= 600  # the game and the app beside it


def test_screenshot_of_another_tab_and_an_unknown_tab(tiny_model, tmp_path, own_display, qapp, capsys):  # noqa: F811
    png = tmp_path / "sessions.png"
    rc = launch.main(["--model", str(tiny_model), "--screenshot", str(png), "--ticks", "2", "--tab", "Sessions",
                      "--sessions", str(tmp_path / "sessions")])
    assert rc == 0 and png.exists()
    img = QImage(str(png))
    assert img.width() < 800 and img.height() > 500  # the main window alone, not the game
    capsys.readouterr()
    rc = launch.main(["--model", str(tiny_model), "--screenshot", str(tmp_path / "x.png"), "--tab", "nope",
                      "--sessions", str(tmp_path / "sessions")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "'nope'" in err and "live" in err and "sessions" in err
    assert not (tmp_path / "x.png").exists()


def test_screenshot_shows_the_planned_ellipses_at_their_centres(tiny_model, tmp_path, own_display, qtbot):  # noqa: F811
    from ilbot.gui.main_window import MainWindow
    from ilbot.gui.screenshot import take

    win = MainWindow(model=str(tiny_model), sessions_dir=tmp_path / "sessions")
    qtbot.addWidget(win)
    assert win.load_model()
    png = tmp_path / "shot.png"
    try:
        from PyQt6.QtWidgets import QApplication

        assert take(QApplication.instance(), win, png, ticks=3) == 0
        origin = win.game_window.mapToGlobal(win.game_window.rect().topLeft())
        plan = win.grabbed_plan
    finally:
        win.shutdown()
    img = QImage(str(png))

    def visible(a):  # inside the game, clear of the badge (top centre)
        return 10 < a.x < 790 and 40 < a.y < 590

    shown = [a for a in plan if visible(a)]
    if not shown:
        pytest.skip("the sampled plan has no event clear of the legend and timeline")
    last = shown[-1] if shown[-1] is plan[-1] else None
    exact = 0
    for a in shown:
        c = img.pixelColor(origin.x() + int(a.x), origin.y() + int(a.y))
        if (c.red(), c.green(), c.blue()) == EVENT_COLOURS[a.type]:
            exact += 1
        elif a is last:
            pytest.fail(f"the last planned event's centre ({a.x:.0f}, {a.y:.0f}) is not drawn in its colour")
    assert exact >= 1


def test_main_py_ticks_json_plays_the_sandbox(own_display):
    """`python main.py --ticks N --json`: the app plays the sandbox in its default execution mode
    and ends with one JSON line whose score (items the agent gathered) is > 0."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "main.py", "--ticks", "40", "--json"], capture_output=True, text=True,
                       timeout=240, cwd=root)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "sandbox" and summary["score"] > 0 and summary["ticks"] == 40, summary


def test_main_py_ticks_on_a_source_that_fails_is_one_line(own_display, tmp_path):
    """With a display, `--ticks N` on a source that cannot start or never sends state ends in one
    error line and exit 2 (the JSON summary, with --json, carries the error instead)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "main.py", "--source", "json-dir:", "--ticks", "5"], capture_output=True,
                       text=True, timeout=120, cwd=root)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout.strip() == "", r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a folder" in lines[0]
