"""Arbitrary model outputs through the safety layers into a real PynputExecutor on the test's own
Xvfb: what reaches the X server is in bounds, spaced, paired, and after stop nothing is held —
checked on the server itself (QueryKeymap, the pointer's button mask), not only in bookkeeping."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ilbot.data.action import PlannedAction
from ilbot.data.keys import VOCAB_SIZE, key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.safety import SafetyConfig, SafetyPipeline

C, K, S, M = EventType.CLICK, EventType.KEY, EventType.SCROLL, EventType.MOVE
W, H = 400, 300
ORIGIN = (200, 150)
# keys safe to storm on a bare X server (no window manager or terminal bindings behind them)
KEYS = [key_id(k) for k in ("a", "s", "d", "1", "space", "shift", "left", "f5")]
junk = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, -5.0])


@st.composite
def model_output(draw):
    """One slot of an arbitrary model output: mostly plausible, often broken in one field."""
    kind = draw(st.sampled_from([C, K, K, S, M, M, M, 9]))
    fields = dict(t_ms=draw(st.floats(-20, 620)), x=draw(st.floats(-100, W + 100)), y=draw(st.floats(-100, H + 100)),
                  hold_ms=draw(st.floats(-50, 800)))
    if draw(st.integers(0, 4)) == 0:  # one field NaN, inf or huge
        fields[draw(st.sampled_from(sorted(fields)))] = draw(junk)
    return PlannedAction(kind, fields["t_ms"], fields["x"], fields["y"], button=draw(st.integers(-1, 4)),
                         key_action=draw(st.sampled_from([0, 1, 1, 2, 2, 3])),
                         key_id=draw(st.sampled_from(KEYS + [0, -1, VOCAB_SIZE])),  # no lock keys: they would toggle state
                         scroll_y=draw(st.integers(0, 3)), hold_ms=fields["hold_ms"])


storm = st.lists(st.builds(lambda t, k, a: PlannedAction(K, t, 5, 5, key_action=a, key_id=k), st.floats(0, 599),
                           st.sampled_from(KEYS[:3]), st.sampled_from([1, 2])), min_size=5, max_size=30)
ticks_strategy = st.lists(st.one_of(st.lists(model_output(), min_size=5, max_size=40), storm), min_size=1, max_size=3)


STATS = {"compressed_performed": 0, "real_time_performed": 0}  # printed by the last test: examples do act


class CheckingExecutor:
    """A real PynputExecutor that asks the X server, before each action, whether it is allowed."""

    def __init__(self, xs):
        from ilbot.agent.executors import PynputExecutor

        class Checking(PynputExecutor):
            def _perform(inner, action, sx, sy):
                t = time.monotonic_ns() / 1e6
                if action.type == K and action.key_action == KeyAction.PRESS and xs.keycode(action.key_id) in xs.keys_down():
                    self.violations.append(("press of a key held on the server", action))
                if action.type == C and action.button in xs.buttons_down():
                    self.violations.append(("click on a button held on the server", action))
                super()._perform(action, sx, sy)
                if action.type != K:
                    px, py = xs.pointer()
                    if not (ORIGIN[0] <= px < ORIGIN[0] + W and ORIGIN[1] <= py < ORIGIN[1] + H):
                        self.violations.append(("pointer left the window", action, (px, py)))
                self.performed.append((t, action))

        self.violations: list = []
        self.performed: list = []
        self.executor = Checking()


@pytest.fixture(scope="module")
def xs(xvfb):
    import os

    if xvfb is None or os.environ.get("DISPLAY") != f":{xvfb.display}":
        pytest.fail("refusing to inject input outside the test's own Xvfb")
    from ilbot.safety.xstate import XInputState

    with XInputState() as state:
        yield state


def check_invariants(performed, cfg, pipeline):
    """The safety promises over what was actually performed, in the order it was performed."""
    x0, y0, x1, y1 = pipeline.bounds.area
    held = set()
    last = None
    for t, a in performed:
        assert x0 <= a.x <= x1 and y0 <= a.y <= y1
        if a.type == K:
            if a.key_action == KeyAction.PRESS:
                assert a.key_id not in held
                held.add(a.key_id)
            else:
                assert a.key_id in held
                held.discard(a.key_id)
        if a.type == C:
            assert 0 <= a.hold_ms <= cfg.max_click_hold_ms
        if last is not None and "due" in a.meta:
            assert a.meta["due"] - last >= cfg.min_dt_ms - 1e-6  # planned spacing of what was performed
        last = a.meta.get("due", last)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ticks=ticks_strategy)
def test_property_arbitrary_outputs_on_the_x_server(own_display, xs, ticks):
    """Compressed time: each tick's safe actions are performed back to back (no waiting), so many
    examples fit; the server is asked before every key press and after every pointer action."""
    cfg = SafetyConfig(max_hold_ms=700)
    pipeline = SafetyPipeline(cfg, (W, H))
    chk = CheckingExecutor(xs)
    ex = chk.executor
    try:
        for i, plan in enumerate(ticks):
            start = 1e6 + i * cfg.tick_ms
            for a in pipeline.filter(plan, start):
                ex.perform(a.with_(meta={"due": start + a.t_ms}), ORIGIN)
        violations = [v for v in chk.violations if not v[0].startswith("click")]  # holds are real-time
        assert violations == []
        check_invariants(chk.performed, cfg, pipeline)
        STATS["compressed_performed"] += len(chk.performed)
        assert set(ex.held_keys) == set(pipeline.held_keys)  # the pipeline's record is the executor's
    finally:
        pipeline.release_all()
        ex.close()
    assert xs.keys_down() == set() and xs.buttons_down() == set()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ticks=ticks_strategy, stop_after=st.floats(0.2, 1.2))
def test_property_real_time_scheduler_then_stop(own_display, xs, ticks, stop_after):
    """Real time: ticks 600 ms apart through the scheduler; stopped at an arbitrary moment (often
    mid-hold or mid-storm); the server must show nothing held afterwards."""
    from ilbot.agent.scheduler import Scheduler

    cfg = SafetyConfig(max_hold_ms=700)
    pipeline = SafetyPipeline(cfg, (W, H))
    chk = CheckingExecutor(xs)
    sched = Scheduler(chk.executor, origin=ORIGIN)  # filtered here, so each action carries its due time
    t0 = time.monotonic_ns()
    for i, plan in enumerate(ticks):
        start_ns = t0 + int(i * cfg.tick_ms * 1e6)
        safe = pipeline.filter(plan, start_ns / 1e6)
        sched.submit([a.with_(meta={"due": start_ns / 1e6 + a.t_ms}) for a in safe], start_ns)
    time.sleep(stop_after)
    sched.stop()
    pipeline.release_all()
    try:
        assert chk.violations == []
        check_invariants(chk.performed, cfg, pipeline)
        STATS["real_time_performed"] += len(chk.performed)
        assert xs.keys_down() == set() and xs.buttons_down() == set()
        assert chk.executor.held_keys == {} and chk.executor.held_buttons == {} and pipeline.held_keys == []
    finally:
        chk.executor.close()


def test_key_storm_and_long_holds_end_released(own_display, xs):
    """A deterministic storm: 200 presses/releases of 3 keys in one tick plus a key never released;
    the max-hold release and stop leave the server clean."""
    from ilbot.agent.scheduler import Scheduler

    cfg = SafetyConfig(max_hold_ms=300, tick_ms=600)
    pipeline = SafetyPipeline(cfg, (W, H))
    chk = CheckingExecutor(xs)
    sched = Scheduler(chk.executor, pipeline, origin=ORIGIN)
    plan = [PlannedAction(K, 20 + i * 2.9, 5, 5, key_action=1 + (i // 3) % 2, key_id=KEYS[i % 3]) for i in range(200)]
    plan.append(PlannedAction(K, 0.0, 5, 5, key_action=1, key_id=key_id("shift")))
    start = time.monotonic_ns()
    sched.submit(plan, start)
    sched.submit([], start + 600_000_000)  # next tick: forced releases still due are emitted
    assert sched.wait_idle(3.0)
    assert xs.keys_down() == set()  # every key released by its pair or by max hold, before stop
    assert pipeline.counters["max_hold"] >= 1 and chk.violations == []
    presses = [a for _, a in chk.performed if a.key_action == KeyAction.PRESS]
    assert 0 < len(presses) <= cfg.max_per_s["KEY"]
    sched.stop()
    chk.executor.close()
    print("performed on X by the property tests:", STATS)


# -- OS chords and the storm, on the X server -------------------------------------------------------
class KeyLog:
    """Every key press/release that reaches the server, by keycode: a pynput RECORD listener whose
    message handler is wrapped (a key's symbol depends on the modifiers held — shift+alt is
    Meta_L —, its keycode does not). `names()` maps the keycodes back to vocabulary names."""

    def __init__(self, xs):
        from pynput import keyboard
        from Xlib import X

        self.xs = xs
        self.codes: list[tuple[str, int]] = []
        log = self

        class Raw(keyboard.Listener):
            def _handle_message(self, display, event, injected):
                if event.type in (X.KeyPress, X.KeyRelease):
                    log.codes.append(("press" if event.type == X.KeyPress else "release", event.detail))

        self.listener = Raw()

    def names(self, vocabulary) -> list[tuple[str, str]]:
        by_code = {self.xs.keycode(key_id(n)): n for n in vocabulary}
        return [(kind, by_code.get(code, f"keycode {code}")) for kind, code in self.codes]

    def __enter__(self):
        self.listener.start()
        self.listener.wait()
        return self

    def __exit__(self, *exc):
        from ilbot.safety.killswitch import nudge_x_listener

        self.listener.stop()
        self.listener.join(0.05)
        if self.listener.is_alive():
            nudge_x_listener()
            self.listener.join(2.0)
        d = self.xs.display  # drop the nudge: a keycode without any key symbol
        self.codes = [c for c in self.codes if any(d.keycode_to_keysym(c[1], i) for i in range(4))]


def chords_completed(events) -> list[str]:
    """Every OS chord (all blocked) that a press in the event stream completed on the server."""
    from ilbot.safety.chords import OsChords

    detector = OsChords(lambda: held)
    held: set[int] = set()
    found = []
    for kind, name in events:
        k = key_id(name)
        if kind == "press":
            chord = detector.chord_of(k, held)
            if chord is not None:
                found.append(chord)
            held.add(k)
        else:
            held.discard(k)
    return found


CHORD_PLANS = [("ctrl", "alt", "delete"), ("ctrl", "alt", "backspace"), ("ctrl", "alt", "f1"), ("alt", "ctrl", "f12"),
               ("alt", "tab"), ("tab", "alt"), ("alt", "f4"), ("shift", "alt", "esc"), ("ctrl", "esc"), ("cmd",),
               ("cmd", "d"), ("alt_r", "ctrl_r", "f2")]


def run_chords(xs, cfg, plans):
    """Each plan's keys pressed 40 ms apart, then all released, through the pipeline, the
    scheduler and a real PynputExecutor; returns the key events the server delivered."""
    from ilbot.agent.executors import PynputExecutor
    from ilbot.agent.scheduler import Scheduler

    pipeline = SafetyPipeline(cfg, (W, H))
    ex = PynputExecutor()
    sched = Scheduler(ex, safety_config=cfg, origin=ORIGIN)
    with KeyLog(xs) as log:
        t0 = time.monotonic_ns() + 50_000_000
        for i, names in enumerate(plans):
            start = t0 + i * 450_000_000
            plan = [PlannedAction(K, j * 40.0, 5, 5, key_action=1, key_id=key_id(n)) for j, n in enumerate(names)]
            plan += [PlannedAction(K, 200.0 + j * 20, 5, 5, key_action=2, key_id=key_id(n)) for j, n in enumerate(names)]
            sched.submit(pipeline.filter(plan, start / 1e6), start)
        assert sched.wait_idle(len(plans) * 0.45 + 3)
        time.sleep(0.2)
    sched.stop()
    ex.close()
    assert not xs.anything_held()
    return log.names({n for names in plans for n in names}), pipeline


def test_os_chords_never_reach_the_x_server(own_display, xs):
    events, pipeline = run_chords(xs, SafetyConfig(), CHORD_PLANS)
    presses = [n for kind, n in events if kind == "press"]
    assert presses == ["ctrl", "delete", "ctrl", "backspace", "ctrl", "f1", "alt", "f12", "alt", "tab", "alt",
                       "shift", "alt", "ctrl", "d", "alt_r", "f2"]  # what completes no chord does arrive
    assert chords_completed(events) == []
    assert pipeline.counters["os_chord"] == len(CHORD_PLANS)


def test_allowed_chord_does_reach_the_x_server(own_display, xs):
    """The control: allowed in the config, alt+tab reaches the server and the detector sees it."""
    events, pipeline = run_chords(xs, SafetyConfig(allow_os_chords="alt+tab"), [("alt", "tab"), ("alt", "f4")])
    assert chords_completed(events) == ["alt+tab"] and pipeline.counters["os_chord"] == 1


def test_storm_through_pipeline_scheduler_and_pynput(own_display, xs):
    """3 300 planned actions a tick for 3 ticks into a real PynputExecutor: no 1 s window of
    performed actions (releases included) holds more than max_actions_per_s; nothing held after."""
    import random

    from ilbot.agent.scheduler import Scheduler

    rng = random.Random(3)
    keys = [key_id(k) for k in ("a", "s", "d", "space", "shift")]
    cfg = SafetyConfig()
    pipeline = SafetyPipeline(cfg, (W, H))
    chk = CheckingExecutor(xs)
    sched = Scheduler(chk.executor, safety_config=cfg, origin=ORIGIN)
    t0 = time.monotonic_ns() + 50_000_000
    for i in range(3):
        start = t0 + i * 600_000_000
        plan = []
        for _ in range(3300):
            t, kind = rng.uniform(0, 600), rng.choice("MMCKKS")
            if kind == "K":
                plan.append(PlannedAction(K, t, 5, 5, key_action=rng.randint(1, 2), key_id=rng.choice(keys)))
            else:
                plan.append(PlannedAction({"M": M, "C": C, "S": S}[kind], t, rng.uniform(0, W - 1), rng.uniform(0, H - 1),
                                          button=rng.randint(1, 3), hold_ms=rng.uniform(0, 50), scroll_y=rng.randint(1, 2)))
        safe = pipeline.filter(plan, start / 1e6)
        while time.monotonic_ns() < start + 40_000_000:  # the plan arrives 40 ms into its tick
            time.sleep(0.002)
        sched.submit(safe, start)
    assert sched.wait_idle(5.0)
    sched.stop()
    chk.executor.close()
    times = sorted(t for t, _ in chk.performed)  # ms, when each perform began
    worst = max(sum(1 for u in times if t - 1000 < u <= t) for t in times)
    assert len(times) > 20, sched.counters  # enough went out for the check to mean something
    assert worst <= cfg.max_actions_per_s, (worst, sched.counters)
    assert [v for v in chk.violations if not v[0].startswith("click")] == []
    assert not xs.anything_held()
    print("storm on X:", worst, "in the worst second;", dict(sched.counters))
