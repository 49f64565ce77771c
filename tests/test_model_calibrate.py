"""`ilbot eval calibrate` on a tiny real training run that also uses the decoder options
(xy_residual, slot_elapsed_input, the crossing time head): train → calibrate (in place or into
a copy) → load → the evaluator's figures hit the targets on the fitting windows → plan."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ilbot.cli import main as cli
from ilbot.data.dataset import open_dataset
from ilbot.eval.calibrate import ONE_SIGMA, coverage_scale
from ilbot.eval.report import kind_mask, pick_windows, predict_split
from ilbot.model.checkpoint import load_checkpoint
from ilbot.model.planner import Planner
from ilbot.training.config import load_config
from ilbot.training.loop import train
from ilbot.training.synthetic import make_dataset

TINY = ["model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0, "
        "xy_residual=true, slot_elapsed_input=true, time_head=\"crossing\"}",
        "data.batch_size=16", "epochs=1", "data.epoch_windows=96", "optim.warmup_steps=2"]


def test_coverage_scale_is_one_for_gaussian_residuals_and_below_for_heavy_tails():
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.5, 2.0, 200_000)
    assert coverage_scale(rng.normal(size=sigma.size) * sigma, sigma) == pytest.approx(1.0, abs=0.02)
    # Laplace residuals with the same variance: most are small, so 1σ covers more than 68 %
    lap = rng.laplace(scale=1 / np.sqrt(2), size=sigma.size) * sigma
    s = coverage_scale(lap, sigma)
    assert 0.7 < s < 0.95
    assert np.mean(np.abs(lap) < s * sigma) == pytest.approx(ONE_SIGMA, abs=0.01)
    with pytest.raises(ValueError):
        coverage_scale(np.zeros(0), np.zeros(0))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("calrun")
    ds = make_dataset(root, n_sessions=4, duration_s=60)
    train(ds, root / "run", load_config(None, TINY), show_progress=False)
    return ds, root / "run"


def _figures(ck, ds_path):
    ds = open_dataset(ds_path, split="val")
    slots, pred = predict_split(ck.model, ds, pick_windows(len(ds), 0, 0))
    out = {}
    for kind in ("in_window", "lookahead"):
        k = kind_mask(slots, kind)
        z = (slots.x[k] - pred.x_mu[k]) / pred.x_sigma[k], (slots.y[k] - pred.y_mu[k]) / pred.y_sigma[k]
        q = pred.time_q[k]
        out[kind] = (np.mean(np.abs(z[0]) <= 1), np.mean(np.abs(z[1]) <= 1),
                     np.mean((slots.dt[k] >= q[:, 0]) & (slots.dt[k] <= q[:, 2])))
    return out


def test_calibrate_into_a_copy_hits_the_targets_on_its_windows_and_plans(run, tmp_path, capsys):
    ds, rundir = run
    before = load_checkpoint(rundir / "last")
    assert before.calibration is None and before.config.time_head == "crossing"
    out = tmp_path / "cal"
    assert cli(["eval", "calibrate", "--model", str(rundir / "last"), "--data", str(ds), "--out", str(out),
                "--quiet", "--json"]) == 0
    printed = capsys.readouterr().out
    assert "| x 1σ cov (0.683) |" in printed and "calibration written to" in printed
    line = json.loads(printed.strip().splitlines()[-1])
    after = load_checkpoint(out)
    assert after.calibration is not None and after.calibration.to_dict() == line["calibration"]
    assert after.meta["weights_sha256"] == before.meta["weights_sha256"]
    assert load_checkpoint(rundir / "last").calibration is None  # the source is untouched
    fit = after.calibration.fit
    assert fit["split"] == "val" and fit["decision_rule"] == "macro_f1"
    assert fit["after"]["all"]["event_accuracy"] >= fit["after"]["all"]["event_accuracy_argmax"] - 1e-12
    # the evaluator's own pass over the fitting windows, with the stored calibration
    for kind, (cx, cy, ct) in _figures(after, ds).items():
        assert cx == pytest.approx(ONE_SIGMA, abs=0.02) and cy == pytest.approx(ONE_SIGMA, abs=0.02), kind
        assert ct == pytest.approx(0.8, abs=0.02), kind
        assert fit["after"][kind]["x_coverage_1sigma"] == pytest.approx(cx, abs=1e-3)
        assert fit["after"][kind]["dt_coverage_q10_q90"] == pytest.approx(ct, abs=1e-3)
    b = open_dataset(ds, split="val").batch(np.arange(3))
    sl = Planner(after.model, temperature=1.0).sample_slots({k: b[k] for k in ("gamestate", "history", "history_mask")})
    assert np.isfinite(sl["sigma_x"]).all() and np.isfinite(sl["q90"]).all()
    # --out: an existing checkpoint only with --overwrite; a foreign folder never
    assert cli(["eval", "calibrate", "--model", str(rundir / "last"), "--data", str(ds), "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli(["eval", "calibrate", "--model", str(rundir / "last"), "--data", str(ds), "--out", str(out), "--quiet",
                "--overwrite", "--decision", "accuracy"]) == 0
    assert load_checkpoint(out).calibration.decision_rule == "accuracy"
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert cli(["eval", "calibrate", "--model", str(rundir / "last"), "--data", str(ds), "--out", str(foreign),
                "--quiet", "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "refusing" in err and err.count("\n") == 1 and (foreign / "notes.txt").read_text() == "keep"


def test_calibrate_in_place_keeps_the_weights_and_a_refit_replaces_it(run, tmp_path, capsys):
    ds, rundir = run
    import shutil

    ck = tmp_path / "ck"
    shutil.copytree(rundir / "last", ck)
    weights = (ck / "model.safetensors").read_bytes()
    assert cli(["eval", "calibrate", "--model", str(ck), "--data", str(ds), "--quiet"]) == 0
    first = load_checkpoint(ck).calibration
    assert first is not None and (ck / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in ck.iterdir() if p.name.startswith("config")) == ["config.json"]
    # a second fit starts from the raw heads again: the same calibration, not a compounded one
    assert cli(["eval", "calibrate", "--model", str(ck), "--data", str(ds), "--quiet"]) == 0
    again = load_checkpoint(ck).calibration
    assert again.sigma_scale == first.sigma_scale and again.time_scale == first.time_scale
    assert again.event_temperature == pytest.approx(first.event_temperature, rel=1e-6)
    capsys.readouterr()


def test_calibrate_bad_input_is_a_one_line_error(run, tmp_path, capsys):
    ds, rundir = run
    cases = [["--model", str(tmp_path / "nope"), "--data", str(ds)],
             ["--model", str(rundir), "--data", str(tmp_path / "nods")],
             ["--model", str(rundir), "--data", str(ds), "--split", "test"],
             ["--model", str(rundir), "--data", str(ds), "--accuracy-slack", "-1"],
             ["--model", str(rundir), "--data", str(ds), "--keep-lead", "1.5"],
             ["--model", str(rundir), "--data", str(ds), "--keep-lead", "nan"],
             ["--data", str(ds)]]
    for args in cases:
        assert cli(["eval", "calibrate", "--quiet"] + args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("ilbot eval: error:") and err.count("\n") == 1, err


def test_the_model_package_imports_no_eval():
    """Imports only downward: every ilbot.model module (the calibration's application too) loads
    without ilbot.eval (fitting the calibration uses the evaluator, so it lives in ilbot.eval)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, pkgutil, importlib, ilbot.model as m\n"
            "for i in pkgutil.iter_modules(m.__path__): importlib.import_module('ilbot.model.' + i.name)\n"
            "print(sorted(x for x in sys.modules if x.startswith('ilbot.eval')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                         cwd=Path(__file__).resolve().parents[1], env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
