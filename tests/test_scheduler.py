"""Scheduler: due-time ordering on the monotonic clock, non-blocking submission, lateness,
pause/resume/stop with releases, and the optional safety pipeline (dry-run executor)."""

from __future__ import annotations

import threading
import time

import pytest

from ilbot.agent.executors import DryRunExecutor
from ilbot.agent.scheduler import Scheduler
from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.safety import SafetyConfig, SafetyPipeline

M, K, C = EventType.MOVE, EventType.KEY, EventType.CLICK


def move(t, x=1.0):
    return PlannedAction(M, t, x, 0.0)


def press(t, name="a"):
    return PlannedAction(K, t, 0.0, 0.0, key_action=KeyAction.PRESS, key_id=key_id(name))


def release(t, name="a"):
    return PlannedAction(K, t, 0.0, 0.0, key_action=KeyAction.RELEASE, key_id=key_id(name))


@pytest.fixture
def dry():
    return DryRunExecutor()


@pytest.fixture
def sched(dry):
    s = Scheduler(dry, origin=(10, 20))
    yield s
    s.stop()


def test_performs_in_due_order_not_before_due(sched, dry):
    start = time.monotonic_ns() + 20_000_000
    sched.submit([move(60, 3), move(0, 1), move(30, 2)], start)
    sched.submit([move(45, 9)], start)  # a second submission interleaves by due time
    assert sched.wait_idle(2.0)
    xs = [rec.action.x for rec in dry.log]
    assert xs == [1, 2, 9, 3]
    for rec in dry.log:
        assert rec.t_ns >= start + rec.action.t_ms * 1e6  # never early
    assert dry.log[0].screen_x == 11 and dry.log[0].screen_y == 20  # the origin is applied
    assert sched.counters["performed"] == 4 and sched.counters["submitted"] == 4
    stats = sched.timing_stats()
    assert stats["n"] == 4 and 0 <= stats["median_ms"] <= stats["p95_ms"] <= stats["max_ms"]


