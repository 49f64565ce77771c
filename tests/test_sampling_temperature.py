"""The planner's sampling temperatures per kind of draw (ilbot.model.sampling.Temperature): their
checks, how the planner applies them, how a checkpoint carries them, and how the closed-loop
evaluation chooses and stores them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ilbot.data.keys import KEY_VOCAB
from ilbot.errors import CheckpointError
from ilbot.model import ModelConfig, UnifiedEventModel, load_checkpoint, save_checkpoint
from ilbot.model.checkpoint import write_sampling
from ilbot.model.planner import Planner
from ilbot.model.sampling import Temperature
from ilbot.model.synthetic import synthetic_windows
from ilbot.sandbox import SHIPPED_MODEL

ROOT = Path(__file__).resolve().parents[1]
CFG = ModelConfig(d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, n_slots=40, dropout=0.0)


def _ctx():
    w = synthetic_windows(1, seed=2, n_slots=CFG.n_slots)
    return {k: w[k][0] for k in ("gamestate", "history", "history_mask")}


def _model():
    torch.manual_seed(1)
    return UnifiedEventModel(CFG).eval()


def test_temperature_forms_and_checks():
    assert Temperature.of(None) == Temperature() == Temperature.of(1.0)
    assert Temperature.of(0.5) == Temperature(0.5, 0.5, 0.5)
    assert Temperature.of({"time": 0.3}) == Temperature(1.0, 0.3, 1.0)
    assert Temperature(1.0, 0.5, 0.2).scaled(2.0) == Temperature(2.0, 1.0, 0.4)
    t = Temperature.of({"time": 0.3, "cross": 1.0})
    assert t.crossing == 1.0 and Temperature(time=0.3).crossing == 0.3  # cross defaults to the time temperature
    assert Temperature.of(t.to_dict()) == t and "cross" not in Temperature().to_dict()
    assert t.scaled(0.5) == Temperature(0.5, 0.15, 0.5, 0.5)
    for bad in ({"event": -1.0}, {"time": float("nan")}, {"position": "hot"}, {"positon": 1.0}, {"cross": -0.1}):
        with pytest.raises(ValueError, match="temperature"):
            Temperature.of(bad)


def test_planner_applies_each_kind_and_the_models_own():
    model, ctx = _model(), _ctx()

    def plans(seed, temperature=1.0):
        return Planner(model, seed=seed, temperature=temperature).plan(ctx, tick_ms=5000.0, window_size=(800, 600))

    assert plans(1) != plans(2)  # sampled
    assert plans(1, Temperature(0, 0, 0)) == plans(2, Temperature(0, 0, 0))  # every draw at its mode
    # positions at their mode only: slot 0 draws the same type and time as at T = 1 (later slots
    # see the different position), its mean position; and that mean whatever the seed
    a, b, c = plans(1, Temperature(1, 1, 0)), plans(1), plans(2, Temperature(1, 1, 0))
    assert (a[0].type, a[0].t_ms) == (b[0].type, b[0].t_ms) and a[0].x != b[0].x
    assert (a[0].x, a[0].y) == (c[0].x, c[0].y)
    model.sampling = Temperature(0, 0, 0)  # the checkpoint's own temperatures: a scalar run temperature scales them
    assert plans(1) == plans(2) == plans(1, Temperature(0, 0, 0))
    assert plans(1, Temperature(1, 1, 1)) == b  # a whole Temperature replaces them


def test_the_cross_temperature_decides_only_whether_to_act_this_tick():
    torch.manual_seed(1)
    model = UnifiedEventModel(ModelConfig(**{**CFG.__dict__, "time_head": "crossing"})).eval()
    ctx = _ctx()

    def lengths(temperature):  # events performed per tick over 40 planner seeds
        return [len(Planner(model, seed=s, temperature=temperature).plan(ctx, tick_ms=600.0)) for s in range(40)]

    sharp = Temperature(0, 0, 0)  # every draw at its mode, the crossing one too (cross follows time)
    assert len(set(lengths(sharp))) == 1
    # only the crossing draw sampled: the same modes, but whether (and after how many events) the
    # tick ends now varies from seed to seed
    assert len(set(lengths(Temperature(0, 0, 0, cross=1.0)))) > 1
    assert lengths(Temperature(0, 0, 0, cross=0.0)) == lengths(sharp)


def test_checkpoint_carries_sampling(tmp_path):
    d = save_checkpoint(tmp_path / "ck", _model(), spec_hash="h", key_vocab=KEY_VOCAB, stats={})
    assert load_checkpoint(d).model.sampling == Temperature()
    write_sampling(d, Temperature(0.5, 0.3, 0.5, cross=1.0))
    ck = load_checkpoint(d)
    assert ck.sampling == ck.model.sampling == Temperature(0.5, 0.3, 0.5, cross=1.0)
    meta = json.loads((d / "config.json").read_text())
    meta["sampling"] = {"event": 0.5, "time": -2}
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"config\.json: sampling: temperature time"):
        load_checkpoint(d)
    meta["sampling"] = [1, 2]
    (d / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="sampling: expected an object"):
        load_checkpoint(d)


def test_closed_loop_chooses_and_stores_sampling(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "eval", "closed-loop", "--model", str(model), "--seeds", "2",
                        "--first-seed", "7", "--ticks", "20", "--json", "--sampling", "event=0.5,time=0.25",
                        "--sampling", "position=0", "--store-sampling", "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [s["seed"] for s in report["per_seed"]] == [7, 8]
    cands = report["candidates"]
    assert [c["sampling"] for c in cands] == [{"event": 0.5, "time": 0.25, "position": 1.0},
                                              {"event": 1.0, "time": 1.0, "position": 0.0}]
    best = max(cands, key=lambda c: c["fit_score"])
    assert report["sampling"] == best["sampling"] and report["fit_score"] == best["fit_score"]
    assert report["fit_score"] == pytest.approx(report["mean_ratio"] - abs(report["idle_rate"] - report["demo_idle_rate"])
                                                - max(0.0, report["misclick_rate"] - report["demo_misclick_rate"]), abs=1e-3)
    assert json.loads(r.stdout.strip().splitlines()[-1])["sampling"] == best["sampling"]
    assert load_checkpoint(model).sampling == Temperature.of(best["sampling"])  # the chosen one, stored
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "eval", "closed-loop", "--model", str(model), "--seeds", "1",
                        "--ticks", "5", "--store-sampling"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode != 0 and "--store-sampling needs --sampling" in r.stderr and "Traceback" not in r.stderr
