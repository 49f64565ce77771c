"""`ilbot bench overlay`: the dry-run overlay's paint time with 100 planned events (ellipses,
path, timeline) on an 800x600 ARGB image; the goal is 30 frames per second or better.
Offscreen Qt when there is no display (painting needs no X server)."""

from __future__ import annotations

import os
import sys


def add_arguments(p) -> None:
    p.add_argument("--frames", type=int, default=300, help="frames painted (default 300)")


def run(args) -> dict:
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6.QtWidgets import QApplication

    from ..gui.overlay import bench_paint

    app = QApplication.instance() or QApplication(sys.argv[:1])  # noqa: F841 - painting needs one
    return bench_paint(100, 800, 600, max(1, args.frames))
