"""A label that stays one line high: text wider than the window is cut with an ellipsis, and the whole text is
its tooltip and accessible description (the PSWP banner must not take two lines of a 600-pixel screen). A
shorter wording, when given, is shown instead of cutting the full one."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

# The PSWP label's words where the whole label does not fit one line (it is the banner's tooltip).
PSWP_SHORT = (
    "CONFIDENTIAL - Patient Safety Work Product (42 U.S.C. 299b-22): privileged and confidential. Contains PHI."
)


class OneLineLabel(QLabel):
    def __init__(self, text: str = "", short: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.short = short
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self.setAccessibleDescription(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:
        return QSize(0, super().minimumSizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = self.contentsRect().width() - 2 * self.margin()
        text = self._full
        if self.short and self.fontMetrics().horizontalAdvance(text) > width:
            text = self.short
        shown = self.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, max(width, 0))
        super().setText(shown if width > 0 else self._full)
