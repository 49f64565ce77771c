"""What a new user sees, checked where a screenshot of the app showed it wrong: the Train tab fits
the default window (its Build button and job strip were scrolled out of sight), the chosen run's
curves and report show when the tab opens, a short training draws a training curve, the legend
names only curves that have points, every control of every tab has a tooltip, session names are
whole and an empty folder says how to fill it; the end of a replay (app and command line) says how
much of the session ran; `--tab TAB/PAGE`; the README shows current live and train pictures.
Real widgets on the test's own Xvfb, real runs, real child processes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PyQt6.QtCore import QPoint
from PyQt6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QLabel, QLineEdit,
                             QMenuBar, QPushButton, QTabBar, QTableView, QVBoxLayout, QWidget)

from ilbot.data.progress import Progress
from ilbot.training.synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "tiny.toml"
JOB_MS = 90_000  # generous bound for one child job on a loaded 2-core machine


# ------------------------------------------------------------------------------------------ helpers
@pytest.fixture
def sessions_dir(tmp_path):
    d = tmp_path / "sessions"
    d.mkdir()
    return d


def make_window(qtbot, sessions_dir):
    from ilbot.gui.main_window import DEFAULT_SIZE, MainWindow

    win = MainWindow(sessions_dir=sessions_dir, persist=False)
    qtbot.addWidget(win)
    win.resize(*DEFAULT_SIZE)  # the default on a screen with room for it
    win.show()
    QApplication.processEvents()
    return win


def write_run(run: Path, val: list[float], report: dict | None = None) -> Path:
    """A run folder as `ilbot train` (and `ilbot eval`) leave it."""
    (run / "best").mkdir(parents=True)
    (run / "best" / "model.safetensors").write_bytes(b"x")
    (run / "metrics.jsonl").write_text("".join(json.dumps({"kind": "val", "step": 10 * (i + 1), "loss": v}) + "\n"
                                               for i, v in enumerate(val)))
    if report is not None:
        (run / "reports" / "r1").mkdir(parents=True)
        (run / "reports" / "r1" / "report.json").write_text(json.dumps(report))
    return run


def inside_viewport(widget: QWidget, area) -> bool:
    """Is the whole widget on screen inside the scroll area's viewport (no scrolling needed)?"""
    top_left = widget.mapTo(area.viewport(), QPoint(0, 0))
    vp = area.viewport().rect()
    return widget.isVisible() and vp.contains(top_left) and top_left.y() + widget.height() <= vp.bottom() + 1


# ------------------------------------------------------------------------------------------ layout
def test_the_train_tab_fits_the_default_window_with_its_buttons_and_job_strip(qtbot, sessions_dir):
    win = make_window(qtbot, sessions_dir)
    try:
        i = win.tabs.indexOf(win.train)
        win.tabs.setCurrentIndex(i)
        area = win.tabs.area(i)
        for page in range(win.train.pages.count()):
            win.train.pages.setCurrentIndex(page)
            QApplication.processEvents()
            assert area.verticalScrollBar().maximum() == 0, win.train.pages.tabText(page)
        win.train.pages.setCurrentIndex(0)
        QApplication.processEvents()
        for w in (win.train.build_button, win.train.progress_bar, win.train.cancel_button, win.train.status_label):
            assert inside_viewport(w, area), w
        win.train.pages.setCurrentIndex(1)
        QApplication.processEvents()
        assert inside_viewport(win.train.train_button, area) and inside_viewport(win.train.curves, area)
        assert win.train.curves.height() >= win.train.curves.minimumHeight()
    finally:
        win.shutdown()


