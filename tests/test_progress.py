"""The one progress reporter: its fraction, ETA and time cap (a fake clock), its terminal, log and
JSON outputs; a real capped training run whose bar ends full, a resumed one whose cap counts per
invocation, and the train command's JSON stream with a clean SIGTERM cancel that resumes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ilbot.data.progress import Progress, format_duration
from ilbot.training.config import load_config
from ilbot.training.loop import train
from ilbot.training.synthetic import make_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model={d_model=32, n_heads=2, n_context_layers=1, n_decoder_layers=1, ff_mult=2, dropout=0.0}",
        "data.batch_size=16", "optim.lr=3e-3", "optim.warmup_steps=5", "log_every_steps=5", "threads=1"]


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("syn"), n_sessions=2, duration_s=60)


def test_every_command_uses_the_one_progress_class():
    import ilbot.data.build as build
    import ilbot.data.importers as importers
    import ilbot.eval.commands as eval_commands
    import ilbot.training.loop as loop

    assert build.Progress is importers.Progress is eval_commands.Progress is loop.Progress is Progress
    with pytest.raises(ModuleNotFoundError):
        __import__("ilbot.training.progress")


def test_fraction_and_eta_follow_the_count_or_the_cap_whichever_is_sooner():
    clock = Clock()
    p = Progress(100, "train", stream=io.StringIO(), cap_s=60, clock=clock)
    assert p.eta_s() == 60 and p.fraction() == 0.0  # nothing done yet: only the cap says when
    clock.t += 30
    p.update(10)
    assert p.fraction() == pytest.approx(0.5)  # half the cap beats a tenth of the count
    assert p.eta_s() == pytest.approx(30)  # count: 90 left at 1/3 per s = 270 s; cap: 30 s
    clock.t += 30
    p.update(10)
    assert p.fraction() == 1.0 and p.eta_s() == 0.0
    fast = Progress(100, "train", stream=io.StringIO(), cap_s=600, clock=clock)
    clock.t += 10
    fast.update(50)
    assert fast.eta_s() == pytest.approx(10) and fast.fraction() == pytest.approx(0.5)  # the count is sooner


def test_a_resumed_count_uses_only_this_invocations_rate():
    clock = Clock()
    p = Progress(100, "train", stream=io.StringIO(), start=50, clock=clock)
    clock.t += 10
    p.update(10)
    assert p.n == 60 and p.rate() == pytest.approx(1.0) and p.eta_s() == pytest.approx(40)


def test_terminal_line_shows_percent_eta_and_the_per_invocation_cap_and_ends_full_on_the_cap():
    clock, out = Clock(), Tty()
    p = Progress(400, "train", stream=out, cap_s=120, cap_note="this invocation", clock=clock)
    clock.t += 12
    p.update(40, loss=1.5)
    line = out.getvalue().split("\r")[-1]
    assert "10%" in line and "40/400" in line and "ETA 1m48s (cap 2m00s this invocation)" in line and "loss=1.5" in line
    clock.t += 108
    p.update(10)
    p.close("cap", "stopped by the 2-minute cap")
    last = out.getvalue().split("\r")[-1]
    assert "[########################] 100%" in last and "50/400" in last and "stopped by the 2-minute cap" in last
    assert out.getvalue().endswith("\n")


def test_a_cancelled_bar_stays_where_the_work_stopped():
    clock, out = Clock(), io.StringIO()
    p = Progress(100, "train", stream=out, clock=clock)
    clock.t += 1
    p.update(30)
    p.close("cancelled", "cancelled at step 30")
    assert out.getvalue().splitlines()[-1].startswith("train: 30/100 (30%") and "cancelled at step 30" in out.getvalue()


def test_log_lines_come_at_each_tenth_and_at_least_every_log_every_s():
    clock, out = Clock(), io.StringIO()
    p = Progress(1000, "build", stream=out, log_every_s=30, clock=clock)
    for _ in range(50):  # 5 % of the work over 250 s: no tenth crossed after the first line
        clock.t += 5
        p.update(1)
    lines = out.getvalue().splitlines()
    assert 8 <= len(lines) <= 10  # the first, then one per 30 s
    assert lines[-1].startswith("build: ") and "ETA" in lines[-1]


def test_json_stream_has_progress_records_and_the_end():
    clock, js = Clock(), io.StringIO()
    p = Progress(10, "train", stream=io.StringIO(), cap_s=100, json_stream=js, json_every_s=0.5, clock=clock)
    for _ in range(10):
        clock.t += 1
        p.update(1, loss=2.0)
    p.record({"kind": "val", "step": 10, "loss": 1.0})
    p.close("done", "done: 10/10 steps")
    docs = [json.loads(line) for line in js.getvalue().splitlines()]
    prog = [d for d in docs if d["kind"] == "progress"]
    assert len(prog) == 10 and prog[-1]["n"] == 10 and prog[-1]["frac"] == 1.0 and prog[-1]["loss"] == 2.0
    assert prog[0]["eta_s"] == pytest.approx(9.0) and prog[0]["cap_s"] == 100
    assert docs[-2] == {"kind": "val", "step": 10, "loss": 1.0}
    assert docs[-1]["kind"] == "end" and docs[-1]["reason"] == "done" and docs[-1]["frac"] == 1.0


def test_format_duration():
    assert [format_duration(s) for s in (None, 0, 59.4, 61, 3599, 3725)] == ["–", "0s", "59s", "1m01s", "59m59s", "1h02m"]


def test_capped_training_ends_with_a_full_bar_and_resume_gets_the_cap_again(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    cfg = load_config(None, TINY + ["epochs=1000", "max_minutes=0.05"])
    js = io.StringIO()
    first = train(dataset, run, cfg, show_progress=True, progress_json=js)
    assert first["end"] == "cap" and 0 < first["steps"] < 1000
    err = capsys.readouterr().err.splitlines()
    assert "(100%" in err[-1] and "per invocation" in err[-1]
    assert any("ETA" in line and "(cap 3s this invocation)" in line for line in err)
    docs = [json.loads(line) for line in js.getvalue().splitlines()]
    assert docs[-1]["kind"] == "end" and docs[-1]["reason"] == "cap" and docs[-1]["frac"] == 1.0
    assert any(d["kind"] == "val" for d in docs) and any(d["kind"] == "train" for d in docs)
    assert json.loads((run / "last" / "train_state.json").read_text())["time_frac"] == pytest.approx(1.0)

    # the cap is per invocation: the resumed run trains for another 3 s, at the annealed learning rate
    second = train(dataset, run, resume=True, overrides=["max_minutes=0.05"], show_progress=False)
    assert second["end"] == "cap" and second["steps"] > first["steps"] + 5
    lrs = [d["lr"] for d in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
           if d["kind"] == "train" and d["step"] > first["steps"]]
    assert lrs and all(lr == pytest.approx(3e-3 * cfg.optim.min_lr_ratio) for lr in lrs)


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def test_train_command_streams_json_and_sigterm_checkpoints_a_resumable_run(dataset, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "ilbot.cli", "train", "--data", str(dataset), "--out", str(run), "--progress-json",
           *sum((["--set", s] for s in TINY + ["epochs=1000"]), [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    docs = []
    try:
        for line in proc.stdout:
            docs.append(json.loads(line))
            if docs[-1]["kind"] == "progress" and docs[-1]["n"] >= 20:
                proc.send_signal(signal.SIGTERM)
                break
        rest = proc.stdout.read()
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    docs += [json.loads(line) for line in rest.splitlines()]
    assert rc == 130
    end = [d for d in docs if d.get("kind") == "end"][0]
    summary = docs[-1]
    assert end["reason"] == "cancelled" and summary["end"] == "cancelled" and summary["steps"] == end["n"]
    assert "SIGTERM: stopping after this step" in proc.stderr.read()
    state = json.loads((run / "last" / "train_state.json").read_text())
    assert state["step"] == end["n"] >= 20
    resumed = train(dataset, run, resume=True, overrides=["max_steps=100"], show_progress=False)
    assert resumed["steps"] == 100 and resumed["end"] == "done"


def test_train_help_says_the_cap_is_per_invocation(capsys):
    from ilbot.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--progress-json" in text and "max_minutes caps each invocation" in text


def test_message_lines_go_between_progress_lines_and_into_the_json_stream():
    out, js = Tty(), io.StringIO()
    p = Progress(10, "train", stream=out, json_stream=js)
    p.update(1)
    p.message("tensorboard is not installed")
    assert "\rtensorboard is not installed\x1b[K\n" in out.getvalue()
    assert json.loads(js.getvalue().splitlines()[-1]) == {"kind": "message", "text": "tensorboard is not installed"}
    quiet = io.StringIO()
    Progress(10, "x", stream=quiet, enabled=False).message("hidden")
    assert quiet.getvalue() == ""
