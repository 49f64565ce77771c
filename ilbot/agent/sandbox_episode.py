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


class SandboxEpisode:
    """The agent on an in-process sandbox game, one tick at a time (a context manager): `tick()`
    publishes the game's state, lets the agent plan and perform its tick, and ticks the game.
    `tick(other)` hands the tick to another player instead — `other(k, state)` applies its actions
    to the game itself and returns them as (t_ms since tick 0, action) — and the agent's context
    takes them in as history (`AgentRuntime.step(played=...)`), as a takeover session needs;
    `mark()` and `rewind(mark)` undo ticks, so another player can play them instead.
    `trace` holds every action that reached the game, whoever performed it."""

    def __init__(self, model, *, seed: int = 0, mode: str = "sandbox", temperature: float = 1.0, game=None,
                 safety=None):
        from ..sandbox.logic import GameConfig, SandboxGame

        self.model, self.seed, self.mode, self.temperature = model, seed, mode, temperature
        self.safety = safety  # a SafetyConfig, a TOML path or None (defaults), as RunRequest takes
        self.game = game if game is not None else SandboxGame(GameConfig(seed=seed))
        self.run = None
        self.trace: Trace | None = None

    def __enter__(self) -> "SandboxEpisode":
        from ..sandbox.publish import JsonDirPublisher
        from .assemble import RunRequest, assemble

        cfg = self.game.cfg
        self._dir = tempfile.TemporaryDirectory(prefix="ilbot-episode-")
        try:
            self._publisher = JsonDirPublisher(self._dir.name)
            self.run = assemble(RunRequest(model=self.model, source=f"sandbox:{self._dir.name}",
                                           window=(0, 0, cfg.width, cfg.height), mode=self.mode, game=self.game,
                                           seed=self.seed, temperature=self.temperature, safety=self.safety,
                                           realtime=False))
        except BaseException:
            self._dir.cleanup()
            raise
        self.trace = Trace(seed=self.seed, ticks=0, tick_ms=self.run.tick_ms)
        if self.mode == "sandbox":  # what reached the game: every action that passed safety, at its game time
            # (the game's tick, not the run's: a rewind sets the game back, the run's clock runs on)
            self.run.on_plan.append(lambda tick, plan: self.trace.actions.extend(
                ((len(self.trace.states) - 1) * self.run.tick_ms + a.t_ms, a) for a in plan))
        return self

    def tick(self, other: Callable[[int, dict], list] | None = None) -> None:
        k = len(self.trace.states)
        doc = self.game.state()
        self._publisher.publish(doc)
        self.trace.states.append(doc)
        before = len(self.trace.actions)
        if other is None:
            self.run.step()
        else:
            played = other(k, doc)
            self.trace.actions.extend(played)
            self.run.step(played=[a.with_(t_ms=t - k * self.run.tick_ms) for t, a in played])
        self.trace.idle_ticks += int(len(self.trace.actions) == before)
        self.game.tick()

    def mark(self) -> tuple:
        """Where the game and the trace stand now, for `rewind`."""
        t = self.trace
        return self.game.snapshot(), len(t.states), len(t.actions), t.idle_ticks

    def rewind(self, mark: tuple) -> None:
        """Undo the ticks played since `mark` in the game and in the trace: for the game and the
        recording they never happened, and the next tick starts from the same state again. The
        agent's context keeps them (it remembers what it did) and the run's clock runs on."""
        snapshot, n_states, n_actions, idle = mark
        self.game.restore(snapshot)
        del self.trace.states[n_states:], self.trace.actions[n_actions:]
        self.trace.idle_ticks = idle

    def __exit__(self, *exc) -> None:
        try:
            self.run.stop("ticks")
        finally:
            self._dir.cleanup()
        self.trace.ticks = len(self.trace.states)
        self.trace.score, self.trace.misclicks = self.game.score, self.game.misclicks


def play_episode(model, *, seed: int = 0, ticks: int = 200, mode: str = "sandbox", temperature: float = 1.0,
                 on_tick: Callable[[int, object], None] | None = None, game=None, safety=None) -> Episode:
    """The agent plays `ticks` ticks of the sandbox with game seed `seed` (also the sampling seed),
    from a new game, or on from `game` (a `SandboxGame` some other player has been playing), under
    the safety limits `safety` (defaults when None)."""
    t0 = time.perf_counter()
    with SandboxEpisode(model, seed=seed, mode=mode, temperature=temperature, game=game, safety=safety) as ep:
        for k in range(ticks):
            ep.tick()
            if on_tick is not None:
                on_tick(k, ep.game)
    return Episode(trace=ep.trace, game=ep.game, counters=ep.run.counters, seconds=time.perf_counter() - t0)
