"""`ScrollingTabs`: a tab widget whose pages scroll when the window is shorter than they need.

Each page added is placed in a frameless, resizable `QScrollArea`, so a tall page (the Train
tab) never makes the window taller than the screen: it gets scroll bars instead, and none when
there is room. The page itself stays the tab's widget for callers: `indexOf(page)`,
`setCurrentWidget(page)`, `widget(i)` and `currentWidget()` speak of the pages, not their
scroll areas.
"""

from __future__ import annotations

from PyQt6.QtWidgets import QFrame, QScrollArea, QTabWidget, QWidget


class ScrollingTabs(QTabWidget):
    def addTab(self, page: QWidget, *args) -> int:  # noqa: N802
        return super().addTab(self._wrap(page), *args)

    def insertTab(self, index: int, page: QWidget, *args) -> int:  # noqa: N802
        return super().insertTab(index, self._wrap(page), *args)

    @staticmethod
    def _wrap(page: QWidget) -> QScrollArea:
        area = QScrollArea()
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setWidget(page)
        return area

    def area(self, index: int) -> QScrollArea | None:
        """The scroll area holding page `index`."""
        w = super().widget(index)
        return w if isinstance(w, QScrollArea) else None

    def widget(self, index: int) -> QWidget | None:
        area = self.area(index)
        return area.widget() if area is not None else super().widget(index)

    def currentWidget(self) -> QWidget | None:  # noqa: N802
        return self.widget(self.currentIndex())

    def indexOf(self, page: QWidget) -> int:  # noqa: N802
        for i in range(self.count()):
            if self.widget(i) is page or super().widget(i) is page:
                return i
        return -1

    def setCurrentWidget(self, page: QWidget) -> None:  # noqa: N802
        i = self.indexOf(page)
        if i >= 0:
            self.setCurrentIndex(i)
