"""Training: a tiny model learns the generated routine and beats every baseline; resume continues
exactly; a 2-process DDP run (gloo, torchrun) trains and its checkpoint loads in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ilbot.cli import main as cli
from ilbot.data.dataset import open_dataset
from ilbot.model.checkpoint import load_checkpoint
from ilbot.errors import UserError
from ilbot.training.config import load_config
from ilbot.training.data import EpochSampler, idle_windows, iterate_batches
from ilbot.training.loop import lr_at, train
from ilbot.training.synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model={d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "optim.lr=3e-3", "optim.warmup_steps=20", "log_every_steps=5"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("syn"), n_sessions=4, duration_s=120)


@pytest.mark.slow
def test_tiny_model_beats_every_baseline(dataset, tmp_path):
    """A few hundred steps suffice on the routine; in-window slots are where it is learnable (the
    look-ahead of this generator is a coin flip between busy and idle ticks)."""
    run = tmp_path / "run"
    assert cli(["train", "--data", str(dataset), "--out", str(run), "--quiet", *sum((["--set", s] for s in TINY), []),
                "--set", "epochs=8"]) == 0
    rep_dir = tmp_path / "report"
    assert cli(["eval", "--model", str(run), "--data", str(dataset), "--out", str(rep_dir), "--quiet",
                "--free-running-ticks", "50"]) == 0
    rep = json.loads((rep_dir / "report.json").read_text())
    r = rep["in_window"]
    m, b = r["model"], r["baselines"]
    assert m["event_macro_f1"] > max(b["majority"]["event_macro_f1"], b["markov"]["event_macro_f1"])
    assert m["dt_mae_q50_ms"] < b["dt_quantiles"]["dt_mae_q50_ms"]
    assert m["dt_pinball_ms"]["q50"] < b["dt_quantiles"]["dt_pinball_ms"]["q50"]
    assert m["xy_mae_px"] < b["previous_position"]["xy_mae_px"]
    assert m["xy_nll"] < b["previous_position"]["xy_nll"]
    assert m["key_action_acc"] > b["majority"]["key_action_acc"]
    assert m["dt_crossing_rate"] == 0.0
    for png in ("confusion.png", "dt_calibration.png", "xy_calibration.png", "events_per_tick.png"):
        assert (rep_dir / png).stat().st_size > 1000


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def test_resume_continues_at_saved_step_with_optimizer_state_and_data_order(dataset, tmp_path):
    overrides = TINY + ["epochs=2", "model.dropout=0.1", "data.epoch_windows=160"]
    cfg = load_config(None, overrides)
    full = train(dataset, tmp_path / "full", cfg, show_progress=False)
    assert full["steps"] == 20  # 2 epochs × 160 windows / 16

    paused = train(dataset, tmp_path / "resumed", load_config(None, overrides), show_progress=False, stop_at_step=13)
    assert paused["steps"] == 13
    state = json.loads((tmp_path / "resumed" / "last" / "train_state.json").read_text())
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (13, 1, 3)
    saved_opt = load_file(str(tmp_path / "resumed" / "last" / "train_state.safetensors"))
    assert any(k.endswith(".exp_avg") for k in saved_opt) and float(saved_opt["optim.0.step"]) == 13

    resumed = train(dataset, tmp_path / "resumed", resume=True, show_progress=False)
    assert resumed["steps"] == 20
    a, b = _weights(tmp_path / "full" / "last"), _weights(tmp_path / "resumed" / "last")
    for k in a:  # same step, same optimizer moments, same batches, same dropout draws → same weights
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == sorted(steps) and steps[-1] == 20 and 15 in steps


def test_resume_without_a_run_is_a_clear_error(dataset, tmp_path, capsys):
    assert cli(["train", "--data", str(dataset), "--out", str(tmp_path / "nothing"), "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_ddp_two_cpu_processes_train_and_checkpoint_loads(dataset, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", "2", "-m", "ilbot.cli",
           "train", "--data", str(dataset), "--out", str(run), "--quiet", *sum((["--set", s] for s in TINY), []),
           "--set", "epochs=1", "--set", "data.epoch_windows=128", "--set", "device=cpu"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 4  # 128 windows split over 2 ranks, 16 per batch
    state = json.loads((run / "last" / "train_state.json").read_text())
    assert state["world_size"] == 2
    ck = load_checkpoint(run)  # one process, no process group
    ds = open_dataset(dataset, split="val")
    b = ds.batch(np.arange(4))
    out = ck.model({k: torch.from_numpy(b[k]) for k in ("gamestate", "history", "history_mask", "targets", "target_mask")})
    assert out["event_logits"].shape == (4, 100, 4) and torch.isfinite(out["time_q"]).all()


def test_epoch_sampler_shards_are_disjoint_seeded_and_subsample_idle(dataset):
    ds = open_dataset(dataset, split="train")
    idle = idle_windows(ds)
    assert 0.2 < idle.mean() < 0.5
    s0 = EpochSampler(len(ds), seed=3, rank=0, world_size=2)
    s1 = EpochSampler(len(ds), seed=3, rank=1, world_size=2)
    a, b = s0.indices(0), s1.indices(0)
    assert len(a) == len(b) == -(-len(ds) // 2)
    assert set(a) | set(b) == set(range(len(ds)))
    assert np.array_equal(a, EpochSampler(len(ds), seed=3, rank=0, world_size=2).indices(0))  # a pure function
    assert not np.array_equal(a, s0.indices(1))  # each epoch reshuffles
    few = EpochSampler(len(ds), seed=3, idle=idle, idle_keep=0.2)
    kept = few.epoch_indices(0)
    assert idle[kept].mean() < idle.mean() / 2 and set(np.flatnonzero(~idle)) <= set(kept)
    capped = EpochSampler(len(ds), seed=3, epoch_windows=50)
    assert len(capped.epoch_indices(0)) == 50 and len(capped.batches(0, 16)) == 4
    batches = list(iterate_batches(ds, capped.batches(0, 16), num_workers=1))
    assert [len(x["targets"]) for x in batches] == [16, 16, 16, 2]


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = load_config(None, ["optim.lr=1.0", "optim.warmup_steps=10", "optim.min_lr_ratio=0.1"])
    assert lr_at(0, 100, cfg) == pytest.approx(0.1)
    assert lr_at(9, 100, cfg) == pytest.approx(1.0)
    assert lr_at(10, 100, cfg) == pytest.approx(1.0)
    assert lr_at(55, 100, cfg) == pytest.approx(0.55)
    assert lr_at(100, 100, cfg) == pytest.approx(0.1)
    assert lr_at(500, 100, cfg) == pytest.approx(0.1)


def test_missing_split_names_the_config_key(dataset, tmp_path, capsys):
    assert cli(["train", "--data", str(dataset), "--out", str(tmp_path / "r"), "--set", "data.val_split=holdout2"]) == 2
    err = capsys.readouterr().err
    assert "data.val_split" in err and "holdout2" in err


def test_bench_train_reports_windows_per_second(capsys):
    assert cli(["bench", "train", "--json", "--config", str(ROOT / "configs" / "tiny.toml"), "--steps", "2"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["device"] == "cpu" and doc["windows_per_s"] > 0 and doc["per_device"]["cpu"] == doc["windows_per_s"]


def test_init_from_starts_at_another_runs_weights(dataset, tmp_path):
    """Fine-tuning: `init_from` loads a checkpoint's weights before the first step (a new optimizer
    and schedule) and carries its sampling temperatures on; a model of another shape is refused
    in one line."""
    from ilbot.model.checkpoint import write_sampling
    from ilbot.model.sampling import Temperature

    base = load_config(None, TINY + ["epochs=1", "data.epoch_windows=32"])
    train(dataset, tmp_path / "a", base, show_progress=False)
    assert load_checkpoint(tmp_path / "a" / "last").sampling == Temperature()
    write_sampling(tmp_path / "a" / "last", Temperature(0.5, 0.3, 0.5))
    zero = load_config(None, TINY + ["epochs=1", "data.epoch_windows=32", "optim.lr=1e-12", "optim.warmup_steps=0",
                                     f"init_from={tmp_path / 'a' / 'last'}"])
    train(dataset, tmp_path / "b", zero, show_progress=False)  # lr ~0: the weights stay the ones loaded
    a, b = _weights(tmp_path / "a" / "last"), _weights(tmp_path / "b" / "last")
    for k in a:
        torch.testing.assert_close(a[k], b[k])
    assert load_checkpoint(tmp_path / "b" / "last").sampling == Temperature(0.5, 0.3, 0.5)
    other = load_config(None, [t for t in TINY if not t.startswith("model=")] + [
        "model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        f"init_from={tmp_path / 'a' / 'last'}"])
    with pytest.raises(UserError, match="does not fit"):
        train(dataset, tmp_path / "c", other, show_progress=False)


def test_trimmed_target_slots_change_no_loss_and_no_gradient(dataset):
    """Batches are cut after their last valid target slot (trim_slots): the causal decoder and the
    masked loss make that exact — same loss, same gradients as the full A slots."""
    from ilbot.training.data import trim_slots
    from ilbot.training.loop import build_model

    cfg = load_config(None, TINY)
    ds = open_dataset(dataset, split="train")
    raw = ds.batch(np.arange(min(16, len(ds))))
    cut = trim_slots(dict(raw))
    L = cut["targets"].shape[1]
    assert 1 <= L < raw["targets"].shape[1] and cut["target_mask"].shape == (len(raw["targets"]), L)
    assert raw["target_mask"][:, L:].sum() == 0 and cut["target_mask"][:, -1].any()  # nothing valid was cut
    torch.manual_seed(0)
    model = build_model(cfg, ds).eval()  # eval: no dropout, no position noise (its draws depend on the shape)
    grads, losses = [], []
    for b in (raw, cut):
        t = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in b.items()
             if k in ("gamestate", "history", "history_mask", "targets", "target_mask")}
        model.zero_grad()
        out = model(t, targets={"targets": t["targets"], "target_mask": t["target_mask"]})
        out["loss"].backward()
        losses.append(float(out["loss"].detach()))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)
