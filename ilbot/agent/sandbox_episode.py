"""One episode of the agent on the in-process sandbox game, on a virtual clock.

The sandbox's rules (`SandboxGame`, no Qt) run in this process and publish each tick's state
through the json-dir protocol into a private temporary folder, exactly as the game window does;
the run comes from the one assembly (`ilbot.agent.assemble`) on `sandbox:<folder>`, so the
runtime, safety pipeline and planner are those of live play. Ticks run back to back
(`AgentRuntime.step()` keeps exact tick times without sleeping), so T ticks take about as long
as T plans. In the `sandbox` execution mode each action that passed safety is applied to the
game (`SandboxExecutor`); in `dry_run` nothing is, and the game plays itself without the agent.

Used by headless `main.py` and by the closed-loop evaluation (`ilbot eval closed-loop`).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

from ..data.schema import EventType


@dataclass
class Episode:
    """What happened: the game at the end, the run's counters, and every performed action."""

    game: object  # the SandboxGame after the last tick
    counters: dict
    actions: list = field(default_factory=list)  # executor Performed records, in order
    ticks: int = 0
    seconds: float = 0.0
    idle_ticks: int = 0  # ticks on which nothing was performed


def play_episode(model, *, seed: int = 0, ticks: int = 200, mode: str = "sandbox", temperature: float = 1.0,
                 on_tick: Callable[[int, object], None] | None = None) -> Episode:
    """The agent plays `ticks` ticks of the sandbox with game seed `seed` (also the sampling seed)."""
    from ..sandbox.logic import GameConfig, SandboxGame
    from ..sandbox.publish import JsonDirPublisher
    from .assemble import RunRequest, assemble

    game = SandboxGame(GameConfig(seed=seed))
    cfg = game.cfg
    with tempfile.TemporaryDirectory(prefix="ilbot-episode-") as state_dir:
        publisher = JsonDirPublisher(state_dir)
        publisher.publish(game.state())
        run = assemble(RunRequest(model=model, source=f"sandbox:{state_dir}", window=(0, 0, cfg.width, cfg.height),
                                  mode=mode, game=game, seed=seed, temperature=temperature, realtime=False))
        performed: list = []
        run.executor.add_listener(performed.append)
        idle = 0
        t0 = time.perf_counter()
        try:
            for k in range(ticks):
                before = len(performed)
                run.step()
                idle += int(len(performed) == before)
                game.tick()
                publisher.publish(game.state())
                if on_tick is not None:
                    on_tick(k, game)
        finally:
            run.stop("ticks")
        seconds = time.perf_counter() - t0
    return Episode(game=game, counters=run.counters, actions=performed, ticks=ticks, seconds=seconds, idle_ticks=idle)


def performed_by_type(episode: Episode) -> dict[str, int]:
    out = {e.name: 0 for e in EventType}
    for rec in episode.actions:
        out[EventType(int(rec.action.type)).name] += 1
    return out
