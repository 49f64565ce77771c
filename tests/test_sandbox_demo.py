"""The scripted demonstrator: motion/timing model and policy (ilbot.sandbox), performing through the
agent's executor and a real recorded run (ilbot.demo)."""

import math
import time
import random
import statistics

import numpy as np
import pytest

from ilbot.cli import main as cli_main
from ilbot.data.keys import key_id
from ilbot.data.schema import EventType, KeyAction, ScrollY
from ilbot.sandbox.demonstrator import DemoConfig, DemoPolicy, Step, gesture_actions, step_actions
from ilbot.sandbox.logic import INVENTORY_SLOTS, GameConfig, SandboxGame
from ilbot.sandbox.motion import HumanMotion, MotionConfig, min_jerk


# --- motion ---------------------------------------------------------------------------------

def test_min_jerk_profile():
    assert min_jerk(0) == 0 and min_jerk(1) == 1 and min_jerk(0.5) == pytest.approx(0.5)
    assert min_jerk(-1) == 0 and min_jerk(2) == 1
    xs = [min_jerk(i / 100) for i in range(101)]
    assert all(b >= a for a, b in zip(xs, xs[1:]))  # monotone
    v = np.diff(xs)
    assert v.argmax() in (49, 50)  # bell-shaped speed, peak in the middle


def test_paths_end_on_target_sampled_at_100_to_125_hz():
    m = HumanMotion(rng=random.Random(3))
    overshoots = 0
    for _ in range(200):
        start = (m.rng.uniform(0, 600), m.rng.uniform(0, 600))
        target = (m.rng.uniform(0, 600), m.rng.uniform(0, 600))
        path = m.path(start, target, 44)
        if math.dist(start, target) < 1:
            continue
        assert path[-1][1:] == (round(target[0]), round(target[1]))
        ts = [p[0] for p in path]
        assert all(b > a for a, b in zip(ts, ts[1:]))
        dts = np.diff([0.0] + ts)
        assert dts.min() >= 8.0 - 1e-9  # never faster than 125 Hz (repeats dropped only widen gaps)
        d = math.dist(start, target)
        far = max(math.dist(start, p[1:]) for p in path)
        overshoots += far > d + 2
        assert ts[-1] >= MotionConfig().duration_min_ms
    assert 40 < overshoots < 160  # about half the reaches overshoot
    assert m.path((10, 10), (10.2, 10.1)) == []


def test_fitts_reaction_and_hold_distributions():
    m = HumanMotion(rng=random.Random(5))
    near = statistics.median(m.movement_ms(50, 44) for _ in range(300))
    far = statistics.median(m.movement_ms(500, 44) for _ in range(300))
    assert far > near + 150
    rt = [m.reaction_ms() for _ in range(2000)]
    assert 230 < statistics.median(rt) < 270 and min(rt) >= 140 and max(rt) <= 800
    holds = [m.click_hold_ms() for _ in range(2000)]
    assert 100 < statistics.median(holds) < 120
    keys = [m.key_hold_ms() for _ in range(2000)]
    assert 85 < statistics.median(keys) < 105


# --- policy ---------------------------------------------------------------------------------

def _policy(**kw):
    return DemoPolicy(DemoConfig(seed=kw.pop("seed", 0), **kw))


def test_idle_player_reaches_and_clicks_a_node():
    game = SandboxGame(GameConfig(seed=1))
    pol = _policy(distracted_prob=0.0)
    for trial in range(20):
        state = game.state()
        steps = pol.decide(state, (300.0, 300.0))
        assert steps[-1].kind == "click" and all(s.kind == "move" for s in steps[:-1])
        ts = [s.t_ms for s in steps]
        assert ts == sorted(ts) and ts[0] >= 140  # a reaction time first
        click = steps[-1]
        node = game.node_at(click.x, click.y)
        assert node is not None, "the click lands on a node"
        assert game.click(click.x, click.y)
        game.player.target = None


def test_cursor_on_node_clicks_without_moving():
    game = SandboxGame(GameConfig(seed=2))
    n = game.state()["nodes"][0]
    steps = _policy(distracted_prob=0.0).decide(game.state(), (n["x"] + 2, n["y"] - 2))
    assert [s.kind for s in steps] == ["click"] and (steps[0].x, steps[0].y) == (n["x"] + 2, n["y"] - 2)


