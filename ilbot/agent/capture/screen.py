"""`screen`: the game window's pixels as game state, when no plugin exports any (DESIGN §3).

mss grabs the window region; the features are the grey image averaged down to a 16 x 8 grid
(columns x rows: most game windows are wider than tall), 128 = F values in [0, 1], row-major.
Each grid cell is the mean of its block of pixels (area averaging, so a 1 px detail counts in
proportion to its area instead of being hit or missed by point sampling).

The raw JSON of a tick records the region and the grid, so a recorded session can be re-featured
or inspected without the screenshots (which are not kept: 1 MB per tick).
A grab happens at most once per `tick_ms`: the screen has no tick of its own, so this adapter
slices time itself; each grab is a fresh capture (the watchdog only fires if grabbing fails).
"""

from __future__ import annotations

import json
import time

import numpy as np

from ...data.schema import F, TICK_MS
from ...errors import UserError
from .base import Capture, CaptureAdapter, Clock

GRID_W, GRID_H = 16, 8  # GRID_W * GRID_H == F
assert GRID_W * GRID_H == F


def grey_grid(rgb: np.ndarray, grid_w: int = GRID_W, grid_h: int = GRID_H) -> np.ndarray:
    """Area-averaged grey levels of an image [H, W, 3] uint8 → [grid_h * grid_w] float32 in [0, 1]."""
    h, w = rgb.shape[:2]
    if h < grid_h or w < grid_w:
        raise ValueError(f"image {w}x{h} is smaller than the {grid_w}x{grid_h} grid")
    grey = rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # [H, W] (ITU-R 601 luma)
    rows = np.linspace(0, h, grid_h + 1).astype(int)[:-1]  # block start rows [grid_h]
    cols = np.linspace(0, w, grid_w + 1).astype(int)[:-1]  # block start columns [grid_w]
    sums = np.add.reduceat(np.add.reduceat(grey, rows, axis=0), cols, axis=1)  # [grid_h, grid_w]
    counts = np.outer(np.diff(np.append(rows, h)), np.diff(np.append(cols, w)))  # [grid_h, grid_w] pixels per block
    return (sums / counts / 255.0).astype(np.float32).reshape(-1)  # [grid_h * grid_w]


class ScreenAdapter(CaptureAdapter):
    name = "screen"

    def __init__(self, region, spec=None, *, tick_ms: float = TICK_MS, clock: Clock = time.monotonic_ns):
        """`region` is (x, y, width, height) in screen pixels (a window's client area)."""
        super().__init__(None, tick_ms=tick_ms, clock=clock)
        x, y, w, h = (int(v) for v in region)
        if w < GRID_W or h < GRID_H:
            raise UserError(f"screen source: region {w}x{h} is smaller than the {GRID_W}x{GRID_H} feature grid")
        self.region = (x, y, w, h)
        import mss  # lazily: needs a display

        self._mss = mss.MSS() if hasattr(mss, "MSS") else mss.mss()
        self._last_ns: int | None = None
        self._next_tick = 0

    spec_name = "screen"
    # the features' definition is this module's code, not a spec file: versioned by hand
    spec_hash = "screen-grey-16x8-area-v1"

    def describe(self) -> str:
        return "screen:{},{},{},{}".format(*self.region)

    def grab(self) -> np.ndarray:
        """The region's pixels [H, W, 3] uint8 (RGB)."""
        x, y, w, h = self.region
        shot = self._mss.grab({"left": x, "top": y, "width": w, "height": h})
        bgra = np.frombuffer(shot.bgra, np.uint8).reshape(shot.height, shot.width, 4)  # [H, W, 4]
        return bgra[..., 2::-1]  # [H, W, 3] RGB

    def _poll(self) -> Capture | None:
        now = self.clock()
        if self._last_ns is not None and now - self._last_ns < int(self.tick_ms * 1e6):
            return None
        try:
            feats = grey_grid(self.grab())  # [F]
        except Exception:  # noqa: BLE001 - a failed grab (window gone, X error) is a missing state
            self.counters["errors"] += 1
            return None
        self._last_ns = now
        tick = self._next_tick
        self._next_tick += 1
        raw = json.dumps({"screen": {"region": list(self.region), "grid": [GRID_W, GRID_H],
                                     "grey": [round(float(v), 4) for v in feats]}}, separators=(",", ":"))
        return Capture(tick, now, raw, feats)

    def close(self) -> None:
        if not self.closed:
            self._mss.close()
        super().close()
