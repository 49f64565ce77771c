"""The scripted demonstrator: plays the sandbox well, like a person, through real input.

Three parts, one job each:

- `DemoPolicy` (pure, seeded): given the newest game-state document and the cursor position,
  returns a *gesture*: timed steps (`Step`: move / click / key / scroll, `t_ms` after the
  decision). It gathers from the node under or nearest the cursor (sometimes the second
  nearest), empties the inventory with space when it is full, and while gathering sometimes
  drifts the mouse, hovers toward the next node when the current one is about to deplete, or
  scrolls 1–2 notches (keeping the zoom near 1). With probability `distracted_prob` a due
  decision waits 1–3 ticks instead (idle ticks). Timing and paths come from `HumanMotion`.
- `GesturePerformer`: turns steps into `PlannedAction`s and performs them at their due times
  with pynput controllers (real input on the current X display, window-relative → screen by
  the window's origin; why not `PynputExecutor`: see the class).
- `Demonstrator`: the loop. It reads game state only through a capture adapter (json-dir, the
  path a real game's plugin uses) on a polling thread, decides on each state published *after*
  its previous gesture ended (so it never acts twice on the same stale state), and performs.

`record_session` runs the whole thing: the game as its own process (`ilbot sandbox`), the
demonstrator here, and the real recorder (`ilbot.agent.recorder.Recorder`: pynput listeners for
the input, its own json-dir adapter for the ticks — exactly what a person's recording goes
through) writing an ordinary `*.ilbot.sqlite` store. F12 (the kill switch) stops the
demonstrator and releases everything; the recorder's stop hotkey (F10) ends the session early.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..data.action import PlannedAction
from ..data.keys import key_id
from ..data.schema import Button, EventType, KeyAction, ScrollY
from ..errors import UserError
from .motion import HumanMotion, MotionConfig


RELEASE_MARGIN_MS = 20.0  # after a gesture's last input, before the next decision or the end


@dataclass(frozen=True)
class Step:
    """One timed input of a gesture: `t_ms` after the decision, window-relative pixels."""

    t_ms: float
    kind: str  # "move" | "click" | "key" | "scroll"
    x: float = 0.0
    y: float = 0.0
    hold_ms: float = 0.0  # click and key
    key: str = ""  # key vocabulary name
    notches: int = 0  # scroll: + up (zoom in), - down


@dataclass
class DemoConfig:
    seed: int = 0
    motion: MotionConfig = field(default_factory=MotionConfig)
    empty_key: str = "space"
    distracted_prob: float = 0.08  # a due decision waits 1-3 ticks instead
    second_choice_prob: float = 0.2  # pick the second-nearest node instead of the nearest
    drift_prob: float = 0.15  # per gathering tick: a small idle mouse drift
    anticipate_prob: float = 0.6  # before a node depletes: hover toward the next one
    scroll_prob: float = 0.04  # per gathering tick: scroll 1-2 notches
    zoom_low: float = 0.8  # scrolls steer the zoom back inside [low, high]
    zoom_high: float = 1.3
    aim_spread: float = 0.3  # click point spread, 1σ as a fraction of the node radius
    settle_min_ms: float = 20.0  # pause between arriving and pressing
    settle_max_ms: float = 90.0


def _nodes_by_distance(state: dict, mouse: tuple[float, float], exclude_slot: int = -1) -> list[dict]:
    nodes = [n for n in state.get("nodes", []) if n.get("active") and n.get("visible") and n["slot"] != exclude_slot]
    return sorted(nodes, key=lambda n: (math.hypot(n["x"] - mouse[0], n["y"] - mouse[1]), n["slot"]))


class DemoPolicy:
    """Decides the next gesture from a state document (pure apart from its seeded generator)."""

    def __init__(self, config: DemoConfig | None = None):
        self.cfg = config or DemoConfig()
        self.rng = random.Random(self.cfg.seed)
        self.motion = HumanMotion(self.cfg.motion, random.Random(self.cfg.seed + 1_000_003))
        self.wait_until_tick = -1  # distracted: no decision before this tick

    def _distracted(self, tick: int) -> bool:
        if self.rng.random() < self.cfg.distracted_prob:
            self.wait_until_tick = tick + self.rng.randint(1, 3)
            return True
        return False

    def _reach(self, t0: float, start, target, width: float) -> tuple[list[Step], float]:
        steps = [Step(t0 + t, "move", x, y) for t, x, y in self.motion.path(start, target, width)]
        end = steps[-1].t_ms if steps else t0
        return steps, end

    def _aim(self, node: dict) -> tuple[float, float]:
        r = node["radius"]
        s = self.cfg.aim_spread * r
        dx = max(-0.8 * r, min(0.8 * r, self.rng.gauss(0.0, s)))
        dy = max(-0.8 * r, min(0.8 * r, self.rng.gauss(0.0, s)))
        return node["x"] + dx, node["y"] + dy

    def _click_node(self, t0: float, mouse, node: dict) -> list[Step]:
        """Reach the node (unless the cursor is already on it) and click it."""
        if math.hypot(mouse[0] - node["x"], mouse[1] - node["y"]) <= 0.8 * node["radius"]:
            target, steps, end = mouse, [], t0
        else:
            target = self._aim(node)
            steps, end = self._reach(t0, mouse, target, 2 * node["radius"])
        t_click = end + self.rng.uniform(self.cfg.settle_min_ms, self.cfg.settle_max_ms)
        return steps + [Step(t_click, "click", target[0], target[1], hold_ms=self.motion.click_hold_ms())]

    def _choose(self, state: dict, mouse) -> dict | None:
        nodes = _nodes_by_distance(state, mouse)
        if not nodes:
            return None
        if len(nodes) > 1 and self.rng.random() < self.cfg.second_choice_prob:
            under = math.hypot(nodes[0]["x"] - mouse[0], nodes[0]["y"] - mouse[1]) <= nodes[0]["radius"]
            if not under:  # a person keeps clicking the node under the cursor
                return nodes[1]
        return nodes[0]

    def _scroll(self, t0: float, mouse, zoom: float) -> list[Step]:
        if zoom > self.cfg.zoom_high:
            direction = -1
        elif zoom < self.cfg.zoom_low:
            direction = 1
        else:
            direction = self.rng.choice((-1, 1))
        steps, t = [], t0
        for _ in range(self.rng.randint(1, 2)):
            steps.append(Step(t, "scroll", mouse[0], mouse[1], notches=direction))
            t += self.rng.uniform(40.0, 110.0)
        return steps

    def decide(self, state: dict, mouse: tuple[float, float]) -> list[Step]:
        """The gesture to perform now for this state (empty: do nothing this tick)."""
        tick = int(state.get("tick", 0))
        if tick < self.wait_until_tick:
            return []
        player = state.get("player", {})
        t0 = self.motion.reaction_ms()
        if state.get("inventory_full"):
            if self._distracted(tick):
                return []
            steps = [Step(t0, "key", mouse[0], mouse[1], hold_ms=self.motion.key_hold_ms(), key=self.cfg.empty_key)]
            node = self._choose(state, mouse)
            if node is not None:  # the key empties at once: go straight on gathering
                steps += self._click_node(t0 + steps[0].hold_ms + self.motion.reaction_ms() * 0.5, mouse, node)
            return steps
        if not player.get("gathering"):
            node = self._choose(state, mouse)
            if node is None:
                hidden = [n for n in state.get("nodes", []) if n.get("active") and not n.get("visible")]
                if hidden:  # zoomed in too far: zoom out
                    return [Step(t0 + i * 80.0, "scroll", mouse[0], mouse[1], notches=-1) for i in range(2)]
                return []  # everything is respawning
            if self._distracted(tick):
                return []
            return self._click_node(t0, mouse, node)
        # gathering: fidget, anticipate, scroll
        target_slot = player.get("target_slot", -1)
        nodes = state.get("nodes", [])
        current = nodes[target_slot] if 0 <= target_slot < len(nodes) else None
        if (current is not None and current.get("remaining", 0) <= 1 and player.get("ticks_left", 0) <= 1
                and self.rng.random() < self.cfg.anticipate_prob):
            nxt = _nodes_by_distance(state, mouse, exclude_slot=target_slot)
            if nxt:
                # hover most of the way toward the next node; the click waits for the next state
                frac = self.rng.uniform(0.7, 1.0)
                aim = self._aim(nxt[0])
                goal = (mouse[0] + (aim[0] - mouse[0]) * frac, mouse[1] + (aim[1] - mouse[1]) * frac)
                return self._reach(t0, mouse, goal, 2 * nxt[0]["radius"])[0]
        u = self.rng.random()
        if u < self.cfg.scroll_prob:
            return self._scroll(t0, mouse, float(state.get("zoom", 1.0)))
        if u < self.cfg.scroll_prob + self.cfg.drift_prob:
            ang = self.rng.uniform(0, 2 * math.pi)
            d = self.rng.uniform(5.0, 40.0)
            view = float(state.get("window", {}).get("view_size", 600))
            goal = (min(view - 1, max(1, mouse[0] + d * math.cos(ang))), min(view - 1, max(1, mouse[1] + d * math.sin(ang))))
            return self._reach(t0, mouse, goal, 40.0)[0]
        return []


class GesturePerformer:
    """Performs gestures as real input with pynput controllers on the current X display.

    Steps become `PlannedAction`s (a key step is a KEY press and, `hold_ms` later, its release;
    a scroll step one SCROLL per notch) performed at their due times on the monotonic clock.
    Positions are window-relative; `origin` is the client area's screen position. The cursor
    is read back from the X server (a person may have moved it).

    Why not `PynputExecutor`: it warps the pointer to the action's position before every CLICK
    and SCROLL, and XTest reports a warp to the pointer's own position as a motion event, so
    every demonstrated click would carry a zero-distance MOVE 0.1 ms before it — an artefact a
    person's recording never has, which the model would learn. Here a click or scroll warps
    only when the pointer is elsewhere. Keys map through the executor's `pynput_key`.
    `release_all()` (the kill switch) lets go of the button and any held key."""

    def __init__(self, origin: tuple[int, int] = (0, 0)):
        from pynput import keyboard, mouse  # needs a display: imported only when performing

        self.origin = origin
        self._mouse = mouse.Controller()
        self._kb = keyboard.Controller()
        self._left = mouse.Button.left
        self._lock = threading.Lock()
        self._button_held = False
        self._held_keys: dict[int, object] = {}
        self.performed = 0

    def position(self) -> tuple[float, float]:
        x, y = self._mouse.position
        return float(x - self.origin[0]), float(y - self.origin[1])

    def _warp(self, sx: int, sy: int, always: bool) -> None:
        if always or tuple(self._mouse.position) != (sx, sy):
            self._mouse.position = (sx, sy)

    def perform(self, a: PlannedAction) -> None:
        """Performs one action now (a CLICK blocks for its hold)."""
        from ..agent.executors.pynput_exec import pynput_key

        sx, sy = int(self.origin[0] + round(a.x)), int(self.origin[1] + round(a.y))
        if a.type == EventType.MOVE:
            with self._lock:
                self._warp(sx, sy, always=True)
        elif a.type == EventType.CLICK:
            with self._lock:
                self._warp(sx, sy, always=False)
                self._mouse.press(self._left)
                self._button_held = True
            time.sleep(a.hold_ms / 1000.0)
            with self._lock:
                if self._button_held:  # not already let go by release_all
                    self._mouse.release(self._left)
                    self._button_held = False
        elif a.type == EventType.SCROLL:
            with self._lock:
                self._warp(sx, sy, always=False)
                self._mouse.scroll(0, 1 if a.scroll_y == ScrollY.UP else -1)
        else:  # KEY
            key = pynput_key(a.key_id)
            with self._lock:
                if a.key_action == KeyAction.PRESS:
                    self._kb.press(key)
                    self._held_keys[a.key_id] = key
                elif a.key_id in self._held_keys:
                    self._kb.release(self._held_keys.pop(a.key_id))
        self.performed += 1

    def release_all(self) -> None:
        with self._lock:
            if self._button_held:
                self._mouse.release(self._left)
                self._button_held = False
            for key in self._held_keys.values():
                self._kb.release(key)
            self._held_keys.clear()

    @staticmethod
    def actions(step: Step) -> list[PlannedAction]:
        """The planned actions of one step (t_ms as in the step)."""
        base = dict(x=float(round(step.x)), y=float(round(step.y)), source="demonstrator")
        if step.kind == "move":
            return [PlannedAction(EventType.MOVE, step.t_ms, **base)]
        if step.kind == "click":
            return [PlannedAction(EventType.CLICK, step.t_ms, button=int(Button.LEFT), hold_ms=step.hold_ms, **base)]
        if step.kind == "key":
            kid = key_id(step.key)
            return [PlannedAction(EventType.KEY, step.t_ms, key_action=int(KeyAction.PRESS), key_id=kid, **base),
                    PlannedAction(EventType.KEY, step.t_ms + step.hold_ms, key_action=int(KeyAction.RELEASE),
                                  key_id=kid, **base)]
        if step.kind == "scroll":
            cls = int(ScrollY.UP if step.notches > 0 else ScrollY.DOWN)
            return [PlannedAction(EventType.SCROLL, step.t_ms + 15.0 * i, scroll_y=cls, **base)
                    for i in range(abs(step.notches))]
        raise ValueError(f"unknown step kind {step.kind!r}")

    def perform_gesture(self, steps: list[Step], start_ns: int, stop: threading.Event | None = None) -> int:
        """Performs each action at start_ns + t_ms; returns when the last one is over (a click's
        hold included), so the next decision sees the game after this gesture."""
        actions = sorted((a for s in steps for a in self.actions(s)), key=lambda a: a.t_ms)
        end_ms = 0.0
        for a in actions:
            if stop is not None and stop.is_set():
                break
            delay = (start_ns + int(a.t_ms * 1e6) - time.monotonic_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
            self.perform(a)
            end_ms = max(end_ms, a.t_ms)
        # a short pause after the last input before the next decision (or the end)
        delay = (start_ns + int((end_ms + RELEASE_MARGIN_MS) * 1e6) - time.monotonic_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        return len(actions)


class StateFeed:
    """Polls a capture adapter on a thread; keeps the newest capture and hands each to `on_capture`."""

    def __init__(self, adapter, on_capture: Callable | None = None, poll_ms: float = 5.0):
        self.adapter = adapter
        self.on_capture = on_capture
        self.poll_s = poll_ms / 1000.0
        self.latest = None
        self.seen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-demo-feed", daemon=True)

    def start(self) -> "StateFeed":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            cap = self.adapter.poll()
            if cap is not None:
                with self._lock:
                    self.latest = cap
                    self.seen += 1
                if self.on_capture is not None:
                    self.on_capture(cap)
            else:
                self._stop.wait(self.poll_s)

    def newest(self):
        with self._lock:
            return self.latest

    def wait_first(self, timeout_s: float):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            cap = self.newest()
            if cap is not None:
                return cap
            time.sleep(0.02)
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class Demonstrator:
    """The decide-and-perform loop over a state feed."""

    def __init__(self, policy: DemoPolicy, performer: GesturePerformer, feed: StateFeed):
        self.policy = policy
        self.performer = performer
        self.feed = feed
        self.gestures = 0
        self.decisions = 0
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, until_tick: int, timeout_s: float, alive: Callable[[], bool] | None = None) -> dict:
        """Plays until the game publishes `until_tick`, `alive()` turns false, or the timeout;
        returns the last state seen."""
        import json

        deadline = time.monotonic() + timeout_s
        acted_ns = 0  # decisions only on states observed after the previous gesture ended
        last_tick = parsed_tick = None
        state: dict = {}
        while not self._stop.is_set() and time.monotonic() < deadline:
            cap = self.feed.newest()
            if cap is not None and cap.tick != parsed_tick:
                state, parsed_tick = json.loads(cap.raw_json), cap.tick
                if cap.tick >= until_tick:
                    break
            if cap is None or cap.tick == last_tick or cap.t_ns < acted_ns:
                if alive is not None and not alive():
                    break
                time.sleep(0.005)
                continue
            last_tick = cap.tick
            self.decisions += 1
            steps = self.policy.decide(state, self.performer.position())
            if steps:
                self.gestures += 1
                self.performer.perform_gesture(steps, time.monotonic_ns(), self._stop)
                acted_ns = time.monotonic_ns()
        return state


# --- a whole recorded session -------------------------------------------------------------

def _game_process(state_dir: Path, seed: int, ticks: int, tick_ms: float) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ilbot.cli", "sandbox", "--state-dir", str(state_dir), "--seed", str(seed),
           "--ticks", str(ticks), "--tick-ms", str(tick_ms)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def record_session(out_path: Path, *, ticks: int = 200, seed: int = 0, tick_ms: float = 600.0,
                   config: DemoConfig | None = None, timeout_s: float | None = None) -> dict:
    """Runs the game + demonstrator for `ticks` ticks while the real recorder records one
    session store at out_path (input through pynput listeners, ticks through its own json-dir
    adapter). Returns a summary: items gathered (the game's score), banked, misclicks, ticks
    recorded, events by type and events per recorded tick (from the store as written)."""
    import json

    from ..agent.capture.json_dir import JsonDirAdapter
    from ..agent.recorder import Recorder
    from ..agent.window import WindowGeometry
    from ..data.featurespec import load_spec
    from ..data.store import open_session
    from ..safety import KillSwitch

    if not os.environ.get("DISPLAY"):
        raise UserError("the sandbox demonstrator needs a display: DISPLAY is not set")
    out_path = Path(out_path)
    if out_path.exists():
        raise UserError(f"{out_path}: already exists (refusing to overwrite a session)")
    cfg = config or DemoConfig(seed=seed)
    spec = load_spec("sandbox")
    state_dir = Path(tempfile.mkdtemp(prefix="ilbot-sandbox-demo-"))
    game = _game_process(state_dir, seed, ticks, tick_ms)
    feed = recorder = performer = kill = None
    final: dict = {}
    try:
        feed = StateFeed(JsonDirAdapter(state_dir, spec, tick_ms=tick_ms)).start()
        first = feed.wait_first(timeout_s=30.0)
        if first is None:
            out = game.stdout.read() if game.poll() is not None else ""
            raise UserError(f"sandbox game published no state in {state_dir} within 30 s {out.strip()[-300:]}")
        win = json.loads(first.raw_json)["window"]
        window = WindowGeometry(int(win["x"]), int(win["y"]), int(win["width"]), int(win["height"]), "ilbot sandbox")
        recorder = Recorder(out_path, window, JsonDirAdapter(state_dir, spec, tick_ms=tick_ms), spec=spec,
                            tick_ms=tick_ms, notes=f"ilbot sandbox demo, seed {seed}, user demonstrator")
        recorder.start()
        performer = GesturePerformer((window.x, window.y))
        demo = Demonstrator(DemoPolicy(cfg), performer, feed)

        def kill_now():
            demo.stop()
            performer.release_all()

        kill = KillSwitch("f12", on_trigger=kill_now).start()
        final = demo.run(until_tick=ticks, timeout_s=timeout_s or ticks * tick_ms / 1000.0 * 3 + 30,
                         alive=lambda: game.poll() is None and not recorder.stop_requested.is_set())
        performer.release_all()
        time.sleep(0.3)  # the last input reaches the recorder's listeners before it stops
        counters = recorder.stop()
    finally:
        if kill is not None:
            kill.stop()
        if performer is not None:
            performer.release_all()
        if recorder is not None:
            recorder.stop()
        if feed is not None:
            feed.stop()
        if game.poll() is None:
            game.terminate()
        try:
            game.wait(timeout=5)
        except subprocess.TimeoutExpired:
            game.kill()
            game.wait()
        shutil.rmtree(state_dir, ignore_errors=True)
    with open_session(out_path) as session:
        n_ticks = session.n_ticks
        counts: dict[str, int] = {}
        for e in session.events():
            counts[e.type.name] = counts.get(e.type.name, 0) + 1
    return {"path": str(out_path), "ticks": n_ticks, "items": int(final.get("score", 0)),
            "banked": int(final.get("banked", 0)), "misclicks": int(final.get("misclicks", 0)),
            "events": counts, "events_per_tick": sum(counts.values()) / max(1, n_ticks),
            "recorder": {k: v for k, v in counters.items() if v},
            "stopped_early": bool(kill.triggered.is_set() or int(final.get("tick", 0)) < ticks)}


MAX_MISCLICK_RATE = 0.1  # a session whose misclicks exceed this share of its clicks is set aside


def record_sessions(out_dir: Path, *, sessions: int, ticks: int, seed: int = 0, tick_ms: float = 600.0,
                    max_misclick_rate: float = MAX_MISCLICK_RATE) -> list[dict]:
    """`ilbot sandbox demo`: one store per session, seeds seed, seed+1, ...; prints progress.

    The demonstrator does not misclick when it keeps up with the game; on an overloaded machine a
    session can fall behind its state documents and click where nodes were (seen once in 16
    sessions: 182 misclicks, 53 items instead of ~115). Such a session is no demonstration of
    playing well, so it is renamed `*.rejected` (kept to look at, not read by `ilbot build`) and
    its result says `rejected`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i in range(sessions):
        s = seed + i
        path = out_dir / f"sandbox-demo-seed{s}.ilbot.sqlite"
        print(f"[{i + 1}/{sessions}] recording {path.name}: {ticks} ticks (~{ticks * tick_ms / 1000:.0f} s) ...",
              flush=True)
        r = record_session(path, ticks=ticks, seed=s, tick_ms=tick_ms)
        print(f"[{i + 1}/{sessions}] {path.name}: {r['items']} items, {r['events_per_tick']:.1f} events/tick, "
              f"events {r['events']}", flush=True)
        clicks = int(r["events"].get("CLICK", 0))
        r["rejected"] = r["misclicks"] > max_misclick_rate * max(clicks, 1)
        if r["rejected"]:
            path.rename(path.with_name(path.name.replace(".ilbot.sqlite", ".rejected")))
            print(f"[{i + 1}/{sessions}] {path.name}: {r['misclicks']} misclicks in {clicks} clicks: set aside "
                  f"as {path.name.replace('.ilbot.sqlite', '.rejected')} (the demonstrator fell behind the game)", flush=True)
        results.append(r)
        if r["stopped_early"]:
            print(f"stopped early at tick {r['ticks']}: no further sessions", flush=True)
            break
    return results
