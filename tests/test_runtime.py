"""AgentRuntime in dry run: counters, hooks, hold times, stale state, malformed state, NaN model
output, slow plans, pause/resume/stop. A tiny random model saved as a real checkpoint drives it."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from ilbot.agent.executors.dry_run import DryRunExecutor
from ilbot.agent.runtime import AgentRuntime, HoldSampler, LatencyStats
from ilbot.agent.window import WindowGeometry, resolve_window
from ilbot.data.action import PlannedAction
from ilbot.data.schema import F, EventType
from ilbot.errors import UserError
from ilbot.model import load_checkpoint
from ilbot.model.planner import Planner
from ilbot.safety import SafetyConfig

from test_runtime_support import ListAdapter, features, tiny_checkpoint


@pytest.fixture(scope="module")
def ckpt_dir(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture
def ckpt(ckpt_dir):
    return load_checkpoint(ckpt_dir)


def _runtime(ckpt, n=20, realtime=False, **kw):
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, ListAdapter(features(n)), ex, realtime=realtime, **kw)
    return rt, ex


def test_steps_plan_count_and_notify(ckpt):
    rt, ex = _runtime(ckpt)
    plans, counts = [], []
    rt.on_plan.append(lambda tick, actions: plans.append((tick, list(actions))))
    rt.on_counters.append(counts.append)
    for _ in range(6):
        rt.step()
    c = rt.counters
    assert c["ticks"] == 6 and [t for t, _ in plans] == list(range(6))
    assert c["scheduled"] == sum(len(a) for _, a in plans) == c["performed"] == len(ex.log)
    assert c["planned"] >= c["scheduled"] and c["scheduled"] > 0
    assert c["plan_ms_p50"] > 0 and c["plan_ms_p99"] >= c["plan_ms_p50"]
    assert c["state"] == "running" and len(counts) == 6 and counts[-1]["ticks"] == 6
    assert sum(c["performed_by_type"].values()) == c["performed"]
    # every performed action is inside the window and in time order within its tick
    for _, actions in plans:
        assert all(0 <= a.x < 800 and 0 <= a.y < 600 for a in actions)
        assert [a.t_ms for a in actions] == sorted(a.t_ms for a in actions)
    # the agent's own actions became history
    ctx = rt.context.context()
    assert ctx["history_mask"][-1].sum() == min(len(plans[-2][1]), 100)
    rt.stop()
    assert rt.counters["state"] == "stopped" and rt.step() == []


def test_clicks_get_seeded_hold_times(ckpt):
    h1, h2 = HoldSampler({"median": 100, "q10": 60, "q90": 160}, seed=3), HoldSampler({"median": 100, "q10": 60, "q90": 160}, seed=3)
    a = [h1.sample() for _ in range(2000)]
    assert a[:50] == [h2.sample() for _ in range(50)]
    assert np.median(a) == pytest.approx(100, rel=0.08)
    assert np.quantile(a, 0.1) == pytest.approx(60, rel=0.12) and np.quantile(a, 0.9) == pytest.approx(160, rel=0.12)
    assert min(a) >= 30 and max(a) <= 320
    assert HoldSampler(None).median == 110.0  # no stats: the design's typical 110 ms
    rt, ex = _runtime(ckpt, n=40)
    for _ in range(30):
        rt.step()
    clicks = [p.action for p in ex.log if p.action.type == EventType.CLICK]
    assert all(0 < c.hold_ms <= 500 for c in clicks)


def test_stale_state_pauses_and_resume(ckpt):
    cfg = SafetyConfig(stale_ticks=3)
    feats = features(3) + [None] * 10 + features(5)
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, ListAdapter(feats), ex, cfg, realtime=False)
    states = []
    rt.on_state.append(lambda s, r: states.append((s, r)))
    for _ in range(3):
        rt.step()
    assert not rt.paused
    for _ in range(3):
        rt.step()  # no fresh state: the 3rd missed tick pauses
    assert rt.paused and rt.pause_reason == "stale_state"
    assert states == [("running", ""), ("paused", "stale_state")]  # waiting → running at the first state
    assert rt.counters["pauses"] == {"stale_state": 1} and rt.counters["state"] == "paused"
    n = rt.counters["ticks"]
    assert rt.step() == [] and rt.counters["ticks"] == n  # paused: nothing planned
    rt.adapter.i = 13  # the source comes back
    rt.resume()
    assert states[-1] == ("running", "") and not rt.paused
    rt.step()
    assert rt.counters["ticks"] == n + 1


def test_malformed_state_is_counted_and_skipped(ckpt):
    feats = features(2) + [np.zeros(F + 5, np.float32)] + features(2)
    bad = features(1)[0]
    bad[:4] = np.nan
    feats.append(bad)
    rt, ex = _runtime(ckpt)
    rt.adapter.items = feats
    for _ in range(6):
        rt.step()
    c = rt.counters
    assert c["malformed_state"] == 1 and c["ticks"] == 6
    assert c["context"]["bad_features"] == 4
    assert np.isfinite(rt.context.context()["gamestate"]).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN weights: numpy warns on the way
def test_nan_model_output_is_dropped_by_safety(ckpt_dir):
    ck = load_checkpoint(ckpt_dir)
    with torch.no_grad():
        for p in ck.model.xy_head.parameters():
            p.fill_(float("nan"))  # every predicted position is NaN
    ex = DryRunExecutor()
    rt = AgentRuntime(ck, ListAdapter(features(10)), ex, realtime=False)
    for _ in range(5):
        rt.step()
    c = rt.counters
    assert c["planned"] > 0 and c["performed"] == 0
    assert c["interventions"].get("non_finite", 0) == c["planned"]


def test_slow_plan_never_delays_scheduled_events(ckpt):
    """Tick 0's actions are performed on time while tick 1's plan takes 400 ms."""

    class SlowSecondPlan(Planner):
        """The real planner; its first plan is spread over 40..280 ms (so some of it falls due
        while the second plan runs), its second plan takes 400 ms."""

        calls = 0

        def plan(self, context, **kw):
            out = super().plan(context, **kw)
            SlowSecondPlan.calls += 1
            if SlowSecondPlan.calls == 1:
                out = out or [PlannedAction(EventType.MOVE, 0.0, 10, 10)]
                out = [a.with_(t_ms=40.0 + 240.0 * i / len(out)) for i, a in enumerate(out)]
            if SlowSecondPlan.calls == 2:
                self.slow_from = time.monotonic_ns()
                time.sleep(0.4)
                self.slow_to = time.monotonic_ns()
            return out

    planner = SlowSecondPlan(ckpt.model, seed=1)
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, ListAdapter(features(10)), ex, tick_ms=300, planner=planner)
    first = rt.step()  # tick 0: scheduled over the next 300 ms
    assert first, "the tiny model planned nothing for tick 0"
    rt.step()  # tick 1 plans for 400 ms on this thread
    during = [p for p in ex.log if planner.slow_from <= p.t_ns <= planner.slow_to and p.action in first]
    assert during, "no tick-0 action fell due during the slow plan"
    errs = list(rt.scheduler.timing_errors_ms)[: len(first)]
    assert max(errs) < 50, errs  # on time (a loaded 2-core machine: generous bound)
    rt.stop()


def test_run_on_the_clock_grid_and_stop_from_another_thread(ckpt):
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, ListAdapter(features(100)), ex, tick_ms=50)
    t0 = time.monotonic()
    c = rt.run(ticks=6)
    assert c["ticks"] == 6 and 0.2 <= time.monotonic() - t0 < 3.0
    th = rt.start()
    time.sleep(0.2)
    rt.stop()
    th.join(2)
    assert not th.is_alive() and rt.counters["state"] == "stopped"


def test_pause_cancels_scheduled_and_forgets_them(ckpt):
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, ListAdapter(features(10)), ex, tick_ms=2000)
    plan = rt.step()
    rt.pause()
    assert rt.paused and rt.scheduler.pending == 0
    assert all(e.t_ns <= time.monotonic_ns() for e in rt.context.events())
    assert rt.counters["pauses"] == {"user": 1}
    rt.pause()  # twice: no-op
    assert rt.counters["pauses"] == {"user": 1}
    rt.resume()
    rt.resume()
    assert not rt.paused
    rt.stop()
    assert len(plan) >= 0


def test_run_ends_when_a_finished_source_goes_stale(ckpt):
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, ListAdapter(features(4)), ex, SafetyConfig(stale_ticks=2), realtime=False)
    c = rt.run()
    assert c["ticks"] == 5 and c["pauses"] == {"stale_state": 1}  # 4 fresh + 1 repeated state, then stale


def test_live_needs_real_time(ckpt):
    with pytest.raises(ValueError, match="real time"):
        AgentRuntime(ckpt, ListAdapter([]), DryRunExecutor(), live=True, realtime=False)


def _xywh(g: WindowGeometry):
    return (g.x, g.y, g.width, g.height)


def test_resolve_window_forms_all_give_one_type():
    assert _xywh(resolve_window("10,20,300,200")) == (10, 20, 300, 200)
    assert _xywh(resolve_window({"x": 1, "y": 2, "width": 3, "height": 4})) == (1, 2, 3, 4)
    assert _xywh(resolve_window([0, 0, 640, 480])) == (0, 0, 640, 480)
    g = WindowGeometry(5, 6, 7, 8)
    assert resolve_window(g) is g
    for bad in ({"x": 1}, (0, 0, 0, 10), (1, 2, 3), (0, 0, float("nan"), 5), object()):
        with pytest.raises(UserError):
            resolve_window(bad)


def test_latency_stats():
    s = LatencyStats(n=3)
    assert s.quantile(0.5) is None
    for v in (1, 2, 3, 100):
        s.add(v)
    assert s.quantile(0.5) == 3 and math.isclose(s.quantile(1.0), 100)


def test_tick_ms_from_stats(ckpt):
    rt = AgentRuntime(ckpt, ListAdapter([]), DryRunExecutor(), realtime=False)
    assert rt.tick_ms == 600.0 and rt.safety_config.tick_ms == 600.0
    rt.stop()


class TickingAdapter(ListAdapter):
    """Reports the game's own ticks: a new capture every `every_ms`, then silence."""

    reports_ticks = True

    def __init__(self, n, every_ms=40.0):
        super().__init__(features(n), tick_ms=every_ms)
        self.every_ns = int(every_ms * 1e6)
        self.t0 = time.monotonic_ns()

    def _poll(self):
        if time.monotonic_ns() - self.t0 < self.i * self.every_ns:
            return None
        return super()._poll()