def test_submit_origin_override_and_empty_stats(sched, dry):
    assert sched.timing_stats() == {"n": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    sched.submit([move(0)], time.monotonic_ns(), origin=(500, 600))
    assert sched.wait_idle(2.0) and dry.log[0].screen_x == 501


def test_slow_planner_never_delays_scheduled_events(sched, dry):
    start = time.monotonic_ns()
    sched.submit([move(t) for t in range(0, 200, 20)], start)
    done = {}

    def slow_planner():  # plans the next tick for 400 ms, then submits
        time.sleep(0.4)
        done["submit_ns"] = time.monotonic_ns()
        sched.submit([move(500)], start)

    t = threading.Thread(target=slow_planner)
    t.start()
    t.join()
    assert sched.wait_idle(2.0)
    first_tick = [r for r in dry.log if r.action.t_ms < 500]
    assert len(first_tick) == 10 and all(r.t_ns < done["submit_ns"] for r in first_tick)


def test_late_actions_are_counted_or_dropped_but_releases_always_go(dry):
    s = Scheduler(dry, late_ms=5, max_late_ms=100)
    past = time.monotonic_ns() - 50_000_000  # due 50 ms ago
    s.submit([move(0)], past)
    assert s.wait_idle(2.0) and s.counters["late"] == 1 and s.counters["performed"] == 1
    s.submit([press(0, "a")], time.monotonic_ns())
    assert s.wait_idle(2.0)
    long_past = time.monotonic_ns() - 1_000_000_000
    s.submit([press(0, "b"), release(1, "a")], long_past)
    assert s.wait_idle(2.0)
    assert s.counters["dropped"] == s.counters["late_dropped"] == 1 and dry.log[-1].action == release(1, "a")
    assert dry.held_keys == set()
    s.submit([release(0, "b")], time.monotonic_ns())  # b was never pressed: its release is a no-op, not performed
    assert s.wait_idle(2.0) and s.counters["unheld_dropped"] == 1 and s.counters["performed"] == 3
    s.stop()


def test_pause_drops_pending_and_releases_resume_accepts(sched, dry):
    sched.submit([press(0)], time.monotonic_ns())
    assert sched.wait_idle(2.0) and dry.held_keys == {key_id("a")}
    sched.submit([move(t) for t in (500, 600)], time.monotonic_ns())
    released = sched.pause()
    assert released == ["a"] and dry.held_keys == set() and sched.paused and sched.pending == 0
    assert sched.counters["dropped"] == 2
    assert sched.submit([move(0)], time.monotonic_ns()) == 0 and sched.counters["dropped"] == 3
    sched.resume()
    assert sched.submit([move(0)], time.monotonic_ns()) == 1 and sched.wait_idle(2.0)


def test_cancel_drops_pending_only(sched, dry):
    sched.submit([move(300), move(400)], time.monotonic_ns())
    assert sched.cancel() == 2 and sched.pending == 0 and not sched.stopped


def test_stop_drops_pending_releases_and_is_idempotent(dry):
    s = Scheduler(dry)
    s.submit([press(0, "shift")], time.monotonic_ns())
    assert s.wait_idle(2.0)
    s.submit([move(1000)], time.monotonic_ns())
    assert s.stop() == ["shift"] and s.stopped and s.stopped_ns is not None
    assert s.counters["dropped"] == 1 and dry.held_keys == set()
    assert s.stop() == [] and s.submit([move(0)], time.monotonic_ns()) == 0
    assert s.pause() == []


def test_stop_from_the_scheduler_thread_itself(dry):
    s = Scheduler(dry)
    dry.add_listener(lambda rec: s.stop() if rec.action.x == 7 else None)
    s.submit([press(0), move(20, 7), move(40, 8)], time.monotonic_ns())
    deadline = time.monotonic() + 2
    while not s.stopped and time.monotonic() < deadline:
        time.sleep(0.005)
    assert s.stopped and dry.held_keys == set() and s.counters["performed"] == 2


def test_perform_errors_are_counted_and_do_not_kill_the_thread():
    class Flaky(DryRunExecutor):
        def _perform(self, action, sx, sy):
            if action.x == 13:
                raise RuntimeError("boom")
            super()._perform(action, sx, sy)

    ex = Flaky()
    s = Scheduler(ex)
    s.submit([move(0, 13), move(10, 1)], time.monotonic_ns())
    assert s.wait_idle(2.0) and s.counters["errors"] == 1 and s.counters["performed"] == 1
    s.close()


def test_with_pipeline_filters_and_resets_held_state(dry):
    p = SafetyPipeline(SafetyConfig(), (100, 100))
    s = Scheduler(dry, p)
    n = s.submit([press(0), press(2), PlannedAction(C, 20, 500, 5, button=1, hold_ms=50), move(30, 1e9)],
                 time.monotonic_ns())
    assert n == 2  # the second press hit the floor, the click was out of bounds; the move is clamped
    assert s.wait_idle(2.0) and dry.log[-1].action.x == 99
    assert p.held_keys == [key_id("a")]
    s.pause()
    assert p.held_keys == [] and dry.held_keys == set()
    s.stop()


def test_wait_idle_times_out(sched):
    sched.submit([move(5000)], time.monotonic_ns())
    assert not sched.wait_idle(0.05)


def test_time_floor_holds_between_performed_actions_even_when_they_run_late(dry):
    """Actions due 1 ms apart but all already late (a busy machine) would be performed back to
    back; the scheduler spaces their starts by min_gap_ms instead."""
    s = Scheduler(dry, min_gap_ms=8.0)
    past = time.monotonic_ns() - 20_000_000  # all due 20 ms ago, 1 ms apart
    s.submit([move(t, x=t) for t in range(5)], past)
    assert s.wait_idle(2.0) and s.counters["performed"] == 5
    starts = [rec.t_ns for rec in dry.log]
    assert [rec.action.x for rec in dry.log] == [0, 1, 2, 3, 4]
    assert min(b - a for a, b in zip(starts, starts[1:])) >= 8_000_000
    s.stop()


# -- perform-time limits: drop, never bunch ----------------------------------------------------------
def windows_ok(times_ns, limit) -> int:
    """The most actions in any 1 s window (t - 1 s, t] of the sorted times."""
    worst, j = 0, 0
    for i, t in enumerate(times_ns):
        while times_ns[j] <= t - 1_000_000_000:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def storm_plan(rng, n=3300, tick_ms=600.0):
    """n planned actions in one tick: moves, clicks, scrolls, presses and releases of a few keys."""
    keys = [key_id(k) for k in ("a", "s", "d", "f", "space", "shift")]
    out = []
    for _ in range(n):
        t = rng.uniform(0, tick_ms)
        kind = rng.choice("MMMCKKS")
        if kind == "M":
            out.append(PlannedAction(M, t, rng.uniform(0, 799), rng.uniform(0, 599)))
        elif kind == "C":
            out.append(PlannedAction(C, t, rng.uniform(0, 799), rng.uniform(0, 599), button=rng.randint(1, 3),
                                     hold_ms=rng.uniform(0, 80)))
        elif kind == "S":
            out.append(PlannedAction(EventType.SCROLL, t, 5, 5, scroll_y=rng.randint(1, 2)))
        else:
            out.append(PlannedAction(K, t, 5, 5, key_action=rng.randint(1, 2), key_id=rng.choice(keys)))
    return out


class Stalling(DryRunExecutor):
    """A dry run whose every `every`-th perform blocks for `stall_s` (a busy machine)."""

    def __init__(self, every=25, stall_s=0.12):
        super().__init__()
        self.every, self.stall_s, self.n = every, stall_s, 0
        self.stall_ends: list[int] = []
        self.starts: list[tuple[int, PlannedAction]] = []  # (monotonic ns when perform began, action)

    def _perform(self, action, sx, sy):
        self.starts.append((time.monotonic_ns(), action))
        super()._perform(action, sx, sy)
        self.n += 1
        if self.every and self.n % self.every == 0:
            time.sleep(self.stall_s)
            self.stall_ends.append(time.monotonic_ns())


@pytest.mark.parametrize("filtered, stall", [(True, False), (True, True), (False, True)])
def test_storm_never_puts_more_than_the_rate_into_any_second_of_performed_actions(filtered, stall):
    """3 300 planned actions a tick for 4 ticks, the planner 60 ms late every tick and the executor
    stalling: no 1 s window of *performed* actions (releases included) holds more than
    max_actions_per_s, nor more of a type than its limit; what could not go out in time was
    dropped and counted, and nothing went out later than max_late_ms. Unfiltered, the storm goes
    straight to the scheduler: its own perform-time limits alone keep the rate."""
    import random

    rng = random.Random(7)
    cfg = SafetyConfig()
    pipeline = SafetyPipeline(cfg, (800, 600))
    ex = Stalling(every=25 if stall else 0)
    s = Scheduler(ex, safety_config=cfg, max_late_ms=100)
    # the four ticks' plans are filtered first (the filter keeps no clock of its own: it reads the
    # tick starts it is given), so the time the filter takes on a slow or loaded machine — a few
    # hundred ms under coverage — cannot make every plan arrive late
    plans = [storm_plan(rng) for _ in range(4)]
    plans = [pipeline.filter(p, i * 600.0) if filtered else sorted(p, key=lambda a: a.t_ms) for i, p in enumerate(plans)]
    t0 = time.monotonic_ns() + 50_000_000
    submitted = 0
    for i, safe in enumerate(plans):
        start_ns = t0 + i * 600_000_000
        while time.monotonic_ns() < start_ns + 60_000_000:  # the plan arrives 60 ms into its tick
            time.sleep(0.002)
        submitted += s.submit([a.with_(meta={"due_ns": start_ns + int(a.t_ms * 1e6)}) for a in safe], start_ns)
    assert s.wait_idle(5.0)
    s.stop()
    recs = sorted(ex.log, key=lambda r: r.t_ns)
    assert pipeline.counters["planned"] == (4 * 3300 if filtered else 0) and len(recs) > 50
    assert windows_ok([r.t_ns for r in recs], cfg.max_actions_per_s) <= cfg.max_actions_per_s
    for name, limit in cfg.max_per_s.items():
        mine = [r.t_ns for r in recs if r.action.type.name == name
                and not (r.action.type == K and r.action.key_action == KeyAction.RELEASE)]
        assert windows_ok(mine, limit) <= limit, name
    c = s.counters
    # unfiltered, the limiter acts (how often depends on the machine: on a slow one under coverage
    # most of the storm is already late when its turn comes, and goes as late_dropped); the rate
    # itself is what the windows above check
    assert c["performed"] == len(recs) and (filtered or c["rate_dropped"] > 0) and (not stall or c["late_dropped"] > 0)
    assert c["submitted"] == submitted == c["performed"] + c["dropped"]  # every action accounted for
    assert c["dropped"] == sum(c[k] for k in ("late_dropped", "rate_dropped", "cooldown_dropped", "unheld_dropped"))
    for t, a in ex.starts:  # nothing performed in a bunch later: each non-release started within max_late_ms
        if not (a.type == K and a.key_action == KeyAction.RELEASE):
            assert t - a.meta["due_ns"] <= 100e6 + 50e6  # (+ the scheduler's own step from its check to the start)
    print("storm:", dict(c))


def test_rate_limit_at_perform_time_waits_for_a_slot_or_drops():
    """Planned 10 ms apart (as if the plan were not rate-limited): the first 10 go out, the rest
    would have to wait about a second for a slot in the 10/s budget — far past max_late_ms, so
    they are dropped, not performed in a bunch later."""
    ex = DryRunExecutor()
    s = Scheduler(ex, max_actions_per_s=10, max_late_ms=100)
    s.submit([move(t * 10.0, x=t) for t in range(20)], time.monotonic_ns())
    assert s.wait_idle(2.0)
    assert s.counters["performed"] == 10 and s.counters["rate_dropped"] == 10 and s.counters["dropped"] == 10
    assert [r.action.x for r in ex.log] == list(range(10))
    s.stop()
    # with a lateness budget wide enough, the same actions wait for their slots instead
    ex = DryRunExecutor()
    s = Scheduler(ex, max_actions_per_s=10, max_late_ms=5000, rate_margin_ms=0)
    s.submit([move(t * 10.0, x=t) for t in range(12)], time.monotonic_ns())
    assert s.wait_idle(4.0) and s.counters["performed"] == 12 and s.counters["dropped"] == 0
    times = [r.t_ns for r in ex.log]
    assert windows_ok(times, 10) <= 10 and times[10] - times[0] >= 1e9
    s.stop()


def test_rate_limit_keeps_room_for_key_releases():
    ex = DryRunExecutor()
    s = Scheduler(ex, max_actions_per_s=4)
    now = time.monotonic_ns()
    s.submit([press(0, "a"), press(10, "b"), move(20), move(30), release(40, "a"), release(50, "b")], now)
    assert s.wait_idle(2.0)
    # a, b pressed (2 + 2 releases reserved = 4): both moves dropped; both releases performed
    assert [r.action.type for r in ex.log] == [K, K, K, K] and s.counters["rate_dropped"] == 2
    assert windows_ok(sorted(r.t_ns for r in ex.log), 4) <= 4
    s.stop()


def test_cooldown_at_perform_time():
    """A cooldown runs from the end of the type's last performed action (each perform here takes
    50 ms): 120 ms apart as planned, the clicks go out on time; one planned 5 ms after another
    would have to wait 105 ms for its slot — past max_late_ms, so it is dropped."""
    ex = Stalling(every=1, stall_s=0.05)
    s = Scheduler(ex, cooldown_ms={"CLICK": 60.0}, max_late_ms=20)
    now = time.monotonic_ns()
    clicks = [PlannedAction(C, t, 1, 1, button=1, hold_ms=0) for t in (0, 120, 240)]
    s.submit(clicks, now)
    s.submit([PlannedAction(C, 125, 1, 1, button=2, hold_ms=0)], now)
    assert s.wait_idle(3.0)
    assert s.counters["cooldown_dropped"] == 1 and s.counters["performed"] == 3
    ends = [r.t_ns for r in ex.log]  # a record's time is when its perform ended
    starts = [t for t, _ in ex.starts]
    assert min(b - a for a, b in zip(ends, starts[1:])) >= 60e6
    s.stop()


def test_time_floor_runs_from_the_end_of_a_slow_perform():
    """An action that takes long to perform (a busy machine) is followed by the next one no
    sooner than min_gap_ms after it *ended*: the gap the game sees never collapses."""
    ex = Stalling(every=1, stall_s=0.03)
    s = Scheduler(ex, min_gap_ms=8, max_late_ms=200)
    s.submit([move(t, x=t) for t in (0, 10, 20, 30)], time.monotonic_ns())
    assert s.wait_idle(3.0) and s.counters["performed"] == 4
    ends = [r.t_ns for r in ex.log]
    starts = [t for t, _ in ex.starts]
    assert min(b - a for a, b in zip(ends, starts[1:])) >= 8e6
    s.stop()


def test_actions_due_during_a_stall_are_dropped_not_bunched():
    ex = Stalling(every=1, stall_s=0.3)
    s = Scheduler(ex, max_late_ms=50, min_gap_ms=8)
    start = time.monotonic_ns()
    s.submit([move(t, x=t) for t in range(0, 400, 15)], start)  # the first perform stalls 300 ms
    assert s.wait_idle(10.0)
    # after each stall, only actions due at most max_late_ms before it ended go out: the rest are dropped
    for (t_prev, _), (t, a), stall_end in zip(ex.starts, ex.starts[1:], ex.stall_ends):
        assert start + a.t_ms * 1e6 >= stall_end - 50e6
    assert s.counters["late_dropped"] >= 10 and s.counters["performed"] + s.counters["dropped"] == 27
    assert s.counters["performed"] == len(ex.starts) <= 3
    s.stop()
