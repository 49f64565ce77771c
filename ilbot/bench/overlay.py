"""`ilbot bench overlay` (also `python main.py --bench`): the dry-run overlay's paint time with
100 planned events (ellipses, path, timeline) on an 800x600 ARGB image; the goal is 30 frames per
second or better. Offscreen Qt when there is no display (painting needs no X server).

`paint_time` paints with the overlay's own `Overlay.paint` (the code the widget runs) into an
image; `main(argv)` is `python main.py --bench [--frames N] [--json]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_FRAMES = 300


def add_arguments(p) -> None:
    p.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help=f"frames painted (default {DEFAULT_FRAMES})")


def paint_time(n_events: int = 100, width: int = 800, height: int = 600, frames: int = DEFAULT_FRAMES) -> dict:
    """Paint time of the overlay with `n_events` ellipses, off-screen into an ARGB image of the
    game window's size (the same paint code the widget runs). Needs a QApplication."""
    from PyQt6.QtGui import QImage, QPainter

    from ..data.schema import TICK_MS
    from ..gui.overlay import Overlay, synthetic_plan

    overlay = Overlay()
    overlay.set_plan(synthetic_plan(n_events, width, height), TICK_MS)
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        p = QPainter(image)
        overlay.paint(p, width, height)
        p.end()
        times.append((time.perf_counter() - t0) * 1e3)
    overlay.deleteLater()
    times.sort()
    mean = sum(times) / len(times)
    return {
        "events": n_events, "size": f"{width}x{height}", "frames": frames,
        "paint_mean_ms": round(mean, 3), "paint_p50_ms": round(times[len(times) // 2], 3),
        "paint_p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
        "max_fps": round(1e3 / mean, 1),
    }


def run(args) -> dict:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 - painting needs one
    return paint_time(100, 800, 600, max(1, args.frames))


def main(argv: list[str] | None = None) -> int:
    """`python main.py --bench [--frames N] [--json]`: the figures as text or one JSON object."""
    from .commands import run_and_print

    p = argparse.ArgumentParser(prog="python main.py --bench",
                                description="the dry-run overlay's paint time with 100 ellipses")
    p.add_argument("--bench", action="store_true", help=argparse.SUPPRESS)
    add_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return run_and_print(sys.modules[__name__], p.parse_args(argv))
