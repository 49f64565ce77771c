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


def play_demo_episode(seed: int = 0, ticks: int = 200, tick_ms: float = 600.0, config: DemoConfig | None = None,
                      game=None) -> Trace:
    """The demonstrator plays `ticks` ticks of a new game with seed `seed`, or on from `game`
    (taking over where another player left it: its state, its cursor)."""
    from ..sandbox.logic import GameConfig, SandboxGame

    game = game if game is not None else SandboxGame(GameConfig(seed=seed))
    policy = DemoPolicy(config or DemoConfig(seed=seed))
    trace = Trace(seed=seed, ticks=ticks, tick_ms=tick_ms)
    pointer = tuple(game.mouse)
    pending: list[tuple[float, object]] = []  # (t_ms, action) not yet reached the game, in time order
    busy_until = 0.0  # the current gesture is over at this time
    for k in range(ticks):
        start, end = k * tick_ms, (k + 1) * tick_ms
        state = game.state()
        trace.states.append(state)
        if start >= busy_until:
            actions = gesture_actions(policy.decide(state, pointer))
            if actions:
                due = [(start + a.t_ms, a) for a in actions]
                pending = sorted(pending + due, key=lambda p: p[0])
                last_t, last = due[-1]
                busy_until = last_t + (last.hold_ms if int(last.type) == EventType.CLICK else 0.0) + RELEASE_MARGIN_MS
        n = 0
        while pending and pending[0][0] < end:
            t, a = pending.pop(0)
            apply_action(game, a)
            trace.actions.append((t, a))
            if int(a.type) in POINTER_TYPES:
                pointer = (a.x, a.y)
            n += 1
        trace.idle_ticks += int(n == 0)
        game.tick()
    trace.score, trace.misclicks = game.score, game.misclicks
    return trace


def write_session(trace: Trace, path, *, notes: str = "", overwrite: bool = False) -> dict:
    """A trace as a session store, as the recorder would have written it: each tick's state (raw
    JSON and the sandbox spec's features) at k·tick_ms, and each action as the event it is (a CLICK
    with its hold, a KEY press and its release, a SCROLL notch, a MOVE), times since tick 0.
    Written beside the target and renamed in (`ilbot.data.atomic`)."""
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
    return {"ticks": len(trace.states), "events": len(trace.actions), "items": trace.score}