def test_a_page_with_wrapped_labels_scrolls_only_below_its_minimum_height(qtbot):
    from ilbot.gui.scroll_tabs import ScrollingTabs

    page = QWidget()
    v = QVBoxLayout(page)
    label = QLabel("a long explanation that wraps over several lines when the page is narrow " * 6)
    label.setWordWrap(True)
    v.addWidget(label)
    button = QPushButton("the button under it")
    v.addWidget(button)
    v.addStretch(1)
    tabs = ScrollingTabs()
    tabs.addTab(page, "Page")
    qtbot.addWidget(tabs)
    assert tabs.widget(0) is page and tabs.currentWidget() is page and tabs.indexOf(page) == 0
    tabs.resize(420, 600)
    tabs.show()
    QApplication.processEvents()
    area = tabs.area(0)
    assert area.verticalScrollBar().maximum() == 0 and inside_viewport(button, area)
    tabs.resize(420, 40)  # far below the page's minimum: now it scrolls
    QApplication.processEvents()
    assert area.verticalScrollBar().maximum() > 0


def test_every_control_of_every_tab_has_a_tooltip(qtbot, sessions_dir):
    win = make_window(qtbot, sessions_dir)
    try:
        missing = []
        for w in win.findChildren((QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox)):
            parent = w.parent()
            if isinstance(parent, (QTabBar, QMenuBar, QTableView)):  # Qt's own scroll arrows and corner buttons
                continue
            if isinstance(w, QLineEdit) and isinstance(parent, (QComboBox, QAbstractSpinBox)):
                continue  # the editor inside a combo or spin box: the box has the tooltip
            if not w.toolTip():
                missing.append(f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}")
        assert not missing, missing
        assert len(win.sessions.buttons) == 6 and all(b.toolTip() for b in win.sessions.buttons.values())
    finally:
        win.shutdown()


def test_session_names_show_whole_and_an_empty_folder_says_how_to_fill_it(qtbot, sessions_dir):
    from test_gui_app import write_session

    win = make_window(qtbot, sessions_dir)
    try:
        hint = win.sessions.folder_label.text()
        assert "no sessions yet" in hint and "Record" in hint
        hint = win.train.sessions_label.text()
        assert hint.startswith("No sessions in") and "Add…" in hint
        name = "a-rather-long-session-name-20260101-120000.ilbot.sqlite"
        write_session(sessions_dir / name)
        win.sessions.refresh()
        win.train.refresh_sessions()
        tree = win.sessions.tree
        item = tree.topLevelItem(0)
        assert item.text(0) == name and item.toolTip(0) == str(sessions_dir / name)
        assert tree.columnWidth(0) >= tree.fontMetrics().horizontalAdvance(name)
        assert win.sessions.folder_label.text() == str(sessions_dir)
        assert win.train.sessions_label.text().startswith("Sessions in")
    finally:
        win.shutdown()


# ------------------------------------------------------------------------------------------ Train tab
def test_the_newest_run_is_chosen_with_its_curves_and_its_report(qtbot, tmp_path):
    import os

    from ilbot.gui.train_panel import TrainPanel

    runs = tmp_path / "ws" / "runs"
    old = write_run(runs / "old", [3.0, 2.0])
    new = write_run(runs / "new", [5.0, 4.0, 3.5], report={"meta": {"model": str(runs / "new" / "best")},
                                                           "in_window": {"model": {"event_accuracy": 0.75}}})
    t = old.stat().st_mtime - 100
    os.utime(old, (t, t))
    panel = TrainPanel(sessions_dir=tmp_path / "sessions", workspace=tmp_path / "ws")
    qtbot.addWidget(panel)
    panel.show()
    assert panel.run_path == new and panel.models.selected_run() == new
    assert [s for s, _ in panel.curves.points["val"]] == [10, 20, 30] and panel.curves.points["train"] == []
    assert panel.resume_button.isEnabled() is False  # no last/ checkpoint in this run
    assert panel.report.folder == new / "reports" / "r1"
    assert panel.report.cell("in_window", "accuracy (argmax)", "model") == "0.750"
    assert panel.progress_bar.text() == "no job running" and panel.log_view.isHidden()
    # choosing a run without a report says so instead of showing the other run's report
    panel.models.select(old)
    assert panel.run_path == old and panel.report.folder is None
    assert "no report for old yet" in panel.report.title.text()
    assert [s for s, _ in panel.curves.points["val"]] == [10, 20]


