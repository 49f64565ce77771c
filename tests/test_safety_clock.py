"""SafetyClock: forced releases on its own thread and clock, with no plan or capture arriving —
max hold (keys and buttons, checked on the X server with a real PynputExecutor), stale game
state, a suspension (its loop did not run), the shared perform lock, heartbeats, and stop."""

from __future__ import annotations

import threading
import time

import pytest

from ilbot.agent.executors import DryRunExecutor
from ilbot.data.action import PlannedAction
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.safety import SafetyClock, SafetyConfig

K, C = EventType.KEY, EventType.CLICK


def press(name):
    return PlannedAction(K, 0.0, 5, 5, key_action=KeyAction.PRESS, key_id=key_id(name))


def click(hold_ms, button=1):
    return PlannedAction(C, 0.0, 5, 5, button=button, hold_ms=hold_ms)


def wait_for(cond, timeout=3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def test_max_hold_releases_a_key_with_nothing_else_happening():
    ex = DryRunExecutor()
    released = []
    clock = SafetyClock(ex, SafetyConfig(max_hold_ms=150), on_release=lambda w, r: released.append((w, r)))
    try:
        ex.perform(press("w"))
        ex.perform(press("a"))
        time.sleep(0.05)
        assert ex.held_keys == {key_id("w"), key_id("a")}  # not before max hold
        assert wait_for(lambda: not ex.held_keys, 2.0)
        assert wait_for(lambda: len(released) == 2)
        assert sorted(released) == [(("key", key_id("a")), "max_hold"), (("key", key_id("w")), "max_hold")]
        assert clock.counters["released_max_hold"] == 2
    finally:
        clock.stop()
    assert not clock.running


def test_max_hold_on_the_x_server(own_display):
    """A key and a button held by a real PynputExecutor, no plan, no capture: the server shows
    both released by max_hold_ms + 100 ms (and max_click_hold_ms + 100 ms)."""
    from ilbot.agent.executors import PynputExecutor
    from ilbot.safety.xstate import XInputState

    cfg = SafetyConfig(max_hold_ms=300, max_click_hold_ms=200)
    with XInputState() as xs, PynputExecutor() as ex:
        clock = SafetyClock(ex, cfg)
        try:
            ex.perform(click(hold_ms=60_000), (100, 100))  # the executor's own release would come in a minute
            t_click = time.monotonic()
            ex.perform(press("shift"))
            t_key = time.monotonic()
            assert xs.buttons_down() == {1} and xs.keycode(key_id("shift")) in xs.keys_down()
            assert wait_for(lambda: not xs.buttons_down(), 2.0)
            button_ms = (time.monotonic() - t_click) * 1e3
            assert wait_for(lambda: not xs.keys_down(), 2.0)
            key_ms = (time.monotonic() - t_key) * 1e3
            # (t_click/t_key are taken just after the press: the lower bounds allow for that step)
            assert cfg.max_click_hold_ms - 20 <= button_ms <= cfg.max_click_hold_ms + 100
            assert cfg.max_hold_ms - 20 <= key_ms <= cfg.max_hold_ms + 100
            assert ex.held() == {} and ex.held_keys == {} and ex.held_buttons == {}
            assert clock.counters["released_max_hold"] == 1 and clock.counters["released_max_click_hold"] == 1
        finally:
            clock.stop()


def test_release_waits_for_the_perform_lock_and_never_hits_a_newer_press():
    ex = DryRunExecutor()
    lock = threading.RLock()
    clock = SafetyClock(ex, SafetyConfig(max_hold_ms=50), lock=lock)
    try:
        with lock:  # an action "in progress" for 300 ms
            ex.perform(press("q"))
            time.sleep(0.3)
            assert ex.held_keys == {key_id("q")}  # over max hold, but the clock waits for the lock
        assert wait_for(lambda: not ex.held_keys, 1.0)
    finally:
        clock.stop()
    # a release decided for one press never releases a later press of the same key
    ex.perform(press("q"))
    (what, since), = ex.held().items()
    assert not ex.release(what, since - 1) and ex.held_keys == {key_id("q")}
    assert ex.release(what, since) and not ex.held_keys


def test_stale_state_releases_and_calls_on_stale_once_per_spell():
    ex = DryRunExecutor()
    fresh = {"ns": time.monotonic_ns()}
    stale_calls = []
    cfg = SafetyConfig(stale_ticks=2, tick_ms=50)  # stale after 100 ms
    clock = SafetyClock(ex, cfg, last_fresh_ns=lambda: fresh["ns"], on_stale=stale_calls.append)
    try:
        ex.perform(press("d"))
        assert wait_for(lambda: len(stale_calls) == 1, 2.0)
        assert stale_calls[0] > 100 and clock.stale and not ex.held_keys
        ex.perform(press("d"))  # held while still stale: released again, no second call
        assert wait_for(lambda: not ex.held_keys, 1.0)
        time.sleep(0.05)
        assert len(stale_calls) == 1 and clock.counters["released_stale"] == 2
        fresh["ns"] = time.monotonic_ns() + 10**9  # fresh state keeps coming for a second
        assert wait_for(lambda: not clock.stale, 1.0)
        ex.perform(press("d"))
        time.sleep(0.1)
        assert ex.held_keys == {key_id("d")}  # fresh: nothing released
        assert wait_for(lambda: len(stale_calls) == 2, 3.0)  # a new stale spell
        assert clock.counters["stale"] == 2
    finally:
        clock.stop()


def test_no_state_yet_is_not_stale():
    ex = DryRunExecutor()
    calls = []
    clock = SafetyClock(ex, SafetyConfig(stale_ticks=1, tick_ms=10), last_fresh_ns=lambda: None, on_stale=calls.append)
    ex.perform(press("e"))
    time.sleep(0.1)
    assert calls == [] and ex.held_keys == {key_id("e")}
    assert clock.stop() == [("key", key_id("e"))] and not ex.held_keys  # stop releases everything


def test_a_gap_in_its_own_loop_is_a_suspension():
    """A loop that did not run for 400 ms (here: one heartbeat that blocks the clock's thread)
    releases everything and calls on_suspended with the gap."""
    ex = DryRunExecutor()
    suspended = []
    state = {"beats": 0}

    def heartbeat():
        state["beats"] += 1
        if state["beats"] == 5:
            ex.perform(press("r"))
            time.sleep(0.4)

    clock = SafetyClock(ex, SafetyConfig(), heartbeat=heartbeat, on_suspended=suspended.append, suspend_gap_ms=250)
    try:
        assert wait_for(lambda: suspended, 3.0)
        assert suspended[0] >= 400 and not ex.held_keys
        assert clock.counters["suspended"] == 1 and clock.counters["released_suspended"] == 1
        n = state["beats"]
        time.sleep(0.1)
        assert state["beats"] > n + 3  # beats go on
    finally:
        clock.stop()


def test_callbacks_never_block_the_clock_or_its_heartbeat():
    ex = DryRunExecutor()
    beats = []
    gate = threading.Event()
    fresh_ns = time.monotonic_ns()
    clock = SafetyClock(ex, SafetyConfig(stale_ticks=1, tick_ms=20), last_fresh_ns=lambda: fresh_ns,
                        on_stale=lambda age: gate.wait(5), heartbeat=lambda: beats.append(time.monotonic()))
    try:
        time.sleep(1.0)  # on_stale is blocked all this time: a clock that waited on it would not beat
        assert clock.counters["stale"] == 1 and len(beats) > 10
        assert max(b - a for a, b in zip(beats, beats[1:])) < 0.5  # half the block: room for a loaded machine
        assert clock.counters["suspended"] == 0
    finally:
        gate.set()
        clock.stop()


def test_failing_heartbeat_and_callbacks_are_counted_not_fatal():
    ex = DryRunExecutor()

    def boom(*_):
        raise RuntimeError("boom")

    clock = SafetyClock(ex, SafetyConfig(max_hold_ms=20), heartbeat=boom, on_release=boom)
    try:
        ex.perform(press("t"))
        assert wait_for(lambda: clock.counters["callback_errors"] == 1, 2.0)
        assert clock.running and clock.counters["heartbeat_errors"] > 0 and not ex.held_keys
    finally:
        clock.stop()


@pytest.mark.parametrize("release", [True, False])
def test_stop_is_idempotent_and_releases_on_request(release):
    ex = DryRunExecutor()
    clock = SafetyClock(ex, SafetyConfig())
    ex.perform(press("y"))
    assert clock.stop(release=release) == ([("key", key_id("y"))] if release else [])
    assert ex.held_keys == (set() if release else {key_id("y")})
    assert clock.stop() == ([] if release else [("key", key_id("y"))]) and not clock.running
