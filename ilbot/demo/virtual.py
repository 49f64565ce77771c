"""The demonstrator on a virtual clock: its policy plays the in-process sandbox, no X server.

The same decide-and-perform rules as the live demonstrator (`ilbot.demo.play`), on the clock the
closed-loop evaluation gives the agent: tick k starts at k·tick_ms; the demonstrator decides on the
state a tick starts from once its previous gesture is over (its last input, plus the release
margin), and each of the gesture's actions reaches the game at its due time, in the tick it falls
in — so a gesture may span ticks, as live. The pointer is where the last pointer action put it.
"""

from __future__ import annotations

from ..data.schema import POINTER_TYPES, EventType
from ..sandbox.apply import apply_action
from ..sandbox.demonstrator import DemoConfig, DemoPolicy, gesture_actions
from ..sandbox.trace import Trace
from .perform import RELEASE_MARGIN_MS


class VirtualDemonstrator:
    """The demonstrator's decide-and-perform loop, one tick at a time, on a game it may share with
    another player (the agent, in a takeover session): `play_tick(k)` plays tick k of `game` and
    returns what reached the game, as (t_ms since tick 0, action), deciding on `state` (the
    document tick k started from) once the previous gesture is over."""

    def __init__(self, game, seed: int = 0, tick_ms: float = 600.0, config: DemoConfig | None = None):
        self.game = game
        self.tick_ms = tick_ms
        self.policy = DemoPolicy(config or DemoConfig(seed=seed))
        self.pointer = tuple(game.mouse)
        self.pending: list[tuple[float, object]] = []  # (t_ms, action) not yet reached the game, in time order
        self.busy_until = 0.0  # the current gesture is over at this time

    def busy(self, k: int) -> bool:
        """Whether a gesture is still under way when tick k starts."""
        return bool(self.pending) or k * self.tick_ms < self.busy_until

    def play_tick(self, k: int, state: dict) -> list[tuple[float, object]]:
        start, end = k * self.tick_ms, (k + 1) * self.tick_ms
        if start >= self.busy_until:
            if not self.pending:  # another player may have moved the pointer meanwhile
                self.pointer = tuple(self.game.mouse)
            actions = gesture_actions(self.policy.decide(state, self.pointer))
            if actions:
                due = [(start + a.t_ms, a) for a in actions]
                self.pending = sorted(self.pending + due, key=lambda p: p[0])
                last_t, last = due[-1]
                self.busy_until = last_t + (last.hold_ms if int(last.type) == EventType.CLICK else 0.0) + RELEASE_MARGIN_MS
        played = []
        while self.pending and self.pending[0][0] < end:
            t, a = self.pending.pop(0)
            apply_action(self.game, a)
            played.append((t, a))
            if int(a.type) in POINTER_TYPES:
                self.pointer = (a.x, a.y)
        return played


def play_demo_episode(seed: int = 0, ticks: int = 200, tick_ms: float = 600.0, config: DemoConfig | None = None,
                      game=None) -> Trace:
    """The demonstrator plays `ticks` ticks of a new game with seed `seed`, or on from `game`
    (taking over where another player left it: its state, its cursor)."""
    from ..sandbox.logic import GameConfig, SandboxGame

    game = game if game is not None else SandboxGame(GameConfig(seed=seed))
    demo = VirtualDemonstrator(game, seed=seed, tick_ms=tick_ms, config=config)
    trace = Trace(seed=seed, ticks=ticks, tick_ms=tick_ms)
    for k in range(ticks):
        state = game.state()
        trace.states.append(state)
        played = demo.play_tick(k, state)
        trace.actions.extend(played)
        trace.idle_ticks += int(not played)
        game.tick()
    trace.score, trace.misclicks = game.score, game.misclicks
    return trace


def write_session(trace: Trace, path, *, notes: str = "", overwrite: bool = False,
                  segments: list[tuple[str, int, int, dict]] = ()) -> dict:
    """A trace as a session store, as the recorder would have written it: each tick's state (raw
    JSON and the sandbox spec's features) at k·tick_ms, and each action as the event it is (a CLICK
    with its hold, a KEY press and its release, a SCROLL notch, a MOVE), times since tick 0.
    `segments` (kind, t_start_ns, t_end_ns, meta) are marked in the same store. Written beside the
    target and renamed in (`ilbot.data.atomic`): the store appears whole, segments and all."""
    import json

    from ..data.atomic import atomic_file
    from ..data.featurespec import load_spec
    from ..data.keys import KEY_VOCAB_VERSION
    from ..data.schema import Event
    from ..data.store import SessionWriter

    spec = load_spec("sandbox")
    first = trace.states[0] if trace.states else {}
    w = first.get("window", {})
    meta = {"source": "sandbox (virtual clock)", "window": {"x": 0, "y": 0, "width": w.get("width", 800),
                                                           "height": w.get("height", 600)},
            "window_title": "ilbot sandbox", "tick_ms": trace.tick_ms, "feature_spec": spec.name,
            "feature_spec_hash": spec.hash, "key_vocab_version": KEY_VOCAB_VERSION, "notes": notes}
    t0 = trace.states and int(trace.states[0].get("tick", 0))
    with atomic_file(path, overwrite=overwrite) as tmp:
        tmp.unlink()  # the writer makes its own file (and its WAL) there
        with SessionWriter(tmp, meta) as out:
            for k, doc in enumerate(trace.states):
                out.add_tick(int(doc.get("tick", k)) - t0, int(round(k * trace.tick_ms * 1e6)), json.dumps(doc),
                             spec.features(doc))
            for t_ms, a in sorted(trace.actions, key=lambda p: p[0]):
                out.add_event(Event.make(int(round(t_ms * 1e6)), a.x, a.y, button=int(a.button),
                                         key_action=int(a.key_action), key_id=int(a.key_id),
                                         scroll_y=int(a.scroll_y), hold_ms=float(a.hold_ms)))
            for kind, t0_ns, t1_ns, seg_meta in segments:
                out.add_segment(kind, t0_ns, t1_ns, seg_meta)
    return {"ticks": len(trace.states), "events": len(trace.actions), "items": trace.score, "misclicks": trace.misclicks}
