"""The scripted demonstrator's policy: what a good player of the sandbox decides to do (pure).

- `DemoPolicy` (seeded): given the newest game-state document and the cursor position, returns
  a *gesture*: timed steps (`Step`: move / click / key / scroll, `t_ms` after the decision). It
  gathers from the node under or nearest the cursor (sometimes the second nearest), empties the
  inventory with space when it is full, and while gathering sometimes drifts the mouse, hovers
  toward the next node when the current one is about to deplete, or scrolls 1–2 notches
  (keeping the zoom near 1). With probability `distracted_prob` a due decision waits 1–3 ticks
  instead (idle ticks). Timing and paths come from `HumanMotion` (motion.py).
- `step_actions(step)` / `gesture_actions(steps)`: a gesture as the `PlannedAction`s any
  executor performs (a key step is a KEY press and, `hold_ms` later, its release; a scroll step
  one SCROLL per notch, 15 ms apart), source "demonstrator".

Performing, the decide-and-perform loop and recording are `ilbot.demo` (they use the agent's
executor and recorder; this package imports neither).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ..data.action import PlannedAction
from ..data.keys import key_id
from ..data.schema import Button, EventType, KeyAction, ScrollY
from .motion import HumanMotion, MotionConfig


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
        self._view = 600.0  # the world view's size, from the newest state

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
        """A point on the node, inside the world view: a node near the edge reaches past the game
        window, and a click there would land outside it (on nothing, live)."""
        r = node["radius"]
        s = self.cfg.aim_spread * r
        dx = max(-0.8 * r, min(0.8 * r, self.rng.gauss(0.0, s)))
        dy = max(-0.8 * r, min(0.8 * r, self.rng.gauss(0.0, s)))
        hi = self._view - 2.0
        return min(max(node["x"] + dx, 1.0), hi), min(max(node["y"] + dy, 1.0), hi)

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
        self._view = float(state.get("window", {}).get("view_size", 600))
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


def step_actions(step: Step) -> list[PlannedAction]:
    """The planned actions of one step (t_ms as in the step; positions rounded to whole pixels)."""
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


def gesture_actions(steps: list[Step]) -> list[PlannedAction]:
    """All the planned actions of a gesture, in time order (stable for equal times)."""
    return sorted((a for s in steps for a in step_actions(s)), key=lambda a: a.t_ms)
