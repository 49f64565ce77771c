"""Closed-loop evaluation (`ilbot eval closed-loop`) and takeover sessions: the agent plays the
in-process sandbox on a virtual clock through the one run assembly, beside the demonstrator on the
same seeds; and the demonstrator takes over games the agent has been playing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ilbot.data.action import PlannedAction
from ilbot.data.schema import EventType
from ilbot.demo.virtual import play_demo_episode, write_session
from ilbot.eval.closed_loop import STYLE, seed_figures, style_samples
from ilbot.sandbox import SHIPPED_MODEL
from ilbot.sandbox.trace import Trace

ROOT = Path(__file__).resolve().parents[1]


def test_cli_closed_loop_json_and_report(tmp_path):
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "eval", "closed-loop", "--seeds", "2", "--ticks", "40",
                        "--json", "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    head = json.loads(r.stdout.strip().splitlines()[-1])
    for k in ("mean_ratio", "min_ratio", "misclick_rate", "demo_misclick_rate", "idle_rate", "demo_idle_rate"):
        assert isinstance(head[k], float) and 0.0 <= head[k] <= 5.0, (k, head)
    assert set(head["style_w1"]) == set(STYLE)
    report = json.loads((out / "report.json").read_text())
    assert [s["seed"] for s in report["per_seed"]] == [0, 1] and report["demo_misclick_rate"] == 0.0
    assert (out / "closed_loop_items.png").stat().st_size > 1000 and (out / "closed_loop_style.png").is_file()
    assert "seed 1 (2/2)" in r.stderr  # progress while it runs


def test_demonstrator_on_the_virtual_clock_is_seeded_and_plays_well():
    a, b, c = play_demo_episode(0, 100), play_demo_episode(0, 100), play_demo_episode(1, 100)
    assert a.score == b.score and [t for t, _ in a.actions] == [t for t, _ in b.actions]
    assert [t for t, _ in a.actions] != [t for t, _ in c.actions]
    assert a.score >= 20 and a.misclicks == 0 and 0.3 < a.idle_ticks / a.ticks < 0.7
    times = [t for t, _ in a.actions]
    assert times == sorted(times) and times[-1] < 100 * a.tick_ms


def _trace(actions, states) -> Trace:
    return Trace(seed=0, ticks=len(states), tick_ms=600.0, actions=actions, states=states)


def test_style_samples_and_seed_figures_by_hand():
    node = {"active": True, "x": 100.0, "y": 100.0}
    states = [{"nodes": [node]}] * 2
    acts = [(0.0, PlannedAction(EventType.MOVE, 0, 0.0, 100.0)),
            (100.0, PlannedAction(EventType.MOVE, 0, 60.0, 100.0)),  # 60 px in 100 ms: 600 px/s
            (150.0, PlannedAction(EventType.CLICK, 0, 103.0, 104.0, button=1, hold_ms=90.0)),  # 43.2 px in 50 ms
            (900.0, PlannedAction(EventType.MOVE, 0, 0.0, 0.0))]  # 750 ms later: not the same path
    s = style_samples(_trace(acts, states))
    assert np.allclose(s["dt_ms"], [100, 50, 750]) and np.allclose(s["click_hold_ms"], [90])
    assert np.allclose(s["click_offset_px"], [5.0]) and len(s["pointer_speed_px_s"]) == 2
    assert np.isclose(s["pointer_speed_px_s"][0], 600.0)
    agent, demo = _trace(acts, states), _trace(acts, states)
    agent.score, demo.score, agent.misclicks, agent.idle_ticks = 5, 10, 1, 1
    row = seed_figures(agent, demo)
    assert row["ratio"] == 0.5 and row["misclick_rate"] == 1.0 and row["idle_rate"] == 0.5


def test_takeover_sessions_interleave_the_players_and_build_weighted(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "sandbox", "takeover", "--model", str(SHIPPED_MODEL),
                        "--sessions", "2", "--ticks", "40", "--agent-ticks", "3-6", "--demo-ticks", "1-2",
                        "--no-takeover-on-misclick", "--out",
                        str(tmp_path / "s")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    stores = sorted((tmp_path / "s").glob("*.ilbot.sqlite"))
    assert len(stores) == 2 and all(p.stat().st_mode & 0o077 == 0 for p in stores)
    from ilbot.data.store import open_session

    tick_ns = 600 * 1_000_000
    with open_session(stores[0]) as s:
        assert s.n_ticks == 40 and s.n_events > 10 and s.meta["feature_spec"] == "sandbox"
        assert "takeover" in s.meta["notes"]
        segs = sorted(s.segments(), key=lambda g: g["t_start_ns"])
    # the spans alternate, agent first, and tile the session's 40 ticks
    assert [g["kind"] for g in segs] == ["agent", "takeover"] * (len(segs) // 2) + ["agent"] * (len(segs) % 2)
    assert len(segs) >= 6 and segs[0]["t_start_ns"] == 0 and segs[-1]["t_end_ns"] == 40 * tick_ns
    assert all(a["t_end_ns"] == b["t_start_ns"] for a, b in zip(segs, segs[1:]))
    assert all(3 * tick_ns <= g["t_end_ns"] - g["t_start_ns"] <= 6 * tick_ns for g in segs[:-1] if g["kind"] == "agent")
    r = subprocess.run([sys.executable, "-m", "ilbot.cli", "build", *map(str, stores), "--out", str(tmp_path / "ds"),
                        "--segment-weight", "agent=0", "--segment-weight", "takeover=2", "--no-progress"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    w = np.load(tmp_path / "ds" / "window_weight.npy")
    assert set(np.unique(w)) == {0.0, 2.0} and (w == 0).sum() > (w == 2).sum() > 0


def test_a_rewound_tick_never_happened_for_the_game_or_the_recording():
    from ilbot.agent.assemble import load_model
    from ilbot.agent.sandbox_episode import SandboxEpisode

    with SandboxEpisode(load_model(SHIPPED_MODEL), seed=3) as ep:
        for _ in range(5):
            ep.tick()
        before, n_actions, n_states = ep.game.state(), len(ep.trace.actions), len(ep.trace.states)
        mark = ep.mark()
        for _ in range(4):
            ep.tick()
        assert ep.game.tick_index == 9 and len(ep.trace.actions) > n_actions
        ep.rewind(mark)
        assert ep.game.state() == before and len(ep.trace.actions) == n_actions and len(ep.trace.states) == n_states
        ep.tick()  # play goes on from the restored tick; the agent's actions land in the game's tick 5
        assert ep.game.tick_index == 6 and all(t >= 5 * 600.0 for t, _ in ep.trace.actions[n_actions:])


def test_the_demonstrator_takes_over_from_the_state_of_each_agent_misclick(tmp_path):
    from ilbot.agent.assemble import load_model
    from ilbot.data.store import open_session
    from ilbot.demo.takeover import record_takeover
    from ilbot.model.sampling import Temperature

    ckpt = load_model(SHIPPED_MODEL)
    ckpt.model.sampling = Temperature()  # T = 1: the shipped model misclicks now and then
    tick_ns = 600 * 1_000_000

    def session(on_misclick: bool) -> tuple[dict, list[dict]]:
        path = tmp_path / f"t{int(on_misclick)}.ilbot.sqlite"
        r = record_takeover(ckpt, path, seed=5, ticks=120, agent_ticks=(20, 20), demo_ticks=(1, 1),
                            on_misclick=on_misclick)
        with open_session(path) as s:
            assert s.n_ticks == 120
            return r, sorted(s.segments(), key=lambda g: g["t_start_ns"])

    r, segs = session(False)
    assert r["on_misclick"] == 0 and r["misclicks"] > 0  # the agent's misclicks stay in the game
    assert all((g["t_end_ns"] - g["t_start_ns"]) == 20 * tick_ns for g in segs[:-1] if g["kind"] == "agent")
    r, segs = session(True)
    # every agent tick that misclicked was undone and played by the demonstrator (who never misclicks)
    assert r["on_misclick"] > 0 and r["misclicks"] == 0
    assert any((g["t_end_ns"] - g["t_start_ns"]) < 20 * tick_ns for g in segs[:-1] if g["kind"] == "agent")
    assert all(a["t_end_ns"] == b["t_start_ns"] and a["kind"] != b["kind"] for a, b in zip(segs, segs[1:]))
    assert segs[0]["t_start_ns"] == 0 and segs[-1]["t_end_ns"] == 120 * tick_ns


def test_the_agent_context_takes_in_the_demonstrators_ticks():
    """During a takeover the agent plans and performs nothing, but its history takes in the other
    player's input at its times; afterwards it plans again from there."""
    from ilbot.agent.sandbox_episode import SandboxEpisode
    from ilbot.demo.virtual import VirtualDemonstrator

    with SandboxEpisode(SHIPPED_MODEL, seed=3) as ep:
        for _ in range(3):
            ep.tick()
        ctx, performed, mine = ep.run.context, ep.run.counters["performed"], len(ep.trace.actions)
        events = ctx.counters["events"]
        demo = VirtualDemonstrator(ep.game, seed=3, tick_ms=ep.run.tick_ms)
        for _ in range(4):
            ep.tick(demo.play_tick)
        theirs = ep.trace.actions[mine:]
        assert theirs and ep.run.counters["observed_ticks"] == 4 and ep.run.counters["ticks"] == 3
        assert ep.run.counters["performed"] == performed  # the agent performed none of them
        assert ctx.counters["events"] == events + len(theirs)
        t0 = ctx._events[-len(theirs)].t_ns - int(round(theirs[0][0] * 1e6))  # the grid's tick 0
        assert [e.t_ns - t0 for e in list(ctx._events)[-len(theirs):]] == [int(round(t * 1e6)) for t, _ in theirs]
        ep.tick()
        assert ep.run.counters["ticks"] == 4


def test_write_session_refuses_to_replace_without_overwrite(tmp_path):
    t = play_demo_episode(2, 10)
    p = tmp_path / "x.ilbot.sqlite"
    assert write_session(t, p)["ticks"] == 10
    with pytest.raises(Exception, match="already exists"):
        write_session(t, p)


def test_style_distances_of_an_agent_that_never_acts_are_null_not_nan():
    """`--json` must stay JSON: a style distance with no sample on one side is null."""
    from ilbot.eval.closed_loop import _w1

    assert _w1(float("nan")) is None and _w1(1.23456) == 1.235
