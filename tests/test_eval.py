"""`ilbot eval`: report.json layout (issue 4), baselines side by side, per-user breakdown,
free running and the PNG plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ilbot.cli import main as cli
from ilbot.eval.commands import summary_table
from ilbot.training.config import load_config
from ilbot.training.loop import train
from ilbot.training.synthetic import make_dataset

TINY = ["model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "epochs=1", "data.epoch_windows=96", "optim.warmup_steps=2"]
EVENT = {"event_accuracy", "event_macro_f1", "event_balanced_accuracy", "event_recall", "confusion"}
TIME = {"dt_mae_q50_ms", "dt_pinball_ms", "dt_coverage_q10_q90", "dt_crossing_rate"}
XY = {"xy_mae_px", "x_mae_px", "y_mae_px", "xy_nll", "x_coverage_1sigma", "y_coverage_1sigma",
      "x_coverage_2sigma", "y_coverage_2sigma"}
EVENT_SCORES = {"event_brier", "event_ece", "event_classwise_ece", "event_reliability"}
TIME_SCORES = {"dt_wis_ms", "dt_interval_score_80_ms", "dt_pit_hist"}
XY_SCORES = {"x_crps_px", "y_crps_px", "x_pit_hist", "y_pit_hist"}
BASELINES = ["majority", "markov", "dt_quantiles", "previous_position", "last_click"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("evalrun")
    ds = make_dataset(root, n_sessions=4, duration_s=60)
    train(ds, root / "run", load_config(None, TINY), show_progress=False)
    return ds, root / "run"


def test_report_layout_metrics_and_plots(trained, tmp_path, capsys):
    ds, run = trained
    out = tmp_path / "rep"
    assert cli(["eval", "--model", str(run), "--data", str(ds), "--out", str(out), "--free-running-ticks", "40"]) == 0
    printed = capsys.readouterr()
    assert "| macro-F1 |" in printed.out and "eval val" in printed.err  # table and progress
    rep = json.loads((out / "report.json").read_text())
    assert {"n_slots", "all", "in_window", "lookahead", "per_user", "free_running", "meta"} <= set(rep)
    n = rep["n_slots"]
    assert n["all"] == n["in_window"] + n["lookahead"] > 0
    for kind in ("all", "in_window", "lookahead"):
        r = rep[kind]
        assert list(r["baselines"]) == BASELINES
        assert EVENT | TIME | XY | EVENT_SCORES | TIME_SCORES | XY_SCORES <= set(r["model"])
        conditional = {"button_acc", "key_action_acc", "key_id_acc"}  # the look-ahead slot is always a MOVE here
        assert conditional <= set(r["model"]) if kind != "lookahead" else not (conditional & set(r["model"]))
        assert "scroll_acc" not in r["model"]  # the generator never scrolls
        assert set(r["baselines"]["majority"]) >= EVENT | EVENT_SCORES
        assert not (set(r["baselines"]["majority"]) & (TIME | XY | TIME_SCORES | XY_SCORES))
        assert set(r["baselines"]["markov"]) == EVENT | EVENT_SCORES
        assert set(r["baselines"]["dt_quantiles"]) == TIME | TIME_SCORES
        assert set(r["baselines"]["previous_position"]) == set(r["baselines"]["last_click"]) == XY | XY_SCORES
        assert set(r["model"]["dt_pinball_ms"]) == {"q10", "q50", "q90"}
        assert np.array(r["model"]["confusion"]).shape == (4, 4)
        for m in [r["model"]] + list(r["baselines"].values()):  # PIT counts: 10 bins, one count per slot
            for key in ("dt_pit_hist", "x_pit_hist", "y_pit_hist"):
                assert key not in m or (len(m[key]) == 10 and sum(m[key]) == pytest.approx(n[kind]))
            for key in ("x_crps_px", "y_crps_px", "dt_wis_ms", "event_brier"):
                assert key not in m or m[key] >= 0
        iv = r["intervals"]  # session-bootstrap intervals: one val session here, so no spread to measure
        assert (iv["unit"], iv["n_units"], iv["figures"]) == ("session", 1, {})
        m = r["model"]
        assert 0 <= m["event_ece"] <= 1 and sum(m["event_reliability"]["top1"]["count"]) == n[kind]
        # WIS of the three quantiles is their mean pinball loss × 2 (Bracher et al.)
        assert m["dt_wis_ms"] == pytest.approx(sum(m["dt_pinball_ms"].values()) / 1.5, rel=1e-6)
    assert set(rep["per_user"]) <= {"1", "2"} and rep["per_user"]
    user = next(iter(rep["per_user"].values()))
    assert {"n_slots", "all", "in_window", "lookahead"} <= set(user) and "model" in user["in_window"]
    assert "x_crps_px" in user["in_window"]["model"] and "x_pit_hist" not in user["in_window"]["model"]
    fr = rep["free_running"]
    assert fr["n_ticks"] == 40 and fr["events_per_tick_wasserstein"] >= 0
    assert set(fr["idle_tick_rate"]) == {"model", "real"} and fr["dt_wasserstein_ms"] is None or fr["dt_wasserstein_ms"] >= 0
    assert rep["meta"]["baseline_fit"].startswith("training split")
    assert "one session evaluated: no session-bootstrap intervals" in printed.out
    assert "| accuracy (argmax) |" in printed.out and "| x CRPS px |" in printed.out and "| dt WIS ms |" in printed.out
    for png in ("confusion.png", "dt_calibration.png", "xy_calibration.png", "pit.png", "reliability.png",
                "coverage.png", "events_per_tick.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_eval_train_split_capped_without_free_running(trained, tmp_path):
    ds, run = trained
    out = tmp_path / "rep"
    assert cli(["eval", "--model", str(run / "last"), "--data", str(ds), "--split", "train", "--out", str(out),
                "--max-windows", "50", "--free-running-ticks", "0", "--quiet"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["meta"]["n_windows"] == 50 and rep["free_running"] == {}
    assert "evaluated split" in rep["meta"]["baseline_fit"]  # no other split to fit on
    assert not (out / "events_per_tick.png").exists()
    assert "lookahead" in summary_table(rep)


def test_eval_bad_inputs_are_one_line_errors(trained, tmp_path, capsys):
    ds, run = trained
    assert cli(["eval", "--model", str(tmp_path / "nothing"), "--data", str(ds), "--out", str(tmp_path / "r")]) == 2
    assert "nothing" in capsys.readouterr().err
    assert cli(["eval", "--model", str(run), "--data", str(ds), "--split", "nosuch", "--out", str(tmp_path / "r")]) == 2
    assert "nosuch" in capsys.readouterr().err
