"""`ilbot bench train --data`: the training minutes until the model beats every baseline.

A tiny model trains on the generated dataset (ilbot.training.synthetic) with real checks of the
real baselines; the loop's `check` hook keeps its own time off the training clocks; the criterion
(ilbot.eval.beat_baselines) on hand-made numbers: won, lost, tied."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ilbot.cli import main as cli
from ilbot.eval.beat_baselines import COMPARISONS, beats_baselines, compare_with_baselines, summary_line
from ilbot.training.config import load_config
from ilbot.training.loop import train
from ilbot.training.synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = str(ROOT / "configs" / "tiny.toml")
COMPARISON_KEYS = {"slots", "key", "better", "model", "baseline", "baseline_value", "won"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("syn"), n_sessions=4, duration_s=120)


# ------------------------------------------------------------------ the criterion


def _report(model: dict, baselines: dict) -> dict:
    """{kind: {"model": M, "baselines": {name: M}}} from {kind: M} and {name: {kind: M}}."""
    return {kind: {"model": m, "baselines": {name: b.get(kind, {}) for name, b in baselines.items()}}
            for kind, m in model.items()}


BASELINES = {
    "markov": {"all": {"event_accuracy": 0.94}},
    "majority": {"all": {"event_accuracy": 0.92}},
    "dt_quantiles": {"in_window": {"dt_wis_ms": 50.0}, "lookahead": {"dt_wis_ms": 600.0}},
    "previous_position": {"in_window": {"x_crps_px": 30.0, "y_crps_px": 25.0},
                          "lookahead": {"x_crps_px": 170.0, "y_crps_px": 150.0}},
    "last_click": {"in_window": {"x_crps_px": 130.0, "y_crps_px": 100.0},
                   "lookahead": {"x_crps_px": 160.0, "y_crps_px": 155.0}},
}


def _model(**changes) -> dict:
    m = {"all": {"event_accuracy": 0.95, "event_macro_f1": 0.7},
         "in_window": {"dt_wis_ms": 40.0, "x_crps_px": 20.0, "y_crps_px": 18.0},
         "lookahead": {"dt_wis_ms": 590.0, "x_crps_px": 150.0, "y_crps_px": 149.0}}
    for name, value in changes.items():
        kind, key = name.split("__")
        m[kind] = {**m[kind], key: value}
    return m


def test_criterion_won_against_the_best_baseline_of_each_key():
    rows = compare_with_baselines(_report(_model(), BASELINES))
    assert [(r["slots"], r["key"]) for r in rows] == [(k, key) for k, key, _ in COMPARISONS]
    assert all(set(r) == COMPARISON_KEYS and r["won"] for r in rows)
    best = {(r["slots"], r["key"]): (r["baseline"], r["baseline_value"]) for r in rows}
    assert best[("lookahead", "x_crps_px")] == ("last_click", 160.0)  # the lower of the two position rivals
    assert best[("lookahead", "y_crps_px")] == ("previous_position", 150.0)
    assert best[("all", "event_accuracy")] == ("markov", 0.94)  # the higher accuracy
    assert beats_baselines(rows)
    assert summary_line(_report(_model(), BASELINES)).startswith("beats every baseline: yes")


def test_criterion_lost_on_one_score_or_on_accuracy():
    rows = compare_with_baselines(_report(_model(lookahead__dt_wis_ms=601.0), BASELINES))
    assert [(r["slots"], r["key"]) for r in rows if not r["won"]] == [("lookahead", "dt_wis_ms")]
    assert not beats_baselines(rows)
    line = summary_line(_report(_model(lookahead__dt_wis_ms=601.0), BASELINES))
    assert line.startswith("beats every baseline: no (lost 1 of 7") and "dt_quantiles 600" in line
    rows = compare_with_baselines(_report(_model(all__event_accuracy=0.939), BASELINES))
    assert [r["key"] for r in rows if not r["won"]] == ["event_accuracy"]
    assert not beats_baselines(rows)


def test_criterion_ties_lose_on_scores_and_win_on_accuracy():
    rows = compare_with_baselines(_report(_model(in_window__x_crps_px=30.0), BASELINES))
    assert [r["key"] for r in rows if not r["won"]] == ["x_crps_px"]  # equal CRPS is not better
    rows = compare_with_baselines(_report(_model(all__event_accuracy=0.94), BASELINES))
    assert beats_baselines(rows)  # accuracy ≥ the best baseline's


def test_criterion_skips_what_is_missing_and_needs_one_comparison():
    no_time = {name: b for name, b in BASELINES.items() if name != "dt_quantiles"}
    rows = compare_with_baselines(_report(_model(), no_time))
    assert {r["key"] for r in rows} == {"x_crps_px", "y_crps_px", "event_accuracy"}
    assert beats_baselines(rows)
    assert compare_with_baselines({}) == [] and not beats_baselines([])
    assert "no comparison" in summary_line({})


# ------------------------------------------------------------------ the loop's hook


def test_check_hook_time_is_not_training_time(dataset, tmp_path):
    """Each check sleeps; the training clock the hook sees advances by training only, and the
    run's elapsed_s leaves the sleeps out."""
    cfg = load_config(TINY, ["threads=1", "epochs=1000", "max_minutes=0.06"])
    seen = []

    def check(model, info):
        seen.append({**info, "wall": time.monotonic(), "training": model.training})
        model.eval()  # the loop puts it back in training mode
        time.sleep(0.3)

    t0 = time.monotonic()
    summary = train(dataset, tmp_path / "run", cfg, show_progress=False, check=check, check_every_s=0.8)
    wall = time.monotonic() - t0
    assert summary["end"] == "cap" and len(seen) >= 3
    assert all(s["training"] for s in seen)
    steps = [s["step"] for s in seen]
    assert steps == sorted(set(steps)) and steps[-1] == summary["steps"]
    assert [s["windows"] for s in seen] == sorted({s["windows"] for s in seen})
    for k in range(1, len(seen)):
        wall_gap = seen[k]["wall"] - seen[0]["wall"]
        train_gap = seen[k]["train_s"] - seen[0]["train_s"]
        assert wall_gap - train_gap >= 0.3 * k  # the k sleeps before check k are not training time
    assert wall >= summary["elapsed_s"] + 0.3 * len(seen)


