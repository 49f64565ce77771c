"""Safety layers (pure, no display): each layer alone, the config, the pipeline, and property tests
pushing arbitrary model outputs through the pipeline."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ilbot.data.action import PlannedAction
from ilbot.data.keys import VOCAB_SIZE, key_id
from ilbot.data.schema import EventType, KeyAction
from ilbot.errors import ConfigError
from ilbot.safety import SafetyConfig, SafetyPipeline
from ilbot.safety.bounds import Bounds, allowed_area
from ilbot.safety.finite import FiniteCheck
from ilbot.safety.key_pairing import KeyPairing
from ilbot.safety.timing import Cooldowns, RateLimit, TimeFloor
from ilbot.safety.watchdog import StaleStateWatchdog

C, K, S, M = EventType.CLICK, EventType.KEY, EventType.SCROLL, EventType.MOVE
A_ = key_id("a")


def move(t, x=10.0, y=10.0, **kw):
    return PlannedAction(M, t, x, y, **kw)


def click(t, x=10.0, y=10.0, button=1, hold_ms=100.0, **kw):
    return PlannedAction(C, t, x, y, button=button, hold_ms=hold_ms, **kw)


def key(t, k=A_, action=KeyAction.PRESS, **kw):
    return PlannedAction(K, t, 5.0, 5.0, key_action=action, key_id=k, **kw)


def scroll(t, x=10.0, y=10.0, up=True):
    return PlannedAction(S, t, x, y, scroll_y=1 if up else 2)


# -- config ----------------------------------------------------------------------------------------
def test_config_defaults_and_dict():
    cfg = SafetyConfig()
    assert cfg.min_dt_ms == 8.0 and cfg.cooldown_ms["CLICK"] == 60.0 and cfg.max_hold_ms == 2000.0
    cfg = SafetyConfig.from_dict({"min_dt_ms": 5, "cooldown_ms": {"CLICK": 100}, "region": [10, 10, 50, 40]})
    assert cfg.min_dt_ms == 5 and cfg.cooldown_ms == {"CLICK": 100.0, "KEY": 30.0, "SCROLL": 30.0, "MOVE": 0.0}
    assert cfg.region == (10.0, 10.0, 50.0, 40.0)


@pytest.mark.parametrize("bad, word", [
    ({"min_dt": 5}, "unknown key"), ({"min_dt_ms": -1}, "min_dt_ms"), ({"min_dt_ms": float("nan")}, "min_dt_ms"),
    ({"max_keys_held": 0}, "max_keys_held"), ({"cooldown_ms": {"JUMP": 1}}, "JUMP"),
    ({"cooldown_ms": {"CLICK": "x"}}, "cooldown_ms.CLICK"), ({"max_per_s": [1]}, "max_per_s"),
    ({"region": [0, 0, -1, 5]}, "region"), ({"stale_ticks": True}, "stale_ticks"), ({"tick_ms": 0}, "tick_ms: the tick must be longer"),
])
def test_config_errors_name_the_key(bad, word):
    with pytest.raises(ConfigError, match=word):
        SafetyConfig.from_dict(bad, where="agent.toml [safety]")


def test_blocked_keys(tmp_path):
    cfg = SafetyConfig()
    assert cfg.blocked_key_ids == {key_id("caps_lock"), key_id("num_lock"), key_id("scroll_lock")}  # super: an OS chord
    assert SafetyConfig(blocked_keys=["F12", "q"]).blocked_keys == "F12, q"
    assert SafetyConfig(blocked_keys="").blocked_key_ids == frozenset()
    with pytest.raises(ConfigError, match="'hyper' is not a key name"):
        SafetyConfig(blocked_keys="a, hyper")
    with pytest.raises(ConfigError, match="blocked_keys"):
        SafetyConfig(blocked_keys=3)
    p = SafetyPipeline(cfg, (100, 100))
    assert p.filter([key(0, k=key_id("caps_lock")), key(50, k=key_id("num_lock"), action=KeyAction.RELEASE)], 0.0) == []
    assert p.counters["blocked_key"] == 2


def release(t, name):
    return key(t, k=key_id(name), action=KeyAction.RELEASE)


def presses(*names, t0=0.0, gap=40.0):
    return [key(t0 + i * gap, k=key_id(n)) for i, n in enumerate(names)]


CHORDS = [  # (keys pressed in order, the chord they would make); ctrl+alt is blocked as a pair,
    # so ctrl+alt+delete never gets past alt (and delete then passes: ctrl+delete is no OS chord)
    (("ctrl", "alt", "delete"), "ctrl+alt"), (("alt_r", "ctrl_r", "backspace"), "ctrl+alt"),
    (("ctrl", "alt", "f1"), "ctrl+alt"), (("alt", "tab"), "alt+tab"), (("tab", "alt"), "alt+tab"),
    (("alt", "f4"), "alt+f4"), (("shift", "alt", "esc"), "alt+esc"), (("ctrl", "shift", "esc"), "ctrl+esc"),
    (("cmd",), "super"),
]


@pytest.mark.parametrize("names, chord", CHORDS)
def test_os_chords_blocked_by_default(names, chord):
    p = SafetyPipeline(SafetyConfig(), (100, 100))
    out = p.filter(presses(*names), 0.0)
    assert len(out) == len(names) - 1 and p.counters["os_chord"] == 1  # the press completing it is dropped
    iv = [i for i in p.interventions if i.reason == "os_chord"]
    dropped = names[1] if chord == "ctrl+alt" else names[-1]
    assert iv[0].action.key_id == key_id(dropped) and iv[0].action.meta["chord"] == chord
    assert p.os_chords.chord_of(key_id(dropped), p.held_keys) == chord
    # released in between: no chord, all pass
    q = SafetyPipeline(SafetyConfig(), (100, 100))
    plan = [a for i, n in enumerate(names[:-1]) for a in (key(i * 80, k=key_id(n)), release(i * 80 + 40, n))]
    plan.append(key(len(names) * 80, k=key_id(names[-1])))
    if chord != "super":
        assert len(q.filter(plan, 0.0)) == len(plan) and q.counters["os_chord"] == 0


def test_os_chords_release_always_passes_and_other_chords_do():
    p = SafetyPipeline(SafetyConfig(), (100, 100))
    out = p.filter(presses("ctrl", "c") + [release(100, "c"), release(140, "ctrl")] + presses("alt", "1", t0=200)
                   + [release(260, "alt")] + presses("shift", "tab", t0=300), 0.0)
    assert len(out) == 9 and p.counters["os_chord"] == 0  # ctrl+c, alt+1, shift+tab are a game's keys


@pytest.mark.parametrize("allow, passes", [
    (True, {"ctrl+alt", "alt+tab", "alt+f4", "alt+esc", "ctrl+esc", "super"}), ("all", None), (False, set()),
    (["alt+tab", "super"], {"alt+tab", "super"}), ("ctrl+alt, alt+f4", {"ctrl+alt", "alt+f4"}), ("", set()),
])
def test_os_chords_allowed_by_config(allow, passes):
    cfg = SafetyConfig(allow_os_chords=allow)
    passes = passes if passes is not None else {"ctrl+alt", "alt+tab", "alt+f4", "alt+esc", "ctrl+esc", "super"}
    assert cfg.allowed_os_chords == passes and isinstance(cfg.allow_os_chords, str)
    for names, chord in CHORDS:
        p = SafetyPipeline(cfg, (100, 100))
        n = len(p.filter(presses(*names), 0.0))
        assert n == (len(names) if chord in passes else len(names) - 1), (names, chord)


def test_os_chords_from_toml_and_errors(tmp_path):
    f = tmp_path / "safety.toml"
    f.write_text("[safety]\nallow_os_chords = true\n")
    assert SafetyConfig.from_toml(f).allowed_os_chords == {"ctrl+alt", "alt+tab", "alt+f4", "alt+esc", "ctrl+esc", "super"}
    f.write_text('[safety]\nallow_os_chords = ["alt+tab"]\n')
    assert SafetyConfig.from_toml(f).allowed_os_chords == {"alt+tab"}
    f.write_text('[safety]\nallow_os_chords = ["alt+space"]\n')
    with pytest.raises(ConfigError, match=r"safety.toml \[safety\]: safety.allow_os_chords: 'alt\+space' is not a chord"):
        SafetyConfig.from_toml(f)
    with pytest.raises(ConfigError, match="allow_os_chords"):
        SafetyConfig(allow_os_chords=3)


def test_rate_limit_keeps_room_for_the_releases_of_held_keys():
    held = {key_id("a"), key_id("b")}
    r = RateLimit(5, {}, held_keys=lambda: held)
    for t in (0, 100):
        r.commit(move(t), float(t))
    assert r.filter(move(200), 200.0) is not None  # 2 + 1 + 2 held = 5
    assert r.filter(key(200, k=key_id("c")), 200.0) is None  # a press: its own release too → 6
    r.commit(key(200, k=key_id("a"), action=KeyAction.RELEASE), 200.0)  # releases count
    assert r.filter(move(300), 300.0) is None


def test_config_from_toml(tmp_path):
    p = tmp_path / "agent.toml"
    p.write_text("[safety]\nmin_dt_ms = 12\nmax_keys_held = 2\n[safety.max_per_s]\nCLICK = 3\n")
    cfg = SafetyConfig.from_toml(p)
    assert cfg.min_dt_ms == 12 and cfg.max_keys_held == 2 and cfg.max_per_s["CLICK"] == 3
    assert SafetyConfig.from_toml(p, section="other") == SafetyConfig()
    p.write_text("[safety]\nbogus = 1\n")
    with pytest.raises(ConfigError, match=r"agent.toml \[safety\]: unknown key"):
        SafetyConfig.from_toml(p)
    p.write_text("[safety\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        SafetyConfig.from_toml(p)
    p.write_text("safety = 3\n")
    with pytest.raises(ConfigError, match="must be a table"):
        SafetyConfig.from_toml(p)
    with pytest.raises(ConfigError, match="cannot read"):
        SafetyConfig.from_toml(tmp_path / "missing.toml")


# -- layers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, reason", [
    (move(math.nan), "non_finite"), (move(0, x=math.inf), "non_finite"), (click(0, hold_ms=math.nan), "non_finite"),
    (move(0, sigma_x=-math.inf), "non_finite"), (move(0).with_(event_probs=(0.1, math.nan)), "non_finite"),
    (move(0).with_(time_q=None), "non_finite"), (move(0).with_(x=None), "non_finite"),
    (move(0).with_(type=7), "invalid_field"), (click(0, button=0), "invalid_field"), (click(0, button=4), "invalid_field"),
    (key(0, k=0), "invalid_field"), (key(0, k=VOCAB_SIZE), "invalid_field"), (key(0, action=0), "invalid_field"),
    (key(0, k=1.5), "invalid_field"), (scroll(0).with_(scroll_y=3), "invalid_field"),
    (move(-0.5), "negative_time"), (move(10_001), "too_far_ahead"),
])
def test_finite_check_drops(a, reason):
    layer = FiniteCheck(max_plan_ms=10_000)
    assert layer.filter(a, 0.0) is None
    assert layer.counters == {reason: 1} and layer.interventions[0].dropped


def test_finite_check_passes_and_types():
    layer = FiniteCheck(10_000)
    out = layer.filter(move(5).with_(type=3), 5.0)
    assert out.type is EventType.MOVE and not layer.counters
    for a in (click(0), key(0), key(0, action=KeyAction.RELEASE), scroll(0, up=False), move(10_000)):
        assert layer.filter(a, 0.0) == a


def test_bounds_clamps_moves_and_keys_drops_clicks_and_scrolls():
    b = Bounds((100, 50), max_click_hold_ms=500)
    assert b.area == (0, 0, 99, 49)
    assert b.filter(move(0, x=150, y=-3), 0).x == 99 and b.filter(move(0, x=150, y=-3), 0).y == 0
    assert b.filter(key(0).with_(x=1e300), 0).x == 99
    assert b.filter(click(0, x=100, y=10), 0) is None
    assert b.filter(scroll(0, x=-1), 0) is None
    assert b.filter(click(0, x=99.4, y=49.4), 0).x == 99  # rounds to the pixel it will perform
    assert b.filter(click(0, x=99.6), 0) is None
    assert b.filter(click(0, hold_ms=2000), 0).hold_ms == 500 and b.filter(click(0, hold_ms=-3), 0).hold_ms == 0
    assert b.counters == {"clamped": 3, "out_of_bounds": 3, "hold_clamped": 2}


def test_bounds_region():
    assert allowed_area((100, 100), (10.5, 20, 30, 40)) == (11, 20, 39, 59)
    b = Bounds((100, 100), region=(10, 20, 30, 40))
    assert b.filter(click(0, x=5, y=30), 0) is None and b.filter(click(0, x=15, y=30), 0) is not None
    with pytest.raises(ConfigError, match="no whole pixel"):
        Bounds((100, 100), region=(200, 200, 10, 10))
    with pytest.raises(ConfigError, match="at least 1x1"):
        Bounds((0, 100))


def test_time_floor_drops_and_delays_releases():
    f = TimeFloor(8.0)
    assert f.filter(move(0), 100.0) is not None
    f.commit(move(0), 100.0)
    assert f.filter(move(5), 105.0) is None
    delayed = f.filter(key(5, action=KeyAction.RELEASE), 105.0)
    assert delayed.t_ms == pytest.approx(8.0)
    assert f.filter(move(-50), 50.0) is None  # before the last performed action
    assert f.filter(move(8), 108.0) is not None
    assert f.counters == {"time_floor": 2, "time_floor_delayed": 1}
    f.reset()
    assert f.filter(move(0), 0.0) is not None


def test_cooldowns_per_type_and_not_for_releases():
    c = Cooldowns({"CLICK": 60, "KEY": 30})
    c.commit(click(0), 0.0)
    assert c.filter(click(50), 50.0) is None and c.filter(click(60), 60.0) is not None
    assert c.filter(move(1), 1.0) is not None  # other types are independent
    c.commit(key(0), 0.0)
    assert c.filter(key(10, k=2), 10.0) is None
    assert c.filter(key(10, action=KeyAction.RELEASE), 10.0) is not None
    c.commit(key(10, action=KeyAction.RELEASE), 10.0)  # a release does not re-arm the cooldown
    assert c.filter(key(31, k=2), 31.0) is not None
    c.reset()
    assert c.filter(click(1), 1.0) is not None


def test_rate_limit_sliding_window():
    r = RateLimit(5, {"CLICK": 2})
    for t in (0, 100, 200, 300):
        r.commit(move(t), float(t))
    r.commit(click(400), 400.0)
    assert r.filter(move(500), 500.0) is None  # 5 in (−500, 500]
    assert r.filter(key(500, action=KeyAction.RELEASE), 500.0) is not None
    assert r.filter(move(1000), 1000.0) is not None  # t=0 has left the window
    r.commit(click(1000), 1000.0)
    assert r.filter(click(1300), 1300.0) is None  # 2 clicks in (300, 1300]
    assert r.filter(click(1401), 1401.0) is not None
    r.reset()
    assert r.filter(click(0), 0.0) is not None


def test_key_pairing_rules_and_forced_release():
    kp = KeyPairing(max_hold_ms=2000, max_keys_held=2)
    assert kp.filter(key(0, action=KeyAction.RELEASE), 0.0) is None  # not held
    kp.commit(key(0), 0.0)
    assert kp.filter(key(5), 5.0) is None  # already held
    kp.commit(key(10, k=2), 10.0)
    assert kp.filter(key(20, k=3), 20.0) is None  # too many held
    assert kp.filter(key(20, action=KeyAction.RELEASE), 20.0) is not None
    kp.commit(click(0, hold_ms=100), 0.0)
    assert kp.filter(click(50), 50.0) is None and kp.filter(click(50, button=2), 50.0) is not None
    assert kp.filter(click(100), 100.0) is not None
    assert kp.buttons_held_at(50.0) == [1] and kp.buttons_held_at(100.0) == []
    assert kp.due_releases(1999.0) == [] and kp.due_releases(2010.0) == [(A_, 2000.0), (2, 2010.0)]
    assert kp.counters == {"key_not_held": 1, "key_held": 1, "too_many_keys": 1, "button_held": 1}
    assert kp.release_all() == [A_, 2] and not kp.held_keys and not kp.held_buttons


def test_watchdog():
    w = StaleStateWatchdog(stale_ticks=3)
    assert not w.observe(False) and not w.observe(False)
    assert w.filter(move(0), 0.0) is not None
    assert w.observe(False) and w.filter(move(0), 0.0) is None
    assert not w.observe(True) and w.filter(move(0), 0.0) is not None
    w.observe(False), w.observe(False), w.observe(False)
    w.reset()
    assert not w.stale


# -- pipeline --------------------------------------------------------------------------------------
def test_pipeline_order_sorting_and_counters():
    p = SafetyPipeline(SafetyConfig(), (200, 100))
    seen = []
    p.listeners.append(seen.append)
    plan = [move(50, x=300), click(math.nan), move(10), click(20), click(40), key(30), scroll(60, x=-5)]
    out = p.filter(plan, 1000.0)
    assert [a.t_ms for a in out] == [10, 20, 30, 50]
    assert out[-1].x == 199  # clamped
    assert p.counters["non_finite"] == 1 and p.counters["cooldown"] == 1 and p.counters["out_of_bounds"] == 1
    assert p.counters["clamped"] == 1 and p.counters["passed"] == 4 and p.counters["planned"] == 7
    assert len(seen) == len(p.interventions) == 4
    assert p.held_keys == [A_] and p.cursor == (199.0, 10.0)


def test_dropped_action_is_not_committed():
    p = SafetyPipeline(SafetyConfig(), (200, 100))
    p.filter([key(0)], 0.0)
    # the press is dropped by key pairing (already held): it must not arm the KEY cooldown or the floor
    out = p.filter([key(100), key(110, k=2)], 0.0)
    assert [a.key_id for a in out] == [2] and p.counters["key_held"] == 1


def test_forced_release_within_and_across_ticks():
    cfg = SafetyConfig(max_hold_ms=1000, tick_ms=600)
    p = SafetyPipeline(cfg, (200, 100))
    assert p.filter([key(100)], 0.0) == [key(100).with_(x=5.0, y=5.0)]
    assert p.held_keys == [A_]  # due at 1100: not in this tick [0, 600)
    out = p.filter([], 600.0)  # ... but in the next one [600, 1200), even with nothing planned
    assert [(a.key_action, a.t_ms, a.source) for a in out] == [(KeyAction.RELEASE, 500.0, "safety")]
    assert p.held_keys == []


def test_forced_release_inserted_before_later_action():
    cfg = SafetyConfig(max_hold_ms=300, tick_ms=600)
    p = SafetyPipeline(cfg, (200, 100))
    out = p.filter([key(0), move(300), move(400)], 0.0)
    kinds = [(a.type, a.key_action, a.t_ms, a.source) for a in out]
    assert kinds == [(K, 1, 0, "agent"), (K, 2, 300, "safety"), (M, 0, 400, "agent")]  # move@300 hit the floor
    assert p.counters["max_hold"] == 1 and p.counters["time_floor"] == 1
    assert out[1].meta["reason"] == "max_hold"


def test_forced_release_due_in_previous_tick_gap_is_at_tick_start():
    p = SafetyPipeline(SafetyConfig(max_hold_ms=100, tick_ms=50), (200, 100))
    p.filter([key(10)], 0.0)
    out = p.filter([], 1000.0)  # ticks were skipped: the release is due in the past → at t_ms 0
    assert [(a.key_action, a.t_ms) for a in out] == [(KeyAction.RELEASE, 0.0)]


def test_stale_state_releases_then_drops():
    p = SafetyPipeline(SafetyConfig(stale_ticks=2), (200, 100))
    p.filter([key(0)], 0.0)
    assert not p.observe_state(False) and p.observe_state(False) and p.paused
    out = p.filter([move(10), key(20, k=3)], 600.0)
    assert [(a.key_action, a.key_id, a.t_ms) for a in out] == [(KeyAction.RELEASE, A_, 0.0)]
    assert p.counters["stale_state"] == 2 and p.counters["stale_release"] == 1
    assert p.filter([move(10)], 1200.0) == []
    p.observe_state(True)
    assert len(p.filter([move(10)], 1800.0)) == 1


def test_release_all_returns_releases_and_reset():
    p = SafetyPipeline(SafetyConfig(), (200, 100))
    p.filter([key(0), key(40, k=2), click(50)], 0.0)
    rel = p.release_all()
    assert [(a.key_id, a.key_action, a.source) for a in rel] == [(A_, 2, "safety"), (2, 2, "safety")]
    assert p.held_keys == [] and p.release_all() == []
    assert p.counters["release_all"] == 2
    p.reset()
    assert p.time_floor.last_ms is None


# -- property tests --------------------------------------------------------------------------------
W, H = 320, 200
SMALL_KEYS = [key_id(k) for k in ("a", "s", "d", "1", "space", "shift", "left", "f5")]
finite_or_not = st.one_of(st.floats(-1e6, 1e6), st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300]))


@st.composite
def planned_actions(draw, keys=SMALL_KEYS):
    kind = draw(st.sampled_from([C, K, S, M, 9]))
    t = draw(st.one_of(st.floats(-50, 700), finite_or_not))
    x = draw(st.one_of(st.floats(-100, W + 100), finite_or_not))
    y = draw(st.one_of(st.floats(-100, H + 100), finite_or_not))
    return PlannedAction(
        kind, t, x, y,
        button=draw(st.integers(-1, 4)), key_action=draw(st.integers(0, 3)),
        key_id=draw(st.one_of(st.sampled_from(keys), st.integers(-2, VOCAB_SIZE + 2))),
        scroll_y=draw(st.integers(0, 3)), hold_ms=draw(st.one_of(st.floats(-100, 3000), finite_or_not)))


def key_storm(keys=SMALL_KEYS):
    """Dense runs of presses and releases of a few keys."""
    return st.lists(st.builds(lambda t, k, a: key(t, k=k, action=a), st.floats(0, 599), st.sampled_from(keys[:3]),
                              st.sampled_from([KeyAction.PRESS, KeyAction.RELEASE])), max_size=40)


def plans():
    return st.lists(st.one_of(st.lists(planned_actions(), max_size=30), key_storm()), min_size=1, max_size=6)


def check_stream(performed: list[tuple[float, PlannedAction]], cfg: SafetyConfig, area) -> None:
    """Every invariant the safety layers promise, over a performed stream of (absolute ms, action)."""
    x0, y0, x1, y1 = area
    held: dict[int, float] = {}
    button_until: dict[int, float] = {}
    last_t = None
    last_by_type: dict[int, float] = {}
    starts: list[float] = []
    every: list[float] = []  # every performed action, releases included
    starts_by_type: dict[int, list[float]] = {}
    for t, a in performed:
        assert math.isfinite(t) and all(math.isfinite(v) for v in (a.x, a.y, a.hold_ms))
        assert x0 <= a.x <= x1 and y0 <= a.y <= y1 and a.x == round(a.x) and a.y == round(a.y)
        if last_t is not None:
            assert t - last_t >= cfg.min_dt_ms - 1e-6, "time floor"
        last_t = t
        release = a.type == K and a.key_action == KeyAction.RELEASE
        if a.type == K:
            if a.key_action == KeyAction.PRESS:
                assert a.key_id not in held, "press of a held key"
                held[a.key_id] = t
                assert len(held) <= cfg.max_keys_held
            else:
                assert a.key_id in held, "release of a free key"
                assert t - held.pop(a.key_id) <= cfg.max_hold_ms + cfg.max_keys_held * cfg.min_dt_ms + 1e-6
        if a.type == C:
            assert 0 <= a.hold_ms <= cfg.max_click_hold_ms
            assert t >= button_until.get(a.button, -math.inf), "click on a held button"
            button_until[a.button] = t + a.hold_ms
        if not release:
            cd = cfg.cooldown_ms[a.type.name]
            if a.type in last_by_type:
                assert t - last_by_type[a.type] >= cd - 1e-6, "cooldown"
            last_by_type[a.type] = t
            starts.append(t)
            assert sum(1 for s in starts if s > t - 1000) <= cfg.max_actions_per_s, "rate limit"
            mine = starts_by_type.setdefault(a.type, [])
            mine.append(t)
            limit = cfg.max_per_s.get(a.type.name)
            if limit is not None:
                assert sum(1 for s in mine if s > t - 1000) <= limit, "per-type rate limit"
        every.append(t)
        assert sum(1 for s in every if s > t - 1000) <= cfg.max_actions_per_s, "rate limit, releases included"


def run_pipeline(pipeline: SafetyPipeline, ticks: list[list[PlannedAction]]) -> list[tuple[float, PlannedAction]]:
    performed = []
    for i, plan in enumerate(ticks):
        start = 10_000.0 + i * pipeline.config.tick_ms
        for a in pipeline.filter(plan, start):
            performed.append((start + a.t_ms, a))
    return performed


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ticks=plans())
def test_property_pipeline_output_is_always_safe(ticks):
    cfg = SafetyConfig(max_hold_ms=700)
    p = SafetyPipeline(cfg, (W, H))
    performed = run_pipeline(p, ticks)
    check_stream(performed, cfg, p.bounds.area)
    assert [t for t, _ in performed] == sorted(t for t, _ in performed)
    drops = sum(p.counters[r] for r in DROP_REASONS)
    assert p.counters["planned"] + p.counters["max_hold"] == p.counters["passed"] + drops  # every action accounted for
    last = {}
    for _, a in performed:
        if a.type == K:
            last[a.key_id] = a.key_action
    rel = p.release_all()
    assert not p.held_keys and sorted(a.key_id for a in rel) == sorted(k for k, act in last.items() if act == 1)


DROP_REASONS = ("blocked_key", "os_chord", "non_finite", "invalid_field", "negative_time", "too_far_ahead", "out_of_bounds", "time_floor",
                "cooldown", "rate_limit", "key_held", "key_not_held", "too_many_keys", "button_held", "stale_state")


@settings(max_examples=100, deadline=None)
@given(plan=st.lists(planned_actions(), max_size=40), region=st.tuples(st.integers(0, 100), st.integers(0, 80),
                                                                          st.integers(1, 300), st.integers(1, 200)))
def test_property_region(plan, region):
    if region[0] + 1 > W or region[1] + 1 > H:
        return
    cfg = SafetyConfig(region=region)
    p = SafetyPipeline(cfg, (W, H))
    check_stream(run_pipeline(p, [plan]), cfg, p.bounds.area)
    x0, y0, x1, y1 = p.bounds.area
    assert region[0] <= x0 <= x1 <= region[0] + region[2] - 1 and y1 <= region[1] + region[3] - 1


def test_note_released_forgets_a_key_released_outside_the_plan():
    p = SafetyPipeline(SafetyConfig(), (100, 100))
    p.filter([key(0)], 0.0)
    assert p.held_keys == [A_]
    assert p.note_released(A_) and p.held_keys == [] and not p.note_released(A_)
    assert p.filter([key(100, action=KeyAction.RELEASE)], 0.0) == []  # no release planned for it any more
    assert len(p.filter([key(200)], 0.0)) == 1  # and it may be pressed again
