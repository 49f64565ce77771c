"""`ScrollingTabs`: a tab widget whose pages scroll when the window is shorter than they need.

Each page added is placed in a frameless, resizable `QScrollArea`, so a tall page (the Train
tab) never makes the window taller than the screen: it gets scroll bars instead, and none when
there is room. A page fills its tab and scrolls only when the tab is shorter than the page's
minimum height, also when the page holds word-wrapped labels (a plain resizable `QScrollArea`
would then lay the page out at its preferred height for the width and scroll far too soon,
hiding the page's lower half). The page itself stays the tab's widget for callers: `indexOf(page)`,
`setCurrentWidget(page)`, `widget(i)` and `currentWidget()` speak of the pages, not their
scroll areas.
"""

from __future__ import annotations

from PyQt6.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget


class _Fill(QWidget):
    """Holds one page; its height for a width is the page's minimum, not its preferred height."""

    def __init__(self, page: QWidget):
        super().__init__()
        self.page = page
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(page)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - what QScrollArea sizes the page by
        return self.minimumSizeHint().height()


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
        area.setWidget(_Fill(page))
        return area

    def area(self, index: int) -> QScrollArea | None:
        """The scroll area holding page `index`."""
        w = super().widget(index)
        return w if isinstance(w, QScrollArea) else None

    def widget(self, index: int) -> QWidget | None:
        area = self.area(index)
        if area is None:
            return super().widget(index)
        inner = area.widget()
        return inner.page if isinstance(inner, _Fill) else inner

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
