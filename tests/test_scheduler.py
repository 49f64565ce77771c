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
    long_past = time.monotonic_ns() - 1_000_000_000
    s.submit([press(0), release(1)], long_past)
    assert s.wait_idle(2.0)
    assert s.counters["dropped"] == 1 and dry.log[-1].action.key_action == KeyAction.RELEASE
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
