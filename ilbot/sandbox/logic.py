"""The sandbox game's rules: a pure, deterministic, seedable class (no Qt, no clock).

The game (DESIGN §8) is a small gathering game in the style of a tick-based MMO:

- The client area is `width x height` pixels: a square *world view* on the left
  (`view_size x view_size`) and an inventory panel on the right.
- Up to `n_nodes` resource nodes live in fixed *slots* (slot i always publishes at index i, so a
  feature spec can give every slot fixed feature positions). A node has a kind (tree or rock), a
  world position and a remaining resource count.
- A left click on a visible node starts gathering it: the player's animation is the kind's
  gathering animation for `gather_ticks` ticks, then one item enters the inventory and the node
  loses one unit; the player is idle again (one click = one item, so every item needs a decision,
  which is what a model learns from). A depleted node vanishes; its slot respawns a new node
  elsewhere after a random `respawn_ticks` delay.
- The inventory has 28 slots (`{"id", "quantity"}`, empty = id -1, quantity 0, as RuneLite
  exports it). A full inventory refuses new gathering, and a gather that completes into a full
  inventory is lost.
- The empty key (space) empties the inventory ("banking").
- The wheel zooms the view about its centre (up = zoom in, x1.1 per notch, clamped); node window
  positions and radii scale with it, and a node whose centre leaves the view is not visible and
  cannot be clicked.

Score: **every item gathered counts** (`score` = items that entered the inventory); `banked`
counts items emptied by the key. Counting gathered rather than banked items makes the score a
per-tick rate that a 200-tick benchmark can compare, whether or not the run ended with a bank.

Inputs (`click`, `key`, `scroll`, `move`) apply at once; `tick()` advances gathering and respawns.
Same seed + same inputs in the same order between the same ticks → the same states.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass

INVENTORY_SLOTS = 28
N_NEAREST = 3  # nodes listed in the state's "nearest" (by distance to the cursor)
EMPTY_ITEM = -1

# kind → (item id it yields, gathering animation id); ids as in Old School RuneScape (logs, copper ore).
KINDS: dict[str, tuple[int, int]] = {"tree": (1511, 879), "rock": (436, 625)}
IDLE_ANIMATION = -1


@dataclass
class GameConfig:
    seed: int = 0
    width: int = 800  # client area, pixels
    height: int = 600
    view_size: int = 600  # the world view is the square [0, view_size) at the left
    n_nodes: int = 5  # node slots
    node_radius: float = 22.0  # world units (= pixels at zoom 1)
    gather_ticks: int = 3  # ticks from click to item
    resource_min: int = 2  # a node holds resource_min..resource_max items
    resource_max: int = 5
    respawn_min: int = 3  # ticks before a depleted slot holds a new node
    respawn_max: int = 8
    spawn_margin: float = 60.0  # nodes spawn this far from the view's edges
    spawn_min_dist: float = 80.0  # ... this far from each other and from the player
    zoom_min: float = 0.5
    zoom_max: float = 2.0
    zoom_step: float = 1.1  # per wheel notch
    empty_key: str = "space"


@dataclass
class Node:
    id: int
    kind: str
    wx: float  # world position (world units; the view maps it through the zoom)
    wy: float
    remaining: int


@dataclass
class Slot:
    node: Node | None = None
    respawn_in: int = 0  # ticks until a new node appears (when node is None)


@dataclass
class Player:
    target: int | None = None  # node id being gathered
    ticks_left: int = 0  # ticks until the current gather completes
    animation: int = IDLE_ANIMATION


class SandboxGame:
    """The game state and its rules. `state()` is the document published every tick."""

    def __init__(self, config: GameConfig | None = None):
        self.cfg = config or GameConfig()
        if self.cfg.view_size > self.cfg.width or self.cfg.view_size > self.cfg.height:
            raise ValueError("sandbox: the world view must fit inside the client area")
        self.rng = random.Random(self.cfg.seed)
        self.tick_index = 0
        self.zoom = 1.0
        self.mouse = (self.cfg.width / 2.0, self.cfg.height / 2.0)
        self.inventory: list[dict] = [{"id": EMPTY_ITEM, "quantity": 0} for _ in range(INVENTORY_SLOTS)]
        self.player = Player()
        self.score = 0  # items gathered
        self.banked = 0  # items emptied with the key
        self.misclicks = 0  # clicks that hit no clickable node
        self.lost = 0  # gathers completed into a full inventory
        self._next_id = 1
        self.slots = [Slot() for _ in range(self.cfg.n_nodes)]
        for slot in self.slots:
            slot.node = self._spawn()

    def snapshot(self) -> dict:
        """The whole game (rules' state and random generator), for `restore`."""
        return copy.deepcopy(self.__dict__)

    def restore(self, snapshot: dict) -> None:
        """Back to a `snapshot()`, in place: whoever holds this game sees the restored one."""
        self.__dict__.clear()
        self.__dict__.update(copy.deepcopy(snapshot))

    # --- geometry -------------------------------------------------------------------------
    @property
    def centre(self) -> float:
        return self.cfg.view_size / 2.0

    def to_window(self, wx: float, wy: float) -> tuple[float, float]:
        """World → window pixels: the view zooms about its centre."""
        c = self.centre
        return c + (wx - c) * self.zoom, c + (wy - c) * self.zoom

    def node_radius_px(self) -> float:
        return self.cfg.node_radius * self.zoom

    def in_view(self, x: float, y: float) -> bool:
        return 0.0 <= x < self.cfg.view_size and 0.0 <= y < self.cfg.view_size

    def visible(self, node: Node) -> bool:
        return self.in_view(*self.to_window(node.wx, node.wy))

    def nodes(self) -> list[Node]:
        return [s.node for s in self.slots if s.node is not None]

    def node_at(self, x: float, y: float) -> Node | None:
        """The visible node under window point (x, y) (the nearest, if several)."""
        if not self.in_view(x, y):
            return None
        best, best_d = None, self.node_radius_px()
        for node in self.nodes():
            if not self.visible(node):
                continue
            nx, ny = self.to_window(node.wx, node.wy)
            d = math.hypot(x - nx, y - ny)
            if d <= best_d:
                best, best_d = node, d
        return best

    def _spawn(self) -> Node:
        """A new node at a random world position clear of the player and the other nodes."""
        c, m = self.centre, self.cfg.spawn_margin
        others = [(n.wx, n.wy) for n in self.nodes()] + [(c, c)]
        for _ in range(200):
            wx = self.rng.uniform(m, self.cfg.view_size - m)
            wy = self.rng.uniform(m, self.cfg.view_size - m)
            if all(math.hypot(wx - ox, wy - oy) >= self.cfg.spawn_min_dist for ox, oy in others):
                break  # else: crowded; the last draw is used (rare with the default sizes)
        kind = self.rng.choice(sorted(KINDS))
        node = Node(self._next_id, kind, wx, wy, self.rng.randint(self.cfg.resource_min, self.cfg.resource_max))
        self._next_id += 1
        return node

    # --- inventory ------------------------------------------------------------------------
    def inventory_count(self) -> int:
        return sum(1 for s in self.inventory if s["id"] != EMPTY_ITEM)

    def inventory_full(self) -> bool:
        return self.inventory_count() >= INVENTORY_SLOTS

    def _add_item(self, item_id: int) -> bool:
        for s in self.inventory:
            if s["id"] == EMPTY_ITEM:
                s["id"], s["quantity"] = item_id, 1
                return True
        return False

    # --- input ----------------------------------------------------------------------------
    def move(self, x: float, y: float) -> None:
        self.mouse = (float(x), float(y))

    def click(self, x: float, y: float, button: int = 1) -> bool:
        """A click at window point (x, y); returns True when it started gathering.

        Only the left button (1) acts; a left click on no clickable node, or on a node while the
        inventory is full, is a misclick. Clicking another node while gathering switches to it
        (its gather starts over); clicking the node being gathered keeps the gather going."""
        self.move(x, y)
        if button != 1:
            return False
        node = self.node_at(x, y)
        if node is None or self.inventory_full():
            self.misclicks += 1
            return False
        if self.player.target == node.id:
            return True
        self.player.target = node.id
        self.player.ticks_left = self.cfg.gather_ticks
        self.player.animation = KINDS[node.kind][1]
        return True

    def key(self, name: str) -> bool:
        """A key press by vocabulary name (ilbot.data.keys); the empty key empties the inventory."""
        if name != self.cfg.empty_key:
            return False
        n = self.inventory_count()
        self.banked += n
        for s in self.inventory:
            s["id"], s["quantity"] = EMPTY_ITEM, 0
        return n > 0

    def scroll(self, notches: int) -> None:
        """Wheel notches: positive (up) zooms in, negative zooms out; clamped to the zoom range."""
        z = self.zoom * self.cfg.zoom_step ** notches
        self.zoom = min(self.cfg.zoom_max, max(self.cfg.zoom_min, z))

    # --- time -----------------------------------------------------------------------------
    def _stop_gathering(self) -> None:
        self.player = Player()

    def tick(self) -> None:
        """Advance one game tick: gathering progress, item delivery, depletion, respawns."""
        self.tick_index += 1
        for slot in self.slots:  # respawns first, so a slot emptied this tick waits its full delay
            if slot.node is None:
                slot.respawn_in -= 1
                if slot.respawn_in <= 0:
                    slot.node = self._spawn()
        p = self.player
        if p.target is None:
            return
        slot = next((s for s in self.slots if s.node is not None and s.node.id == p.target), None)
        if slot is None:  # the node vanished (cannot happen with one player; kept for safety)
            self._stop_gathering()
            return
        p.ticks_left -= 1
        if p.ticks_left > 0:
            return
        node = slot.node
        if self._add_item(KINDS[node.kind][0]):
            self.score += 1
        else:
            self.lost += 1
        node.remaining -= 1
        if node.remaining <= 0:
            slot.node = None
            slot.respawn_in = self.rng.randint(self.cfg.respawn_min, self.cfg.respawn_max)
        self._stop_gathering()

    # --- published state ------------------------------------------------------------------
    def state(self) -> dict:
        """The per-tick game-state document (docs/sandbox.md lists every field)."""
        p = self.player
        target_slot = -1
        nodes = []
        r = self.node_radius_px()
        mx, my = self.mouse
        for i, slot in enumerate(self.slots):
            n = slot.node
            if n is None:
                nodes.append({"slot": i, "active": False, "id": -1, "kind": None, "x": None, "y": None,
                              "radius": 0.0, "remaining": 0, "visible": False, "mouse_dist": None,
                              "mouse_dx": None, "mouse_dy": None, "respawn_in": slot.respawn_in})
                continue
            x, y = self.to_window(n.wx, n.wy)
            if n.id == p.target:
                target_slot = i
            nodes.append({"slot": i, "active": True, "id": n.id, "kind": n.kind, "x": round(x, 2), "y": round(y, 2),
                          "radius": round(r, 2), "remaining": n.remaining, "visible": self.visible(n),
                          "mouse_dist": round(math.hypot(mx - x, my - y), 2), "mouse_dx": round(x - mx, 2),
                          "mouse_dy": round(y - my, 2), "respawn_in": 0})
        # the visible nodes nearest the cursor, nearest first (ties: lower slot): what a player
        # looks at next; at most N_NEAREST, so a feature spec reads it in fixed slots
        nearest = sorted((n for n in nodes if n["visible"]), key=lambda n: (n["mouse_dist"], n["slot"]))
        nearest = nearest[:N_NEAREST]
        gathering = p.target is not None
        return {
            "game": "ilbot-sandbox",
            "tick": self.tick_index,
            "window": {"width": self.cfg.width, "height": self.cfg.height, "view_size": self.cfg.view_size},
            "player": {
                "animation": p.animation,
                "state": "gathering" if gathering else "idle",
                "gathering": gathering,
                "target_slot": target_slot,
                "ticks_left": p.ticks_left,
                "progress": round(1.0 - p.ticks_left / self.cfg.gather_ticks, 4) if gathering else 0.0,
            },
            "inventory": [dict(s) for s in self.inventory],
            "inventory_count": self.inventory_count(),
            "inventory_full": self.inventory_full(),
            "nodes": nodes,
            "nearest": nearest,
            "zoom": round(self.zoom, 4),
            "score": self.score,
            "banked": self.banked,
            "misclicks": self.misclicks,
            "lost": self.lost,
            "mouse": {"x": round(mx, 1), "y": round(my, 1)},
        }
