"""TensorBoard curves: a real training run writes RUN/tb/ event files that TensorBoard's own reader
loads with the same points as metrics.jsonl; a resumed run drops what a killed invocation logged
after its checkpoint; without the tensorboard package training still runs and writes none."""

from __future__ import annotations

import json
import sys
import time

import pytest

from ilbot.training.config import load_config
from ilbot.training.loop import train
from ilbot.training.synthetic import make_dataset
from ilbot.training.tensorboard import TensorBoardLog

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

TINY = ["model={d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "optim.lr=3e-3", "optim.warmup_steps=5", "log_every_steps=5", "threads=1",
        "data.epoch_windows=160", "epochs=3"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("syn"), n_sessions=2, duration_s=60)


def scalars(run) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_writes_the_metrics_as_tensorboard_scalars(dataset, tmp_path):
    run = tmp_path / "run"
    train(dataset, run, load_config(None, TINY), show_progress=False)
    got = scalars(run)
    assert {"loss/train", "loss/val", "lr", "train/event", "train/xy", "val/xy", "train/grad_norm"} <= set(got)
    docs = metrics(run)
    want_train = [(d["step"], d["loss"]) for d in docs if d["kind"] == "train"]
    want_val = [(d["step"], d["loss"]) for d in docs if d["kind"] == "val"]
    assert len(want_val) == 3 and len(want_train) >= 3  # one validation per epoch
    assert [s for s, _ in got["loss/train"]] == [s for s, _ in want_train]
    assert [v for _, v in got["loss/val"]] == pytest.approx([v for _, v in want_val], rel=1e-6)
    assert [v for _, v in got["lr"]] == pytest.approx([d["lr"] for d in docs if d["kind"] == "train"], rel=1e-6)


def test_a_resumed_run_continues_the_curves_without_the_lost_points(dataset, tmp_path):
    run = tmp_path / "run"
    train(dataset, run, load_config(None, TINY), show_progress=False, stop_at_step=10)
    # TensorBoard reads a folder's event files in name order: <seconds>.<host>.<pid>.<counter>, and
    # within one second of one process the counter sorts as text ("10" before "9"). Invocations are
    # separate processes seconds apart in real use; here, in one process, a second apart.
    time.sleep(1.1)
    # a point a killed invocation logged after the step-10 checkpoint
    late = TensorBoardLog(run)
    late.log({"kind": "train", "step": 15, "loss": 99.0, "lr": 1.0})
    late.close()
    time.sleep(1.1)
    done = train(dataset, run, resume=True, show_progress=False)
    got = scalars(run)["loss/train"]
    want = [(d["step"], d["loss"]) for d in metrics(run) if d["kind"] == "train"]
    assert [s for s, _ in got] == [s for s, _ in want] and want[-1][0] == done["steps"] > 15
    assert 15 in [s for s, _ in got] and 99.0 not in [v for _, v in got]


def test_without_the_tensorboard_package_training_says_so_and_writes_no_curves(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import now fails as if not installed
    log = TensorBoardLog(tmp_path / "x")
    assert not log.available and "pip install tensorboard" in log.missing_note
    log.log({"kind": "train", "step": 1, "loss": 1.0})
    log.close()
    run = tmp_path / "run"
    summary = train(dataset, run, load_config(None, TINY + ["epochs=1"]), show_progress=True)
    assert summary["steps"] > 0 and not (run / "tb").exists() and (run / "best" / "model.safetensors").is_file()
    assert "tensorboard is not installed" in capsys.readouterr().err