def test_the_legend_names_only_curves_with_points_and_many_validations_are_a_line(qtbot):
    from ilbot.gui.loss_curves import MAX_DOTS, LossCurves

    c = LossCurves()
    qtbot.addWidget(c)
    assert c.legend_names() == []
    c.add({"kind": "val", "step": 1, "loss": 2.0})
    assert c.legend_names() == ["validation"] and c.val_curve.opts["symbol"] == "o"
    c.add({"kind": "train", "step": 2, "loss": 1.5})
    assert c.legend_names() == ["training", "validation"]
    for step in range(3, MAX_DOTS + 5):
        c.add({"kind": "val", "step": step, "loss": 1.0})
    assert c.val_curve.opts["symbol"] is None  # hundreds of dots would merge into a band
    c.clear_curves()
    assert c.legend_names() == []


def test_progress_records_draw_the_running_training_loss(qtbot, tmp_path):
    from ilbot.gui.train_panel import TrainPanel

    panel = TrainPanel(sessions_dir=tmp_path / "sessions", workspace=tmp_path / "ws")
    qtbot.addWidget(panel)
    bar = Progress(100, "train", enabled=False)
    panel._job_record(bar.snapshot())  # the first record: no loss yet
    assert panel.curves.points["train"] == []
    for _ in range(3):
        bar.update(1, loss=2.5)
        panel._job_record(bar.snapshot())
    assert panel.curves.points["train"] == [(1, 2.5), (2, 2.5), (3, 2.5)]
    panel._job_record({"kind": "train", "step": 3, "loss": 2.0})  # the logged record of that step wins
    assert panel.curves.points["train"][-1] == (3, 2.0) and len(panel.curves.points["train"]) == 3


def test_a_short_training_that_logs_no_training_record_still_draws_its_curve(qtbot, tmp_path):
    """A real child training whose `log_every_steps` is never reached (one session in the app,
    one step an epoch, a short cap): the training curve comes from its progress records."""
    from ilbot.gui.train_panel import TrainPanel

    panel = TrainPanel(sessions_dir=tmp_path / "sessions", workspace=tmp_path / "ws")
    qtbot.addWidget(panel)
    panel.resize(620, 720)
    panel.show()
    panel.dataset_edit.setText(str(make_dataset(tmp_path / "syn", n_sessions=2, duration_s=30)))
    panel.config_combo.setCurrentText(str(TINY_CONFIG))
    panel.minutes_spin.setValue(0.1)
    panel.settings_edit.setText("epochs=400; threads=1; log_every_steps=100000")
    try:
        assert panel.start_training() and panel.log_view.isVisible()
        with qtbot.waitSignal(panel.job_finished, timeout=JOB_MS) as done:
            pass
        kind, ok, detail = done.args
        assert kind == "train" and ok, (detail, panel.log_view.toPlainText()[-2000:])
        logged = [json.loads(line) for line in (panel.run_path / "metrics.jsonl").read_text().splitlines()]
        assert not [d for d in logged if d.get("kind") == "train"]  # the child logged no training record
        steps = [s for s, _ in panel.curves.points["train"]]
        assert len(steps) >= 2 and steps == sorted(steps) and steps[-1] <= panel.last_end["n"]
        assert panel.curves.legend_names()[0] == "training"
    finally:
        panel.shutdown()


# ------------------------------------------------------------------------------------------ replay ends
def test_the_app_says_how_much_of_the_session_a_replay_ran():
    from ilbot.gui.main_window import end_message

    finished = {"reason": "finished", "total": 44, "done": 44, "performed": 30, "chunks": 14}
    assert end_message("replay", finished) == "replay stopped: finished after 44 of 44 events (30 performed)"
    by_you = {"reason": "user", "total": 44, "done": 12, "performed": 5}
    assert end_message("replay", by_you) == "replay stopped: by you after 12 of 44 events (5 performed)"
    agent = {"reason": "ticks", "ticks": 80, "error": None}
    assert end_message("agent", agent) == "agent stopped: tick limit reached after 80 ticks"
    failed = {"reason": "error", "ticks": 3, "error": "boom"}
    assert end_message("agent", failed) == "agent stopped: an error stopped it after 3 ticks (boom)"


