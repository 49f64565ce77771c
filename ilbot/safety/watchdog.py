"""Layer 7, the stale-state watchdog: no fresh game state for `stale_ticks` ticks in a row →
pause (every action is dropped, "stale_state") until fresh state arrives again.

The runtime tells it once per tick whether the capture adapter produced a fresh state
(`observe(fresh)`); a source that stops producing (a crashed game client, a frozen plugin) thus
stops the agent instead of letting it act on an old picture of the game.
"""

from __future__ import annotations

from ..data.action import PlannedAction
from .intervention import SafetyLayer


class StaleStateWatchdog(SafetyLayer):
    name = "watchdog"

    def __init__(self, stale_ticks: int, log_size: int = 1000) -> None:
        super().__init__(log_size)
        self.stale_ticks = int(stale_ticks)
        self.missed = 0  # ticks in a row without fresh state

    @property
    def stale(self) -> bool:
        return self.missed >= self.stale_ticks

    def observe(self, fresh: bool) -> bool:
        """Note one tick; returns True while the state is stale (the agent must pause)."""
        self.missed = 0 if fresh else self.missed + 1
        return self.stale

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        if self.stale:
            self._intervene("stale_state", action, now_ms)
            return None
        return action

    def reset(self) -> None:
        self.missed = 0
