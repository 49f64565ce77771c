"""The Train tab with real widgets and real child processes (`python -m ilbot.cli build|train|eval`)
on small generated sessions and a tiny config: sessions listed with their figures, a dataset built
from one session, a capped training whose curves grow and whose bar ends full, evaluation and its
report in the app, the models list with headline figures and the model in use; cancel (the run
stays resumable) and resume; errors as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt

from ilbot.training.synthetic import make_dataset, make_sessions

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "tiny.toml"
JOB_MS = 90_000  # generous bound for one child job on a loaded 2-core machine


@pytest.fixture
def panel(qtbot, tmp_path):
    from ilbot.gui.train_panel import TrainPanel

    in_use: list[str] = []
    sessions = tmp_path / "sessions"
    make_sessions(sessions, n_sessions=2, duration_s=60)
    p = TrainPanel(sessions_dir=sessions, workspace=tmp_path / "ws", current_model=lambda: in_use[-1] if in_use else None)
    p.use_model.connect(in_use.append)
    p.in_use = in_use
    p.errors, p.messages = [], []
    p.error.connect(p.errors.append)
    p.message.connect(p.messages.append)
    qtbot.addWidget(p)
    p.resize(620, 720)
    p.show()
    yield p
    p.shutdown()


def finished(qtbot, panel, kind: str) -> tuple[bool, str]:
    with qtbot.waitSignal(panel.job_finished, timeout=JOB_MS) as blocker:
        pass
    got_kind, ok, detail = blocker.args
    assert got_kind == kind, (got_kind, detail, panel.log_view.toPlainText()[-2000:])
    return ok, detail


def test_sessions_are_listed_with_events_ticks_corrections_and_added_ones(panel, tmp_path):
    made = make_sessions(tmp_path / "imported", n_sessions=1, duration_s=30)[0]
    other = made.rename(made.with_name("imported.ilbot.sqlite"))
    (panel.sessions_dir / "broken.ilbot.sqlite").write_bytes(b"not sqlite")
    panel.add_sessions([other])
    rows = {}
    for i in range(panel.session_tree.topLevelItemCount()):
        item = panel.session_tree.topLevelItem(i)
        rows[item.text(0)] = item
    assert set(rows) == {"synthetic_0.ilbot.sqlite", "synthetic_1.ilbot.sqlite", "broken.ilbot.sqlite", other.name}
    first = rows["synthetic_0.ilbot.sqlite"]
    assert int(first.text(1)) > 100 and first.text(2) == "0" and first.text(3) in ("—", "0") and first.text(4).endswith("s")
    assert "unreadable" in rows["broken.ilbot.sqlite"].text(4)
    assert not rows["broken.ilbot.sqlite"].flags() & Qt.ItemFlag.ItemIsEnabled
    # only the added store is checked; checking by click adds a session to the build
    assert panel.selected_sessions() == [other] and panel.build_button.isEnabled()
    first.setCheckState(0, Qt.CheckState.Checked)
    assert set(panel.selected_sessions()) == {other, panel.sessions_dir / "synthetic_0.ilbot.sqlite"}
    for path in list(panel.selected_sessions()):
        panel.check_sessions([path], False)
    assert not panel.build_button.isEnabled() and panel.build_dataset() is False
    assert panel.errors[-1] == "check at least one session to build a dataset from"


def test_one_session_to_dataset_to_capped_training_to_report_to_the_model_in_use(panel, qtbot):
    one = panel.sessions_dir / "synthetic_0.ilbot.sqlite"
    panel.check_sessions([one])
    assert panel.build_dataset()
    assert panel.busy and not panel.build_button.isEnabled() and panel.cancel_button.isEnabled()
    ok, detail = finished(qtbot, panel, "build")
    data = Path(panel.dataset_edit.text())
    assert ok, detail
    assert data.parent == panel.workspace / "datasets" and (data / "meta.json").is_file()
    assert panel.pages.currentIndex() == 1

    panel.config_combo.setCurrentText(str(TINY_CONFIG))
    panel.minutes_spin.setValue(0.1)  # a 6-second cap ends this run, long before its 400 epochs
    panel.settings_edit.setText("epochs=400; threads=1; log_every_steps=5")
    progress = []
    assert panel.start_training()
    panel.job.record.connect(progress.append)
    qtbot.waitUntil(lambda: any(d.get("kind") == "progress" and d.get("eta_s") is not None for d in progress),
                    timeout=JOB_MS)
    assert "ETA" in panel.status_label.text() and "cap 0.1 min per invocation" in panel.status_label.text()
    first = next(d for d in progress if d.get("kind") == "progress" and d.get("eta_s") is not None)
    assert first["eta_s"] <= 6.0 and first["cap_s"] == 6.0  # 400 epochs would take far longer: the cap decides
    ok, detail = finished(qtbot, panel, "train")
    run = panel.run_path
    assert ok and "cap" in detail, detail
    assert panel.progress_bar.value() == 1000  # the capped run's bar ends full
    assert panel.last_end["reason"] == "cap" and 0 < panel.last_end["n"] < panel.last_end["total"]
    assert len(panel.curves.points["train"]) >= 3 and len(panel.curves.points["val"]) >= 1
    x, y = panel.curves.train_curve.getData()
    assert list(x) == [s for s, _ in panel.curves.points["train"]]
    assert (run / "best" / "model.safetensors").is_file() and any((run / "tb").iterdir())
    assert panel.models.info(run) is not None and panel.models.selected_run() == run

    # evaluate: the report's tables and plots in the app, headline figures in the models list
    panel.models.select(run)
    panel.models.eval_button.click()
    ok, detail = finished(qtbot, panel, "eval")
    assert ok, detail
    report = Path(detail.removeprefix("report: "))
    assert report.parent == run / "reports" and panel.report.folder == report and panel.pages.currentIndex() == 2
    doc = json.loads((report / "report.json").read_text())
    model = doc["in_window"]["model"]
    assert panel.report.cell("in_window", "macro-F1", "model") == f"{model['event_macro_f1']:.3f}"
    assert panel.report.cell("lookahead", "xy MAE px", "previous_position") != ""
    assert {"confusion.png", "dt_calibration.png"} <= set(panel.report.plots)
    assert all(not label.pixmap().isNull() for label in panel.report.plots.values())
    row = panel.models.tree.topLevelItem(0)
    assert row.text(1) == run.name and row.text(4) == f"{model['event_accuracy']:.3f}"
    assert row.text(6) == f"{model['dt_mae_q50_ms']:.1f}" and row.text(7) == f"{model['xy_mae_px']:.1f}"
    assert row.text(3) != "—"  # best validation loss

    # use this model: the signal carries the run; the list marks it in use
    assert row.text(0) == ""
    panel.models.use_button.click()
    assert panel.in_use == [str(run)] and panel.models.tree.topLevelItem(0).text(0) == "● in use"
    assert panel.model_in_use() == run


def test_cancel_checkpoints_and_resume_continues_the_curves(panel, qtbot, tmp_path):
    data = make_dataset(tmp_path / "syn", n_sessions=2, duration_s=60)
    panel.dataset_edit.setText(str(data))
    panel.config_combo.setCurrentText(str(TINY_CONFIG))
    panel.minutes_spin.setValue(0)
    panel.settings_edit.setText("epochs=400; threads=1; log_every_steps=5")
    assert panel.start_training()
    run = panel.run_path
    # three logged points (every 5 steps; progress records add points between them): step 15 reached
    qtbot.waitUntil(lambda: len([s for s, _ in panel.curves.points["train"] if s % 5 == 0]) >= 3, timeout=JOB_MS)
    panel.cancel_button.click()
    ok, detail = finished(qtbot, panel, "train")
    assert ok and detail.startswith("cancelled at step") and "Resume" in detail
    step = json.loads((run / "last" / "train_state.json").read_text())["step"]
    assert step == panel.last_end["n"] >= 15
    assert panel.resume_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.progress_bar.value() < 1000

    # resume with a short cap: the curves keep their first part and grow past the cancel
    panel.dataset_edit.clear()  # the run's dataset comes from the workspace index
    panel.minutes_spin.setValue(0.05)
    panel.resume_button.click()
    assert panel.busy and [s for s, _ in panel.curves.points["train"]][0] == 5
    ok, detail = finished(qtbot, panel, "train")
    assert ok and "cap" in detail, detail
    steps = [s for s, _ in panel.curves.points["train"]]
    assert steps == sorted(steps) and steps[-1] > step and steps[0] == 5
    assert json.loads((run / "last" / "train_state.json").read_text())["step"] > step


def test_errors_are_one_line_and_the_panel_stays_usable(panel, qtbot, tmp_path):
    panel.dataset_edit.setText(str(tmp_path / "nowhere"))
    assert panel.start_training() is False and "does not exist" in panel.errors[-1]
    assert not panel.resume_button.isEnabled()  # no run to resume yet
    assert panel.start_training(resume=True) is False
    assert panel.errors[-1].startswith("choose a run that has a last/ checkpoint")
    data = make_dataset(tmp_path / "syn", n_sessions=2, duration_s=30)
    panel.dataset_edit.setText(str(data))
    panel.settings_edit.setText("threads=1; epochs")
    assert panel.start_training() is False and panel.errors[-1] == "extra settings: 'epochs' is not key=value"
    panel.settings_edit.setText("threads=1; nosuch.key=3")
    assert panel.start_training()
    ok, detail = finished(qtbot, panel, "train")
    assert not ok and "unknown config key 'nosuch'" in detail and "\n" not in detail
    assert panel.errors[-1].startswith("train: ") and not panel.busy and panel.train_button.isEnabled()
    assert panel.evaluate(tmp_path / "no-run") is False and panel.errors[-1].endswith("is not a training run")
    assert not panel.busy
    # a cancelled build leaves no dataset behind
    panel.check_sessions(panel.session_paths())
    assert panel.build_dataset()
    target = panel.job_target
    panel.cancel()
    ok, detail = finished(qtbot, panel, "build")
    assert not ok and detail == "build cancelled" and not target.exists()


def test_models_list_reads_runs_reports_and_which_one_is_in_use(qtbot, tmp_path):
    """Run folders as `ilbot train` and `ilbot eval` leave them (files written here by hand)."""
    import os

    from ilbot.gui.models_list import ModelsList, latest_report, list_runs, same_model

    runs = tmp_path / "runs"
    a, b = runs / "a", runs / "b"
    for run in (a, b):
        (run / "best").mkdir(parents=True)
        (run / "best" / "model.safetensors").write_bytes(b"x")
    (runs / "not-a-run").mkdir()
    (a / "metrics.jsonl").write_text('{"kind": "val", "step": 5, "loss": 2.0}\n{"kind": "val", "step": 9, "loss": 1.5}\n')
    for name, acc, age in (("old", 0.5, 100), ("new", 0.75, 0)):
        rep = a / "reports" / name
        rep.mkdir(parents=True)
        (rep / "report.json").write_text(json.dumps({"in_window": {"model": {
            "event_accuracy": acc, "event_macro_f1": 0.5, "dt_mae_q50_ms": 40.0, "xy_mae_px": 12.25}}}))
        t = (rep / "report.json").stat().st_mtime - age
        os.utime(rep / "report.json", (t, t))
    assert latest_report(a) == a / "reports" / "new" and latest_report(b) is None
    infos = {i.path.name: i for i in list_runs(runs)}
    assert set(infos) == {"a", "b"} and infos["a"].best_val == 1.5 and infos["a"].figures["event_accuracy"] == 0.75
    assert not infos["a"].resumable and infos["b"].figures == {}
    assert same_model(a, a / "best") and same_model(a, a) and not same_model(a, b / "best") and not same_model(a, None)

    current = [str(a / "best")]
    w = ModelsList(runs, current_model=lambda: current[0])
    qtbot.addWidget(w)
    rows = {w.tree.topLevelItem(i).text(1): w.tree.topLevelItem(i) for i in range(w.tree.topLevelItemCount())}
    assert rows["a"].text(0) == "● in use" and rows["b"].text(0) == ""
    assert [rows["a"].text(i) for i in range(3, 8)] == ["1.5", "0.750", "0.500", "40.0", "12.2"]
    assert [rows["b"].text(i) for i in range(2, 8)] == ["—"] * 6
    w.select(b)
    assert not w.report_button.isEnabled() and w.use_button.isEnabled()
    with qtbot.waitSignal(w.use_requested) as got:
        current[0] = str(b)
        w.use_button.click()
    assert got.args == [str(b)] and w.in_use() == b


def test_report_rows_are_the_ones_the_eval_command_prints():
    from ilbot.eval.commands import HEADLINE
    from ilbot.gui.report_view import ROWS

    assert ROWS == list(HEADLINE)