def test_cli_replay_shows_progress_through_the_session_and_a_plain_summary(tmp_path, capsys):
    from ilbot.agent.play_commands import progress_line
    from ilbot.cli import main as cli_main
    from test_replay import _session

    from ilbot.data.schema import Button, Event

    ms = 1_000_000
    events = [Event.make(i * 2 * ms, 10 + i, 10 + i) for i in range(40)]  # a fast trail: thinned
    events += [Event.make(i * 250 * ms, 100 + i, 100, button=Button.LEFT if i % 4 == 0 else 0, hold_ms=40)
                for i in range(1, 13)]  # 3 s of slower moves and clicks
    path = _session(tmp_path / "s.ilbot.sqlite", events)
    assert cli_main(["replay", str(path)]) == 0
    out, err = capsys.readouterr()
    progress = [line for line in err.splitlines() if line.strip().startswith("event ")]
    assert progress, err  # at least one line while it ran (one every 2 s)
    m = re.match(r"\s+event (\d+)/(\d+) \((\d+)%\): \d+ actions performed, \d+ safety interventions", progress[0])
    assert m and 0 < int(m.group(1)) <= int(m.group(2)), progress[0]
    assert "tick 0" not in err and "state: running" not in out
    assert "mode: dry_run; stopped: finished" in out
    assert re.search(r"replayed: \d+ \(the other \d+ recorded events: mouse moves too close", out)
    assert "performed: " in out and "(dry run: shown only, none sent to the game)" in out
    assert progress_line({"ticks": 7, "performed": 3, "interventions": {}}, 20).startswith("  tick 7/20: 3 actions")
    assert progress_line({"total": 0, "done": 0}).startswith("  event 0:")


# ------------------------------------------------------------------------------------------ screenshots
def test_tab_and_page_selection_for_screenshots(qtbot, sessions_dir):
    from ilbot.errors import UserError
    from ilbot.gui.screenshot import page_title, select_tab

    assert page_title("2 Training") == "training" and page_title("Live") == "live"
    win = make_window(qtbot, sessions_dir)
    try:
        select_tab(win, "train/models")
        assert win.tabs.currentWidget() is win.train and win.train.pages.currentIndex() == 2
        select_tab(win, "Train/Training")
        assert win.train.pages.currentIndex() == 1
        with pytest.raises(UserError, match=r"no page 'nope'; it has data, training, models"):
            select_tab(win, "train/nope")
        with pytest.raises(UserError, match="that tab has no pages"):
            select_tab(win, "live/x")
    finally:
        win.shutdown()


def test_the_readme_shows_the_live_and_train_pictures():
    from PyQt6.QtGui import QImage

    readme = (ROOT / "README.md").read_text()
    for name in ("screenshot.png", "screenshot-train.png"):
        assert f"(docs/{name})" in readme, name
        image = QImage(str(ROOT / "docs" / name))
        assert not image.isNull() and image.width() >= 500 and image.height() >= 700, name


# ------------------------------------------------------------------------------------------ --safety
def test_app_refuses_a_zero_ms_tick_from_a_safety_file_as_its_dialog_does(tmp_path, capsys):
    """A 0 ms tick makes every state stale at once (the run pauses for good): the dialog refuses it
    at the field, and `--safety FILE` refuses it with one line naming the file and the field."""
    from ilbot.gui import launch

    bad = tmp_path / "zero.toml"
    bad.write_text("[safety]\ntick_ms = 0\nmin_dt_ms = 20\n")
    assert launch.main(["--headless", "--ticks", "1", "--safety", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "safety.tick_ms" in err and "got 0" in err
    # a good file's limits are the headless run's: one action a second leaves the rate limit busy
    args = ["--headless", "--ticks", "20", "--json"]
    assert launch.main(args) == 0
    free = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    slow = tmp_path / "slow.toml"
    slow.write_text("[safety]\nmax_actions_per_s = 1\n")
    assert launch.main(args + ["--safety", str(slow)]) == 0
    limited = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert limited["ticks"] == 20 and limited["actions"] < free["actions"]
    assert limited["interventions"] and not free["interventions"]
