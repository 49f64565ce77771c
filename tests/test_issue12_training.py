"""Issue 12, training: one recorded session is enough (`ilbot build S` holds out its end by time
without being asked, says so, and `ilbot train` then validates on it); a run whose loss stops
being a number ends in one line and keeps the checkpoints from before it. Real stores, real
datasets, real (tiny) training."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ilbot.cli import main as cli
from ilbot.data import Event, SessionWriter
from ilbot.data.dataset import open_dataset
from ilbot.errors import ConfigError
from ilbot.training.config import load_config
from ilbot.training.loop import train
from ilbot.training.synthetic import make_sessions

TINY = ["model={d_model=16, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "optim.warmup_steps=2"]
SETS = sum((["--set", s] for s in TINY), [])


def _tree(folder: Path) -> dict[str, str]:
    out = {}
    for root, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def one_session(tmp_path_factory):
    return make_sessions(tmp_path_factory.mktemp("one12") / "s", n_sessions=1, duration_s=60, seed=5)[0]


def test_one_session_builds_train_and_val_by_default_and_trains(tmp_path, one_session, capsys):
    ds, run = tmp_path / "ds", tmp_path / "run"
    assert cli(["build", str(one_session), "--out", str(ds), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "too few for a session split" in out and "last 20% of its windows by time are held out as 'val'" in out
    assert "note: no validation split" not in out
    meta = open_dataset(ds).meta
    assert meta["split_names"] == ["train", "val"] and meta["split_by"] == "time"
    n_tr, n_va = len(open_dataset(ds, "train")), len(open_dataset(ds, "val"))
    assert n_va >= 1 and abs(n_va / (n_tr + n_va) - 0.2) < 0.05
    assert cli(["train", "--data", str(ds), "--out", str(run), "--quiet", *SETS, "--set", "max_steps=4"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["best_val_loss"] is not None and (run / "best" / "model.safetensors").is_file()


def test_a_folder_holding_one_session_is_one_session(tmp_path, one_session, capsys):
    folder = tmp_path / "sessions"
    folder.mkdir()
    (folder / one_session.name).write_bytes(one_session.read_bytes())
    assert cli(["build", str(folder), "--out", str(tmp_path / "ds"), "--no-progress"]) == 0
    assert open_dataset(tmp_path / "ds").meta["split_names"] == ["train", "val"]


def test_a_session_too_short_to_cut_is_built_whole_and_says_so(tmp_path, capsys):
    p = tmp_path / "short.ilbot.sqlite"
    with SessionWriter(p, {"source": "test", "window": {"x": 0, "y": 0, "width": 100, "height": 100}}) as w:
        w.add_events([Event.make(i * 100_000_000, 5, 5) for i in range(8)])  # 0.8 s: one window
    assert cli(["build", str(p), "--out", str(tmp_path / "ds"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "too short to hold out its end by time" in out and "note: no validation split" in out
    meta = open_dataset(tmp_path / "ds").meta
    assert meta["split_names"] == ["train"] and meta["split_by"] is None
    # asked for explicitly, the same session is refused rather than silently not split
    assert cli(["build", str(p), "--out", str(tmp_path / "ds2"), "--no-progress", "--holdout-frac", "0.2"]) == 2
    assert "too few to hold out" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    stores = make_sessions(tmp_path_factory.mktemp("div12") / "s", n_sessions=2, duration_s=40, seed=6)
    ds = stores[0].parent.parent / "ds"
    assert cli(["build", *map(str, stores), "--out", str(ds), "--no-progress", "--holdout-frac", "0.5"]) == 0
    return ds


@pytest.mark.parametrize("what", ["training loss", "validation loss"])
def test_a_diverging_run_ends_in_one_line_and_keeps_its_checkpoints(tmp_path, dataset, what):
    """The weights are made NaN through the periodic `check` hook: after step 7 (validated at 5),
    so the next training step sees a NaN loss; or after the last step of the second epoch
    (validated at the end of the first), so that epoch's closing validation sees it first."""
    from ilbot.training.data import EpochSampler

    run = tmp_path / "run"
    per_epoch = len(EpochSampler(len(open_dataset(dataset, "train")), seed=0).batches(0, 16))
    if what == "training loss":
        cfg, at_step, kept_step = load_config(None, TINY + ["max_steps=30", "val_every_steps=5"]), 7, 5
    else:
        cfg, at_step, kept_step = load_config(None, TINY + ["epochs=4"]), 2 * per_epoch, per_epoch
    before: dict = {}

    def check(model, info):
        if info["step"] == at_step:
            before.update(_tree(run / "best"), **{f"last/{k}": v for k, v in _tree(run / "last").items()})
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    with pytest.raises(ConfigError) as e:
        train(dataset, run, cfg, show_progress=False, check=check, check_every_s=0)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("training diverged at step ") and f"the {what} is nan" in msg, msg
    assert "keep the checkpoint from before" in msg and before
    after = dict(_tree(run / "best"), **{f"last/{k}": v for k, v in _tree(run / "last").items()})
    assert after == before  # nothing written after the loss stopped being a number
    state = json.loads((run / "last" / "train_state.json").read_text())
    assert state["step"] == kept_step and np.isfinite(state["best_val"])
    for line in (run / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in metrics.jsonl"))  # strict JSON, no NaN
