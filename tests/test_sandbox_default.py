"""The shipped sandbox model (ilbot/sandbox/assets/model) and `ilbot bench sandbox`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from ilbot.bench.sandbox import SafetyAudit, compare, play_agent
from ilbot.sandbox import SHIPPED_MODEL
from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.errors import UserError

ASSETS = Path(__file__).resolve().parents[1] / "ilbot" / "sandbox" / "assets"


# -- the shipped files -------------------------------------------------------------------------
def test_shipped_model_loads_and_matches_the_sandbox_spec():
    from ilbot.data.featurespec import load_spec
    from ilbot.model.checkpoint import load_checkpoint

    spec = load_spec("sandbox")
    ckpt = load_checkpoint(SHIPPED_MODEL, expect_spec_hash=spec.hash)
    assert ckpt.spec_hash == spec.hash
    assert ckpt.config.n_features == len(spec.slots) == 128
    assert sorted(p.name for p in SHIPPED_MODEL.iterdir()) == ["config.json", "model.safetensors"]
    total = sum(p.stat().st_size for p in ASSETS.rglob("*") if p.is_file())
    # the model (0.9 MB) and the dataset it was trained on: the demonstrator's sessions plus the
    # takeover sessions of the dataset-aggregation rounds (~26 MB); a guard against more than that
    assert total < 32 * 2**20, f"assets hold {total / 2**20:.1f} MiB: more than the model and its dataset"
    # the launcher finds the same folder
    from ilbot.gui import launch

    assert launch.SHIPPED_MODEL.resolve() == SHIPPED_MODEL.resolve()


def test_shipped_eval_report_has_free_running_fidelity():
    report = json.loads((ASSETS / "eval_report.json").read_text())
    found = {}

    def walk(d):
        if isinstance(d, dict):
            for k, v in d.items():
                if k in ("events_per_tick_wasserstein", "dt_wasserstein_ms"):
                    found[k] = v
                walk(v)

    walk(report)
    assert set(found) == {"events_per_tick_wasserstein", "dt_wasserstein_ms"}
    assert all(isinstance(v, float) and v >= 0 for v in found.values()), found


def test_shipped_dataset_is_a_built_dataset_with_held_out_sessions():
    from ilbot.data.dataset import open_dataset

    ds_dir = ASSETS / "dataset"
    assert ds_dir.is_dir()
    for split in ("train", "val"):
        ds = open_dataset(ds_dir, split)
        assert len(ds) > 100


# -- planning on a sandbox state ---------------------------------------------------------------
def _nearest_node(state: dict, x: float, y: float) -> float:
    import math

    return min(math.hypot(n["x"] - x, n["y"] - y) for n in state["nodes"] if n["active"] and n["visible"])


def test_shipped_model_plans_sane_actions_and_gathers_headless():
    """Dry run, virtual time: each tick's plan is applied to the game's rules (as the headless
    app does); the actions stay in the window, and the model gathers items."""
    from ilbot.agent.capture import make_adapter
    from ilbot.agent.executors import DryRunExecutor
    from ilbot.agent.runtime import AgentRuntime
    from ilbot.model import load_checkpoint
    from ilbot.sandbox.apply import apply_action
    from ilbot.sandbox.logic import GameConfig, SandboxGame
    from ilbot.sandbox.publish import JsonDirPublisher

    game = SandboxGame(GameConfig(seed=3))
    w, h = game.cfg.width, game.cfg.height
    types = {t: 0 for t in EventType}
    click_dists, states = [], []
    with tempfile.TemporaryDirectory() as d:
        pub = JsonDirPublisher(d)
        pub.publish(game.state())
        adapter = make_adapter(f"sandbox:{d}")
        rt = AgentRuntime(load_checkpoint(SHIPPED_MODEL), adapter, DryRunExecutor(), seed=1, window=(0, 0, w, h), realtime=False)
        try:
            for _ in range(100):
                state = game.state()
                for a in rt.step():
                    assert 0 <= a.x <= w - 1 and 0 <= a.y <= h - 1
                    if a.type == EventType.CLICK and any(n["active"] and n["visible"] for n in state["nodes"]):
                        click_dists.append(_nearest_node(state, a.x, a.y))
                        states.append(state)
                    assert 0 <= a.t_ms <= 5000
                    types[EventType(int(a.type))] += 1
                    apply_action(game, a)
                game.tick()
                pub.publish(game.state())
        finally:
            rt.stop()
            adapter.close()
    assert types[EventType.MOVE] > types[EventType.CLICK] > 0
    assert game.score >= 5, f"the shipped model gathered {game.score} items in 100 headless ticks (it gets ~13)"
    # its clicks aim at nodes: nearer to one than points drawn at random in the world view are
    import random

    rng = random.Random(0)
    rand = [_nearest_node(states[i % len(states)], rng.uniform(0, 600), rng.uniform(0, 600)) for i in range(400)]
    assert sum(click_dists) / len(click_dists) < 0.7 * sum(rand) / len(rand), (click_dists, sum(rand) / len(rand))


# -- the safety audit ----------------------------------------------------------------------------
def _rec(t_ms, kind, x=10, y=10, **kw):
    from ilbot.agent.executors import Performed

    a = PlannedAction(kind, 0.0, x, y, **kw)
    return Performed(int(t_ms * 1e6), a, 100 + x, 50 + y)


def test_safety_audit_counts_what_breaks_the_limits():
    from ilbot.safety import SafetyConfig

    cfg = SafetyConfig()
    audit = SafetyAudit(cfg, (100, 50, 800, 600))
    for r in [_rec(0, EventType.MOVE), _rec(100, EventType.MOVE, x=900),  # out of the window
              _rec(101, EventType.MOVE),  # 1 ms after the last: under min_dt
              _rec(200, EventType.CLICK, button=1, hold_ms=100), _rec(230, EventType.CLICK, button=1, hold_ms=900),
              _rec(300, EventType.KEY, key_action=int(KeyAction.PRESS), key_id=key_id("caps_lock")),
              _rec(400, EventType.KEY, key_action=int(KeyAction.PRESS), key_id=key_id("a")),
              _rec(4000, EventType.KEY, key_action=int(KeyAction.RELEASE), key_id=key_id("a"))]:
        audit(r)
    v = audit.violations()
    assert v == {"out_of_bounds": 1, "min_dt": 1, "cooldown_CLICK": 1, "click_hold": 1, "blocked_key": 1,
                 "key_hold": 1}
    # a click every 90 ms: 12 in a second > 10/s
    audit = SafetyAudit(cfg, (0, 0, 800, 600))
    for i in range(12):
        audit(_rec(i * 90, EventType.CLICK, button=1, hold_ms=50))
    assert audit.violations() == {"rate_CLICK": 2}
    clean = SafetyAudit(cfg, (0, 0, 800, 600))
    for i in range(50):
        clean(_rec(i * 20, EventType.MOVE))
    clean(_rec(1100, EventType.KEY, key_action=int(KeyAction.PRESS), key_id=key_id("space")))
    clean(_rec(1200, EventType.KEY, key_action=int(KeyAction.RELEASE), key_id=key_id("space")))
    assert clean.violations() == {}


def test_safety_audit_rates_and_keys_held():
    from ilbot.safety import SafetyConfig

    cfg = SafetyConfig(max_actions_per_s=5, max_keys_held=2)
    audit = SafetyAudit(cfg, (0, 0, 800, 600))
    for i, k in enumerate(("a", "b", "c")):
        audit(_rec(i * 40, EventType.KEY, key_action=int(KeyAction.PRESS), key_id=key_id(k)))
    for i in range(4):
        audit(_rec(200 + i * 20, EventType.MOVE))
    assert audit.violations() == {"keys_held": 1, "rate_all": 2}


# -- live, through real input ------------------------------------------------------------------
def test_shipped_model_plays_live_for_20_ticks_safely(own_display):
    r = play_agent(SHIPPED_MODEL, ticks=20, seed=0)
    assert r["ticks"] == 20
    # Gathering is pinned by the 100-tick headless test: at ~1 item per 22 live ticks (bench
    # sandbox, seed 0) a 20-tick run gathers nothing about half the time, so this run checks
    # safety only. Every audited limit must hold, min_dt included: the scheduler keeps the time
    # floor even for actions performed late.
    assert r["violations"] == {}, r["violations"]
    assert r["held_after_stop"] == []
    assert r["performed_by_type"]["CLICK"] >= 1


def test_bench_refuses_bad_arguments(tmp_path):
    with pytest.raises(UserError, match="not a checkpoint"):
        compare(tmp_path, ticks=5)
    with pytest.raises(UserError, match="--ticks"):
        compare(SHIPPED_MODEL, ticks=0)


@pytest.mark.slow
def test_bench_sandbox_cli_side_by_side(own_display, capsys):
    """The whole bench, short: two private Xvfb servers, agent and demonstrator in parallel."""
    from ilbot.cli import main

    assert main(["bench", "sandbox", "--ticks", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) >= {"agent_items", "demonstrator_items", "ratio", "safety_violations"}
    assert out["ticks"] == 8 and out["safety_violations"] == 0
    assert out["demonstrator_items"] >= 1


def test_bench_helpers_report_failures_in_one_line(tmp_path):
    import subprocess
    import sys

    from ilbot.bench.sandbox import _final_state, _result, _wait_state

    dead = subprocess.Popen([sys.executable, "-c", "print('boom'); raise SystemExit(3)"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with pytest.raises(UserError, match="the agent failed \\(exit 3\\)"):
        _result("agent", dead, timeout_s=30)
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    with pytest.raises(UserError, match="did not finish"):
        _result("demonstrator", slow, timeout_s=0.2)
    gone = subprocess.Popen([sys.executable, "-c", "print('no display')"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    gone.wait()
    with pytest.raises(UserError, match="exited before publishing state: no display"):
        _wait_state(tmp_path, gone)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        with pytest.raises(UserError, match="published no state"):
            _wait_state(tmp_path, idle, timeout_s=0.2)
    finally:
        idle.kill()
        idle.wait()
    assert _final_state(tmp_path, 5) == {}
    (tmp_path / "tick_3.json").write_text('{"tick": 3, "score": 2}')
    (tmp_path / "tick_12.json").write_text('{"tick": 12, "score": 4}')
    assert _final_state(tmp_path, 20)["score"] == 4  # the newest when tick 20 is missing
    (tmp_path / "tick_20.json").write_text('{"tick": 20, "score": 5}')
    assert _final_state(tmp_path, 20)["score"] == 5
