"""Post-hoc σ calibration (ilbot.eval.calibrate) on a tiny real training run that also uses the
decoder options (xy_residual, slot_elapsed_input) end to end: train → calibrate → load → plan."""

from __future__ import annotations

import numpy as np
import pytest

from ilbot.data.dataset import open_dataset
from ilbot.eval.report import pick_windows, predict_split
from ilbot.eval.calibrate import ONE_SIGMA, coverage_scale, main
from ilbot.model.checkpoint import load_checkpoint
from ilbot.model.planner import Planner
from ilbot.training.config import load_config
from ilbot.training.loop import train
from ilbot.training.synthetic import make_dataset

TINY = ["model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0, "
        "xy_residual=true, slot_elapsed_input=true}",
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


def _coverage(ck, ds_path):
    ds = open_dataset(ds_path, split="train")
    slots, pred = predict_split(ck.model, ds, pick_windows(len(ds), 400, 0))
    return (np.mean(np.abs(slots.x - pred.x_mu) < pred.x_sigma), np.mean(np.abs(slots.y - pred.y_mu) < pred.y_sigma))


def test_calibrated_checkpoint_covers_68_percent_on_its_windows_and_plans(run, tmp_path, capsys):
    ds, rundir = run
    before = load_checkpoint(rundir)
    assert before.config.xy_residual and before.config.slot_elapsed_input
    assert main([str(rundir), str(ds), "--out", str(tmp_path / "cal"), "--max-windows", "400"]) == 0
    assert "sigma scale x" in capsys.readouterr().out
    after = load_checkpoint(tmp_path / "cal")
    info = after.meta["extra"]["sigma_calibration"]
    assert after.config.x_sigma_scale == pytest.approx(info["x_sigma_scale"]) != 1.0
    cx, cy = _coverage(after, ds)
    assert cx == pytest.approx(ONE_SIGMA, abs=0.01) and cy == pytest.approx(ONE_SIGMA, abs=0.01)
    # same weights: the means do not move, only σ
    b = open_dataset(ds, split="train")
    s0, p0 = predict_split(before.model, b, np.arange(20))
    s1, p1 = predict_split(after.model, b, np.arange(20))
    assert np.allclose(p0.x_mu, p1.x_mu) and np.allclose(p1.x_sigma, p0.x_sigma * info["x_sigma_scale"], rtol=1e-5)
    # the planner reads the same calibrated σ
    batch = b.batch(np.arange(3))
    sl = Planner(after.model, temperature=0.0).sample_slots({k: batch[k] for k in ("gamestate", "history", "history_mask")})
    assert np.isfinite(sl["sigma_x"]).all()


def test_calibrate_bad_path_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path / "nods"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_the_model_package_imports_no_eval():
    """Imports only downward: every ilbot.model module loads without ilbot.eval (calibration,
    which uses the evaluator, lives in ilbot.eval)."""
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
