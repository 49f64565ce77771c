"""The run state machine (`ilbot.agent.run`) as the agent runtime drives it: waiting for state →
running ⇄ paused(reason) → stopped(reason), reported through `on_state`, never inferred."""

from __future__ import annotations

import pytest

from ilbot.agent.executors.dry_run import DryRunExecutor
from ilbot.agent.run import RunState, describe_reason
from ilbot.agent.runtime import AgentRuntime, NoGameState, RuntimeConfig
from ilbot.model import load_checkpoint

from test_runtime_support import ListAdapter, features, tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return load_checkpoint(tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny"))


def _run(ckpt, items, **cfg):
    rt = AgentRuntime(ckpt, ListAdapter(items), DryRunExecutor(), realtime=False,
                      config=RuntimeConfig(source_name="list:test", **cfg))
    states = []
    rt.on_state.append(lambda s, r: states.append((s, r)))
    return rt, states


def test_waits_for_state_then_runs_then_stops_at_the_tick_limit(ckpt):
    rt, states = _run(ckpt, [None, None, None] + features(10))
    assert rt.state is RunState.WAITING
    rt.run(ticks=4)
    assert states[0] == ("waiting_for_state", "list:test") and states[1] == ("running", "")
    assert states[-1] == ("stopped", "ticks") and rt.counters["ticks"] == 4
    assert rt.counters["state"] == "stopped" and rt.counters["reason"] == "ticks"


def test_pause_resume_stop_and_what_is_ignored(ckpt):
    rt, states = _run(ckpt, features(20))
    rt.step()
    assert rt.running
    rt.pause("user")
    assert rt.paused and rt.pause_reason == "user" and rt.step() == []
    rt.pause("stale_state")  # already paused: ignored, the first reason stays
    assert rt.pause_reason == "user" and rt.pauses == {"user": 1}
    rt.resume()
    assert rt.running
    rt.step()
    assert rt.counters["ticks"] == 2
    rt.stop("kill_switch")
    rt.resume()
    rt.pause("user")
    assert rt.stopped and rt.reason == "kill_switch"
    assert [s for s, _ in states] == ["running", "paused", "running", "stopped"]


def test_no_state_at_all_gives_up_with_one_line(ckpt):
    rt, states = _run(ckpt, [None] * 100000, state_timeout_s=0.3)
    with pytest.raises(NoGameState, match=r"no game state from list:test in 0\.3 s"):
        rt.run()
    assert states[-1] == ("stopped", "no_state")


def test_window_closing_stops_the_run(ckpt):
    rt, states = _run(ckpt, features(50))
    alive = {"n": 3}

    def window_alive():
        alive["n"] -= 1
        return alive["n"] > 0

    rt.window_alive = window_alive
    rt.run()
    assert states[-1] == ("stopped", "window_closed") and rt.counters["ticks"] == 2


def test_finished_source_ends_the_run(ckpt):
    rt, states = _run(ckpt, features(3))
    rt.run()
    assert states[-1] == ("stopped", "finished")


def test_every_reason_has_plain_words():
    assert describe_reason("paused", "human_override").startswith("PAUSED: you moved the mouse")
    assert "Resume" in describe_reason("paused", "stale_state")
    assert describe_reason("stopped", "finished") == "stopped: finished"
    assert describe_reason("waiting_for_state", "http") == "waiting for game state from http"
