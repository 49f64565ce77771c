"""Live training and validation loss curves (pyqtgraph), fed with `metrics.jsonl` documents.

`add(doc)` takes one document as `ilbot train` writes it (kind "train" or "val", with `step` and
`loss`) — from a live `--progress-json` stream or a finished run's file (`load(run)`); other kinds
are ignored. The x axis is the optimizer step; the legend names the curves that have points.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyqtgraph as pg
from PyQt6.QtWidgets import QWidget

TRAIN_PEN = pg.mkPen((40, 110, 200), width=2)
VAL_PEN = pg.mkPen((220, 110, 20), width=2)
LEGEND = {"train": "training", "val": "validation"}
MAX_DOTS = 60
MIN_HEIGHT = 110  # the Train tab fits the default window without scrolling


class LossCurves(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, background="w")
        self.setMinimumHeight(MIN_HEIGHT)
        self.showGrid(x=True, y=True, alpha=0.3)
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss")
        self.legend = self.addLegend(offset=(-10, 10), brush=(255, 255, 255, 210), labelTextColor=(40, 40, 40))
        self.train_curve = self.plot([], [], pen=TRAIN_PEN)
        self.val_curve = self.plot([], [], pen=VAL_PEN, symbol="o", symbolSize=6, symbolBrush=(220, 110, 20))
        self.points: dict[str, list[tuple[int, float]]] = {"train": [], "val": []}

    def clear_curves(self) -> None:
        self.points = {"train": [], "val": []}
        self._redraw()

    def add(self, doc: dict) -> bool:
        """Add one metrics document; True when it was a train/val point."""
        kind, loss, step = doc.get("kind"), doc.get("loss"), doc.get("step")
        if kind not in self.points or not isinstance(loss, (int, float)) or not isinstance(step, int):
            return False
        if not math.isfinite(loss):
            return False
        pts = self.points[kind]
        while pts and pts[-1][0] >= step:  # a resumed run repeats steps after its checkpoint
            pts.pop()
        pts.append((step, float(loss)))
        self._redraw()
        return True

    def load(self, run) -> int:
        """Show the curves of a run folder's metrics.jsonl; returns the points read."""
        self.clear_curves()
        n = 0
        try:
            lines = (Path(run) / "metrics.jsonl").read_text().splitlines()
        except OSError:
            return 0
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):
                n += self.add(doc)
        return n

    def legend_names(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    def _redraw(self) -> None:
        for kind, curve in (("train", self.train_curve), ("val", self.val_curve)):
            pts = self.points[kind]
            curve.setData([p[0] for p in pts], [p[1] for p in pts])
        # a dot per validation while they are few; a plain line once dots would merge into a band
        self.val_curve.setSymbol("o" if len(self.points["val"]) <= MAX_DOTS else None)
        named = [LEGEND[k] for k in ("train", "val") if self.points[k]]
        if named != self.legend_names():  # the legend names only the curves that have points
            self.legend.clear()
            for kind, curve in (("train", self.train_curve), ("val", self.val_curve)):
                if self.points[kind]:
                    self.legend.addItem(curve, LEGEND[kind])