def test_ticks_paced_by_the_adapter_then_stale(ckpt):
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, TickingAdapter(5), ex, SafetyConfig(stale_ticks=3), tick_ms=40)
    starts = []
    rt.on_plan.append(lambda tick, a: starts.append(rt.context.tick_start_ns))
    c = rt.run()  # 5 ticks from the source, then no fresh state: stale → paused → finished source ends the run
    assert c["ticks"] == 5 and c["pauses"] == {"stale_state": 1}
    gaps = np.diff(starts) / 1e6
    assert (gaps > 20).all()  # paced by the captures (40 ms apart), not as fast as possible


def test_slow_steps_on_the_real_time_grid_skip_missed_ticks(ckpt):
    ex = DryRunExecutor()
    rt = AgentRuntime(ckpt, ListAdapter(features(10)), ex, tick_ms=20)
    rt.step()
    assert rt.running
    time.sleep(0.1)  # five ticks' worth
    rt.step()
    assert rt.counters["late_ticks"] >= 3
    rt.stop()
    assert not rt.running


def test_no_state_yet_plans_nothing(ckpt):
    rt = AgentRuntime(ckpt, ListAdapter([None, None]), DryRunExecutor(), realtime=False)
    assert rt.step() == [] and rt.counters["ticks"] == 0 and rt.counters["state"] == "waiting_for_state"
