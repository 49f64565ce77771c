"""Headless replay determinism: a recorded session's game state (the `replay:` capture adapter)
drives the agent in dry run; the same seed gives the same plan, a different seed another one.
Also the `ilbot play` command end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ilbot.agent.capture.replay import ReplayAdapter
from ilbot.agent.executors.dry_run import DryRunExecutor
from ilbot.agent.runtime import AgentRuntime
from ilbot.cli import main as cli_main
from ilbot.data.schema import F, Event
from ilbot.data.store import SessionWriter
from ilbot.model import load_checkpoint

from test_runtime_support import tiny_checkpoint

MS = 1_000_000


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = tmp_path_factory.mktemp("sess") / "s.ilbot.sqlite"
    rng = np.random.default_rng(5)
    meta = {"window": {"x": 0, "y": 0, "width": 640, "height": 480}, "tick_ms": 600,
            "feature_spec_hash": "test"}  # the tiny checkpoint's spec: the assembly checks it
    with SessionWriter(path, meta) as w:
        for k in range(20):
            w.add_tick(k, k * 600 * MS, json.dumps({"tick": k}), rng.normal(size=F).astype(np.float32))
            w.add_event(Event.make(k * 600 * MS + 100 * MS, 10 * k, 5 * k))
    return path


def _plans(ckpt_dir, session, seed, ticks=8):
    adapter = ReplayAdapter(session, speed=None)
    rt = AgentRuntime(load_checkpoint(ckpt_dir), adapter, DryRunExecutor(), seed=seed, realtime=False,
                      window=adapter.session.meta["window"])
    plans = []
    rt.on_plan.append(lambda tick, actions: plans.append([(int(a.type), round(a.t_ms, 4), round(a.x, 3), round(a.y, 3),
                                                          a.button, a.key_action, a.key_id, a.scroll_y,
                                                          round(a.hold_ms, 4)) for a in actions]))
    for _ in range(ticks):
        rt.step()
    rt.stop()
    adapter.close()
    return plans, rt.counters


def test_same_seed_same_plan_different_seed_different(ckpt_dir, session):
    a, ca = _plans(ckpt_dir, session, seed=0)
    b, _ = _plans(ckpt_dir, session, seed=0)
    c, _ = _plans(ckpt_dir, session, seed=1)
    assert len(a) == 8 and sum(len(p) for p in a) > 0
    assert a == b
    assert a != c
    assert ca["adapter"]["ok"] == 8 and ca["pauses"] == {}


def test_cli_play_dry_run_is_deterministic(ckpt_dir, session, capsys):
    argv = ["play", "--model", str(ckpt_dir), "--source", f"replay:{session}?speed=max", "--ticks", "5", "--plans",
            "--json"]
    assert cli_main(argv + ["--seed", "3"]) == 0
    out1 = capsys.readouterr().out.strip().splitlines()
    assert cli_main(argv + ["--seed", "3"]) == 0
    out2 = capsys.readouterr().out.strip().splitlines()
    plans1 = [json.loads(line) for line in out1[:-1]]
    assert [p["tick"] for p in plans1] == list(range(5))
    assert out1[:-1] == out2[:-1]
    summary = json.loads(out1[-1])
    assert summary["ticks"] == 5 and summary["mode"] == "dry_run" and summary["state"] == "stopped"


def test_cli_play_text_summary_and_errors(ckpt_dir, session, capsys, tmp_path):
    assert cli_main(["play", "--model", str(ckpt_dir), "--source", f"replay:{session}?speed=max", "--ticks", "2"]) == 0
    out = capsys.readouterr().out
    assert "ticks: 2" in out and "dry_run" in out
    assert cli_main(["play", "--model", str(tmp_path / "nope"), "--source", f"replay:{session}"]) == 2
    assert "nope" in capsys.readouterr().err
    assert cli_main(["play", "--model", str(ckpt_dir), "--source", "bogus:x"]) == 2
    assert cli_main(["play", "--model", str(ckpt_dir), "--source", f"replay:{session}?speed=fast"]) == 2
    assert cli_main(["play", "--model", str(ckpt_dir), "--source", f"replay:{session}", "--ticks", "0"]) == 2
    assert cli_main(["play", "--model", str(ckpt_dir), "--source", f"replay:{session}", "--live"]) == 2
    assert "--i-understand" in capsys.readouterr().err


def test_cli_play_real_time_replay(ckpt_dir, session, capsys):
    """A replay at 10x on the real-time grid (tick_ms 60)."""
    assert cli_main(["play", "--model", str(ckpt_dir), "--source", f"replay:{session}?speed=10", "--ticks", "4",
                     "--tick-ms", "60", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ticks"] == 4