def test_full_inventory_presses_the_empty_key_then_clicks():
    game = SandboxGame(GameConfig(seed=3))
    for s in game.inventory:
        s.update(id=1511, quantity=1)
    state = game.state()
    assert state["inventory_full"]
    steps = _policy(distracted_prob=0.0).decide(state, (300.0, 300.0))
    assert steps[0].kind == "key" and steps[0].key == "space" and 30 <= steps[0].hold_ms <= 400
    assert steps[-1].kind == "click" and steps[-1].t_ms > steps[0].t_ms + steps[0].hold_ms


def test_distracted_waits_idle_ticks():
    game = SandboxGame(GameConfig(seed=4))
    pol = _policy(distracted_prob=1.0)
    state = game.state()
    assert pol.decide(state, (300.0, 300.0)) == []
    assert pol.wait_until_tick > state["tick"]
    pol.cfg.distracted_prob = 0.0
    assert pol.decide(state, (300.0, 300.0)) == []  # still waiting at this tick
    state["tick"] = pol.wait_until_tick
    assert pol.decide(state, (300.0, 300.0))[-1].kind == "click"


def test_zoomed_in_with_no_visible_node_scrolls_out():
    game = SandboxGame(GameConfig(seed=5, n_nodes=1))
    game.zoom = 2.0
    node = game.nodes()[0]
    node.wx, node.wy = 20.0, 20.0  # far from the centre: out of view at zoom 2
    state = game.state()
    assert not state["nodes"][0]["visible"]
    steps = _policy(distracted_prob=0.0).decide(state, (300.0, 300.0))
    assert steps and all(s.kind == "scroll" and s.notches == -1 for s in steps)
    game.slots[0].node = None
    assert _policy().decide(game.state(), (300.0, 300.0)) == []  # nothing to do


def test_gathering_fidgets_scrolls_and_anticipates():
    game = SandboxGame(GameConfig(seed=6))
    node = game.nodes()[0]
    x, y = game.to_window(node.wx, node.wy)
    game.click(x, y)
    state = game.state()
    pol = _policy(scroll_prob=0.5, drift_prob=0.5, anticipate_prob=0.0)
    kinds = set()
    for _ in range(40):
        for s in pol.decide(state, (x, y)):
            kinds.add(s.kind)
            assert s.kind in ("move", "scroll")
            if s.kind == "move":
                assert math.dist((s.x, s.y), (x, y)) <= 45
    assert kinds == {"move", "scroll"}
    state["zoom"] = 1.9  # too far in: scrolls zoom out
    pol = _policy(scroll_prob=1.0)
    assert all(s.notches == -1 for s in pol.decide(state, (x, y)))
    state["zoom"] = 0.6
    assert all(s.notches == 1 for s in pol.decide(state, (x, y)))
    # the node is about to deplete: hover toward the next one
    node.remaining = 1
    game.player.ticks_left = 1
    state = game.state()
    steps = _policy(anticipate_prob=1.0).decide(state, (x, y))
    others = [n for n in state["nodes"] if n["slot"] != 0]
    end = (steps[-1].x, steps[-1].y)
    assert min(math.dist(end, (n["x"], n["y"])) for n in others) < math.dist(end, (x, y))


def test_policy_gathers_well_in_a_simulated_game():
    """Driving the pure game with the policy's clicks/keys: it fills and empties the inventory."""
    game = SandboxGame(GameConfig(seed=7))
    pol = _policy(seed=7)
    mouse = (300.0, 300.0)
    for _ in range(200):
        for s in pol.decide(game.state(), mouse):
            mouse = (s.x, s.y)
            if s.kind == "click":
                game.click(s.x, s.y)
            elif s.kind == "key":
                game.key(s.key)
            elif s.kind == "scroll":
                game.scroll(s.notches)
        game.tick()
    assert game.score >= 40 and game.banked >= INVENTORY_SLOTS and game.lost == 0


