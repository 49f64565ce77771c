"""`Trace`: what one player (the agent or the demonstrator) did in one sandbox episode.

Both sides of the closed-loop evaluation produce one on the same virtual clock — tick k starts at
k·tick_ms — so they compare like for like: every action that reached the game with its time
(ms since tick 0), the state document each tick started from, and the game's own tallies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.action import PlannedAction
from ..data.schema import EventType


@dataclass
class Trace:
    seed: int
    ticks: int
    tick_ms: float
    score: int = 0  # items gathered
    misclicks: int = 0  # clicks that hit no clickable node (the game's count)
    actions: list[tuple[float, PlannedAction]] = field(default_factory=list)  # (t_ms since tick 0, action)
    states: list[dict] = field(default_factory=list)  # [ticks] the state each tick started from
    idle_ticks: int = 0  # ticks on which nothing reached the game

    @property
    def clicks(self) -> int:
        return sum(1 for _, a in self.actions if int(a.type) == EventType.CLICK)

    def tick_of(self, t_ms: float) -> int:
        return min(max(int(t_ms // self.tick_ms), 0), max(len(self.states) - 1, 0))
