"""One episode of the agent on the in-process sandbox game, on a virtual clock.

The sandbox's rules (`SandboxGame`, no Qt) run in this process and publish each tick's state
through the json-dir protocol into a private temporary folder, exactly as the game window does;
the run comes from the one assembly (`ilbot.agent.assemble`) on `sandbox:<folder>`, so the
runtime, safety pipeline and planner are those of live play. Ticks run back to back
(`AgentRuntime.step()` keeps exact tick times without sleeping), so T ticks take about as long
as T plans. In the `sandbox` execution mode each action that passed safety is applied to the
game (`SandboxExecutor`) before the tick ends; in `dry_run` nothing is, and the score stays 0.

Used by headless `main.py` and by the closed-loop evaluation (`ilbot eval closed-loop`), which
compares the returned `Trace` with the demonstrator's on the same seed.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Callable

from ..sandbox.trace import Trace


@dataclass
class Episode:
    trace: Trace  # what reached the game, when, from which states
    game: object  # the SandboxGame after the last tick
    counters: dict  # the run's counters (interventions, plan latency, ...)
    seconds: float = 0.0


def play_episode(model, *, seed: int = 0, ticks: int = 200, mode: str = "sandbox", temperature: float = 1.0,
                 on_tick: Callable[[int, object], None] | None = None, game=None) -> Episode:
    """The agent plays `ticks` ticks of the sandbox with game seed `seed` (also the sampling seed),
    from a new game, or on from `game` (a `SandboxGame` some other player has been playing)."""
    from ..sandbox.logic import GameConfig, SandboxGame
    from ..sandbox.publish import JsonDirPublisher
    from .assemble import RunRequest, assemble

    game = game if game is not None else SandboxGame(GameConfig(seed=seed))
    cfg = game.cfg
    with tempfile.TemporaryDirectory(prefix="ilbot-episode-") as state_dir:
        publisher = JsonDirPublisher(state_dir)
        run = assemble(RunRequest(model=model, source=f"sandbox:{state_dir}", window=(0, 0, cfg.width, cfg.height),
                                  mode=mode, game=game, seed=seed, temperature=temperature, realtime=False))
        trace = Trace(seed=seed, ticks=ticks, tick_ms=run.tick_ms)
        if mode == "sandbox":  # what reached the game: every action that passed safety, at its virtual time
            run.on_plan.append(lambda tick, plan: trace.actions.extend((tick * run.tick_ms + a.t_ms, a) for a in plan))
        t0 = time.perf_counter()
        try:
            for k in range(ticks):
                doc = game.state()
                publisher.publish(doc)
                trace.states.append(doc)
                before = len(trace.actions)
                run.step()
                trace.idle_ticks += int(len(trace.actions) == before)
                game.tick()
                if on_tick is not None:
                    on_tick(k, game)
        finally:
            run.stop("ticks")
        seconds = time.perf_counter() - t0
    trace.score, trace.misclicks = game.score, game.misclicks
    return Episode(trace=trace, game=game, counters=run.counters, seconds=seconds)