def test_steps_become_planned_actions():
    acts = step_actions(Step(10.0, "key", 5, 6, hold_ms=90.0, key="space"))
    assert [(a.type, a.key_action, a.key_id, a.t_ms) for a in acts] == [
        (EventType.KEY, KeyAction.PRESS, key_id("space"), 10.0), (EventType.KEY, KeyAction.RELEASE, key_id("space"), 100.0)]
    acts = step_actions(Step(0.0, "scroll", 1.4, 2.6, notches=-2))
    assert [(a.type, a.scroll_y, a.x, a.y, a.t_ms) for a in acts] == [(EventType.SCROLL, ScrollY.DOWN, 1.0, 3.0, 0.0),
                                                                      (EventType.SCROLL, ScrollY.DOWN, 1.0, 3.0, 15.0)]
    (click,) = step_actions(Step(5.0, "click", 10, 20, hold_ms=111.0))
    assert click.type == EventType.CLICK and click.button == 1 and click.hold_ms == 111.0
    (move,) = step_actions(Step(5.0, "move", 10, 20))
    assert move.type == EventType.MOVE and move.source == "demonstrator"
    with pytest.raises(ValueError):
        step_actions(Step(0.0, "jump"))
    # a gesture: all its actions in time order (the key's release after the moves it overlaps)
    acts = gesture_actions([Step(0.0, "key", 1, 1, hold_ms=50.0, key="space"), Step(20.0, "move", 5, 5),
                            Step(80.0, "click", 5, 5, hold_ms=100.0)])
    assert [(a.type, a.t_ms) for a in acts] == [(EventType.KEY, 0.0), (EventType.MOVE, 20.0), (EventType.KEY, 50.0),
                                                (EventType.CLICK, 80.0)]


# --- commands -------------------------------------------------------------------------------

