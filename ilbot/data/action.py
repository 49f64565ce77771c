"""A planned action: what the model wants done, in plain Python (no torch).

The planner (ilbot.model) produces these; the safety layers (ilbot.safety) filter them; the
executors (ilbot.agent) perform or show them; the overlay (ilbot.gui) draws them. Keeping the
type here, in the bottom layer, lets safety work without torch (DESIGN §1).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .schema import EventType


@dataclass(frozen=True)
class PlannedAction:
    type: EventType
    t_ms: float  # due time in ms since the start of the tick it was planned for
    x: float  # cursor position in pixels relative to the game window's client area
    y: float
    sigma_x: float = 0.0  # 1σ of the predicted position, pixels
    sigma_y: float = 0.0
    button: int = 0  # Button, CLICK only
    key_action: int = 0  # KeyAction, KEY only
    key_id: int = 0  # index into KEY_VOCAB, KEY only
    scroll_y: int = 0  # ScrollY, SCROLL only
    hold_ms: float = 0.0  # how long a CLICK holds its button
    event_probs: tuple[float, ...] = ()  # P(CLICK, KEY, SCROLL, MOVE) the model gave this slot
    time_q: tuple[float, ...] = ()  # (q10, q50, q90) of this slot's dt, ms
    source: str = "agent"  # "agent", "replay", ...
    meta: dict = field(default_factory=dict, compare=False)

    def with_(self, **changes) -> "PlannedAction":
        return replace(self, **changes)
