"""The demonstrator on a virtual clock: its policy plays the in-process sandbox, no X server.

The same decide-and-perform rules as the live demonstrator (`ilbot.demo.play`), on the clock the
closed-loop evaluation gives the agent: tick k starts at k·tick_ms; the demonstrator decides on the
state a tick starts from once its previous gesture is over (its last input, plus the release
margin), and each of the gesture's actions reaches the game at its due time, in the tick it falls
in — so a gesture may span ticks, as live. The pointer is where the last pointer action put it.
"""

from __future__ import annotations

from ..data.schema import EventType
from ..sandbox.apply import apply_action
from ..sandbox.demonstrator import DemoConfig, DemoPolicy, gesture_actions
from ..sandbox.trace import Trace
from .perform import RELEASE_MARGIN_MS

POINTER_TYPES = (EventType.CLICK, EventType.SCROLL, EventType.MOVE)


def play_demo_episode(seed: int = 0, ticks: int = 200, tick_ms: float = 600.0, config: DemoConfig | None = None) -> Trace:
    from ..sandbox.logic import GameConfig, SandboxGame

    game = SandboxGame(GameConfig(seed=seed))
    policy = DemoPolicy(config or DemoConfig(seed=seed))
    trace = Trace(seed=seed, ticks=ticks, tick_ms=tick_ms)
    pointer = (game.cfg.width / 2.0, game.cfg.height / 2.0)
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