def test_commands_refuse_without_display(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("DISPLAY", raising=False)
    assert cli_main(["sandbox", "demo", "--out", str(tmp_path), "--ticks", "3"]) == 2
    assert "DISPLAY is not set" in capsys.readouterr().err
    assert cli_main(["sandbox", "--ticks", "1"]) == 2


def test_demo_refuses_bad_counts(own_display, tmp_path, capsys):
    assert cli_main(["sandbox", "demo", "--out", str(tmp_path), "--ticks", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err


# --- a real recorded run --------------------------------------------------------------------

def test_short_demonstrator_run_records_a_valid_session(own_display, tmp_path, capsys):
    from ilbot.data import open_session
    from ilbot.data.featurespec import load_spec

    out = tmp_path / "sessions"
    assert cli_main(["sandbox", "demo", "--sessions", "1", "--ticks", "8", "--out", str(out), "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "[1/1]" in printed and "items" in printed
    (path,) = sorted(out.glob("*.ilbot.sqlite"))
    with open_session(path) as s:
        meta = s.meta
        events = list(s.events())
        ticks = list(s.ticks())
    spec = load_spec("sandbox")
    assert meta["feature_spec"] == "sandbox" and meta["feature_spec_hash"] == spec.hash
    assert meta["window"]["width"] == 800 and meta["window"]["height"] == 600 and meta["tick_ms"] == 600.0
    assert 5 <= len(ticks) <= 9  # ticks 0..8, the first may pass before the recorder starts
    assert [t.tick for t in ticks] == sorted(t.tick for t in ticks)
    for t in ticks:
        assert t.features.shape == (128,) and np.isfinite(t.features).all()
        assert np.allclose(t.features, spec.features(t.raw_json))
    kinds = {e.type for e in events}
    assert EventType.MOVE in kinds and EventType.CLICK in kinds  # it reached for and clicked a node
    assert all(0 <= e.x < 800 and 0 <= e.y < 600 for e in events)
    clicks = [e for e in events if e.type == EventType.CLICK]
    assert all(40 <= e.hold_ms <= 450 for e in clicks)
    ts = [e.t_ns for e in events]
    assert ts == sorted(ts)
    # refuses to overwrite the session it just wrote
    from ilbot.demo.record import record_session
    from ilbot.errors import UserError
    with pytest.raises(UserError, match="already exists"):
        record_session(path, ticks=2)


def test_f12_kill_switch_stops_the_demo_early(own_display, tmp_path, capsys):
    import threading
    import time

    from pynput import keyboard

    from ilbot.demo.record import record_sessions

    def press_f12():
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("*.ilbot.sqlite")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the recorder has started once the store exists
        time.sleep(2.0)
        k = keyboard.Controller()
        k.press(keyboard.Key.f12)
        k.release(keyboard.Key.f12)

    t = threading.Thread(target=press_f12)
    t.start()
    results = record_sessions(tmp_path, sessions=2, ticks=40, seed=5)
    t.join()
    assert len(results) == 1 and results[0]["stopped_early"] and results[0]["ticks"] < 30
    assert "stopped early" in capsys.readouterr().out
    from ilbot.data import open_session
    with open_session(results[0]["path"]) as s:
        assert s.n_ticks == results[0]["ticks"] and s.meta["recorder"]["counters"]["unreleased"] == 0


def test_performer_real_input_through_the_executor_and_release_all(own_display, qtbot):
    """The performer's input goes through the agent's PynputExecutor (one input path): a gesture
    moves, scrolls and clicks in the real game window, a click's gesture ends after its release,
    and `release_all` lets go of what the X server itself has down."""
    from ilbot.agent.executors.pynput_exec import PynputExecutor
    from ilbot.data.action import PlannedAction
    from ilbot.demo.perform import RELEASE_MARGIN_MS, GesturePerformer
    from ilbot.safety.xstate import XInputState
    from ilbot.sandbox.game import SandboxWindow

    win = SandboxWindow()
    qtbot.addWidget(win)
    win.move(0, 0)
    win.show()
    qtbot.waitExposed(win)
    g = win.mapToGlobal(win.rect().topLeft())
    perf = GesturePerformer((g.x(), g.y()))
    assert isinstance(perf.executor, PynputExecutor)
    seen = []
    perf.executor.add_listener(seen.append)
    x = XInputState()
    try:
        t0 = time.monotonic_ns()
        n = perf.perform_gesture([Step(0.0, "move", 300, 310), Step(10.0, "scroll", 300, 310, notches=1)], t0)
        assert n == 2 and time.monotonic_ns() - t0 >= (10.0 + RELEASE_MARGIN_MS) * 1e6  # the last action's margin
        qtbot.waitUntil(lambda: win.game.zoom > 1.0, timeout=3000)
        assert perf.position() == (300.0, 310.0) and x.pointer() == (g.x() + 300, g.y() + 310)
        assert [r.action.type for r in seen] == [EventType.MOVE, EventType.SCROLL] and perf.performed == 2
        # a click: the gesture returns once the executor's release thread has let go, after its hold
        node = next(n for n in win.game.state()["nodes"] if n["active"] and n["visible"])
        t0 = time.monotonic_ns()
        perf.perform_gesture([Step(0.0, "click", node["x"], node["y"], hold_ms=120.0)], t0)
        assert time.monotonic_ns() - t0 >= 120e6
        assert not perf.executor.held_buttons and not x.buttons_down()
        qtbot.waitUntil(lambda: win.game.player.target is not None, timeout=3000)
        # held input is on the X server until release_all
        perf.perform(PlannedAction(EventType.KEY, 0.0, 300, 310, key_action=int(KeyAction.PRESS), key_id=key_id("e")))
        perf.perform(PlannedAction(EventType.CLICK, 0.0, 300, 310, button=1, hold_ms=5000.0))
        assert x.keycode(key_id("e")) in x.keys_down() and x.buttons_down() == {1}
        assert sorted(perf.release_all()) == ["e", "left"]
        assert x.keycode(key_id("e")) not in x.keys_down() and not x.buttons_down()
        assert not perf.executor.held_keys and not perf.executor.held_buttons
    finally:
        perf.close()
        x.close()


def test_a_stopped_gesture_performs_nothing_more(own_display):
    import threading

    from ilbot.demo.perform import GesturePerformer

    perf = GesturePerformer((0, 0))
    stop = threading.Event()
    stop.set()
    try:
        assert perf.perform_gesture([Step(0.0, "move", 10, 10), Step(5.0, "move", 20, 20)], time.monotonic_ns(), stop) == 2
        assert perf.performed == 0
    finally:
        perf.close()


def test_a_session_over_the_misclick_rate_is_set_aside(own_display, tmp_path, capsys):
    """A negative rate sets aside even a clean session: the store is renamed *.rejected, so
    `ilbot build` on the folder never reads it, and the result says so."""
    from ilbot.demo.record import record_sessions

    results = record_sessions(tmp_path, sessions=1, ticks=3, seed=2, max_misclick_rate=-1.0)
    assert results[0]["rejected"] and not list(tmp_path.glob("*.ilbot.sqlite"))
    assert (tmp_path / "sandbox-demo-seed2.rejected").exists()
    assert "set aside" in capsys.readouterr().out


def test_the_sandbox_imports_nothing_from_the_agent_or_safety():
    """Imports only downward: the whole sandbox package (game, policy, publishing, its command)
    loads no ilbot.agent / ilbot.safety / ilbot.demo module; ilbot.demo is what may use them."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, pkgutil, importlib, ilbot.sandbox as s\n"
            "for m in pkgutil.iter_modules(s.__path__): importlib.import_module('ilbot.sandbox.' + m.name)\n"
            "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('ilbot.')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1], env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    loaded = set(eval(out.stdout))
    assert "sandbox" in loaded and not loaded & {"agent", "safety", "demo", "gui", "bench"}