# ------------------------------------------------------------------ the bench


def test_bench_train_minutes_to_beat_baselines_json(dataset, capsys):
    assert cli(["bench", "train", "--json", "--data", str(dataset), "--config", TINY, "--set", "threads=1",
                "--set", "epochs=1000", "--minutes", "0.3", "--check-every-s", "4", "--eval-windows", "150"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert {"minutes_to_beat_baselines", "checks", "windows_per_s", "train_minutes", "steps", "end"} <= set(r)
    assert r["end"] == "cap" and r["minutes_cap"] == 0.3 and r["run"] is None
    assert r["eval_slots"]["all"] == r["eval_slots"]["in_window"] + r["eval_slots"]["lookahead"] > 150
    checks = r["checks"]
    assert len(checks) >= 3
    minutes = [c["minutes"] for c in checks]
    assert minutes == sorted(minutes) and len(set(minutes)) == len(minutes)
    assert minutes[-1] == r["train_minutes"] >= 0.3  # the last check is after the cap, on training time only
    assert [c["step"] for c in checks][-1] == r["steps"]
    assert r["windows_per_s"] > 0 and all(c["windows_per_s"] > 0 for c in checks)
    for c in checks:
        assert {(x["slots"], x["key"]) for x in c["comparisons"]} == {(k, key) for k, key, _ in COMPARISONS}
        assert all(set(x) == COMPARISON_KEYS for x in c["comparisons"])
        assert c["won"] == all(x["won"] for x in c["comparisons"])
    first = next((c for c in checks if c["won"]), None)
    assert r["minutes_to_beat_baselines"] == (None if first is None else first["minutes"])
    progress = [ln for ln in captured.err.splitlines() if ln.startswith("bench train: ")]
    assert len(progress) == len(checks) + 1 and "beats every baseline" in progress[-1]


def test_bench_train_refuses_bad_options(dataset, capsys):
    assert cli(["bench", "train", "--minutes", "1"]) == 2
    assert "--minutes needs --data" in capsys.readouterr().err
    assert cli(["bench", "train", "--data", str(dataset), "--eval-windows", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--eval-windows must be an integer >= 1, got 0" in err
    assert cli(["bench", "train", "--data", str(dataset), "--set", "data.val_split=calib"]) == 2
    assert "has no split 'calib'" in capsys.readouterr().err
