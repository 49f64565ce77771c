"""Layer 2, bounds: every performed position is a whole pixel inside the game window (and inside
the user's region when one is set).

Decision (DESIGN §7 leaves clamp-or-drop open): a CLICK or SCROLL outside the area is *dropped*
(clamping would click the window's border, which the model never meant and which may be a
different control or another application); a MOVE or KEY outside it is *clamped* (moving the
cursor to the edge is harmless, and a key's position is only where the cursor happens to be).
Positions are rounded to whole pixels first — the executor performs whole pixels, so what passes
here is exactly what happens. A CLICK's hold time is clamped into [0, max_click_hold_ms].
"""

from __future__ import annotations

import math

from ..data.action import PlannedAction
from ..data.schema import EventType
from ..errors import ConfigError
from .intervention import SafetyLayer


def allowed_area(window_size: tuple[float, float], region=None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive whole-pixel limits: the window, intersected with the region."""
    w, h = window_size
    if not (math.isfinite(w) and math.isfinite(h) and w >= 1 and h >= 1):
        raise ConfigError(f"safety: window size must be at least 1x1 pixels, got {window_size!r}")
    x0, y0, x1, y1 = 0, 0, int(w) - 1, int(h) - 1
    if region is not None:
        rx, ry, rw, rh = region
        x0, y0 = max(x0, math.ceil(rx)), max(y0, math.ceil(ry))
        x1, y1 = min(x1, math.floor(rx + rw) - 1), min(y1, math.floor(ry + rh) - 1)
        if x0 > x1 or y0 > y1:
            raise ConfigError(f"safety.region {tuple(region)} holds no whole pixel inside the {int(w)}x{int(h)} window")
    return x0, y0, x1, y1


class Bounds(SafetyLayer):
    name = "bounds"

    def __init__(self, window_size: tuple[float, float], region=None, max_click_hold_ms: float = 500.0,
                 log_size: int = 1000) -> None:
        super().__init__(log_size)
        self.area = allowed_area(window_size, region)
        self.max_click_hold_ms = float(max_click_hold_ms)

    def inside(self, x: float, y: float) -> bool:
        x0, y0, x1, y1 = self.area
        return x0 <= x <= x1 and y0 <= y <= y1

    def clamp(self, x: float, y: float) -> tuple[float, float]:
        x0, y0, x1, y1 = self.area
        return float(min(max(x, x0), x1)), float(min(max(y, y0), y1))

    def filter(self, action: PlannedAction, now_ms: float) -> PlannedAction | None:
        x, y = float(round(action.x)), float(round(action.y))  # whole pixels, as performed
        a = action if (x, y) == (action.x, action.y) else action.with_(x=x, y=y)
        if not self.inside(x, y):
            if a.type in (EventType.CLICK, EventType.SCROLL):
                self._intervene("out_of_bounds", action, now_ms)
                return None
            cx, cy = self.clamp(x, y)
            self._intervene("clamped", action, now_ms, dropped=False)
            a = a.with_(x=cx, y=cy)
        if a.type == EventType.CLICK and not (0.0 <= a.hold_ms <= self.max_click_hold_ms):
            self._intervene("hold_clamped", a, now_ms, dropped=False)
            a = a.with_(hold_ms=min(max(a.hold_ms, 0.0), self.max_click_hold_ms))
        return a
