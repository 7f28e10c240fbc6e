"""Trends for the risk manager: events discovered per month by kind (stacked bars), and harm (horizontal bars).

Counts only, computed on the database worker (``services.trends``); the charts are painted here with QPainter,
so no charting library is needed. Every figure is also in the text under the charts and in the charts' tooltips,
for screen readers and for anyone who prefers numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QPainter, QPaintEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

if TYPE_CHECKING:  # the services load pydantic and SQLCipher; the screen only needs the type
    from pso_desktop.services.trends import Trends

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#718096")
MARGIN = 28


class MonthlyChart(QWidget):
    """Stacked bars: one per month, one colour per event type, with a legend."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trends: Trends | None = None
        self.setMinimumHeight(180)  # fits a 1024x600 screen; grows with the window
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def show_trends(self, trends: Trends | None) -> None:
        self.trends = trends
        if trends is None:
            self.setToolTip("")
        else:
            lines = [
                f"{month}: " + ", ".join(f"{name} {values[i]}" for name, values in trends.series)
                for i, month in enumerate(trends.months)
            ]
            self.setToolTip("\n".join(lines))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.trends is None:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = painter.fontMetrics()
        line = metrics.height()
        area = QRectF(self.rect()).adjusted(
            MARGIN + metrics.horizontalAdvance("0000"), line * 2, -MARGIN, -line * 2
        )
        months = self.trends.months
        totals = [sum(values[i] for _, values in self.trends.series) for i in range(len(months))]
        top = max(1, max(totals, default=0))
        painter.setPen(self.palette().text().color())
        painter.drawLine(area.bottomLeft(), area.bottomRight())
        painter.drawText(
            QRectF(0, area.top() - line / 2, area.left() - 6, line), Qt.AlignmentFlag.AlignRight, str(top)
        )
        painter.drawText(
            QRectF(0, area.bottom() - line / 2, area.left() - 6, line), Qt.AlignmentFlag.AlignRight, "0"
        )
        slot = area.width() / max(1, len(months))
        for i, month in enumerate(months):
            x = area.left() + i * slot + slot * 0.15
            y = area.bottom()
            for number, (_, values) in enumerate(self.trends.series):
                height = area.height() * values[i] / top
                painter.fillRect(QRectF(x, y - height, slot * 0.7, height), QColor(PALETTE[number % len(PALETTE)]))
                y -= height
            painter.setPen(self.palette().text().color())
            painter.drawText(
                QRectF(area.left() + i * slot, area.bottom() + 2, slot, line),
                Qt.AlignmentFlag.AlignCenter,
                month[2:],
            )
        x = area.left()
        for number, (name, _) in enumerate(self.trends.series):  # the legend, across the top
            painter.fillRect(QRectF(x, 4, line * 0.8, line * 0.8), QColor(PALETTE[number % len(PALETTE)]))
            painter.drawText(QRectF(x + line, 0, 400, line + 4), Qt.AlignmentFlag.AlignVCenter, name)
            x += line + metrics.horizontalAdvance(name) + 2 * line
        painter.end()


class HarmChart(QWidget):
    """Horizontal bars: reports per harm level, most severe first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trends: Trends | None = None
        self.setMinimumHeight(120)

    def show_trends(self, trends: Trends | None) -> None:
        self.trends = trends
        self.setToolTip("" if trends is None else "\n".join(f"{name}: {count}" for name, count in trends.harm))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if self.trends is None:
            return
        painter = QPainter(self)
        metrics = painter.fontMetrics()
        label_width = max(metrics.horizontalAdvance(name) for name, _ in self.trends.harm) + 12
        row = self.height() / max(1, len(self.trends.harm))
        top = max(1, max(count for _, count in self.trends.harm))
        width = self.width() - label_width - MARGIN - metrics.horizontalAdvance("00000")
        for i, (name, count) in enumerate(self.trends.harm):
            y = i * row
            painter.setPen(self.palette().text().color())
            painter.drawText(
                QRectF(0, y, label_width - 6, row),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                name,
            )
            bar = width * count / top
            painter.fillRect(QRectF(label_width, y + row * 0.2, bar, row * 0.6), QColor(PALETTE[0]))
            painter.drawText(QRectF(label_width + bar + 4, y, 80, row), Qt.AlignmentFlag.AlignVCenter, str(count))
        painter.end()


class TrendsScreen(QWidget):
    """The trends page; ``show_trends`` fills it, ``clear`` (on lock) empties it."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trendsScreen")
        self.back_action = QAction("← &Back to the list", self)
        self.back_action.setShortcut(QKeySequence("Alt+Left"))
        self.back_action.triggered.connect(self.closed)
        self.addAction(self.back_action)
        back = QPushButton(self.back_action.text().replace("&", ""))
        back.clicked.connect(self.back_action.trigger)
        self.heading = QLabel()
        self.heading.setObjectName("editorHeading")
        top = QHBoxLayout()
        top.addWidget(back)
        top.addWidget(self.heading, 1)
        self.monthly = MonthlyChart()
        self.monthly.setAccessibleName("Events discovered per month, by kind")
        self.harm = HarmChart()
        self.harm.setAccessibleName("Harm to patients")
        self.summary = QLabel()
        self.summary.setObjectName("trendsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(QLabel("Events discovered per month, by kind"))
        layout.addWidget(self.monthly, 2)
        layout.addWidget(QLabel("Harm to the patient: incidents, by the harm level given in the report"))
        layout.addWidget(self.harm, 1)
        layout.addWidget(self.summary)

    def show_trends(self, trends: Trends, *, filtered: bool = False) -> None:
        """Shows ``trends``; ``filtered`` when they count only the reports the list shows (its filters)."""
        first, last = trends.months[0], trends.months[-1]
        scope = " among the reports the list shows" if filtered else ""
        self.heading.setText(f"Trends, {first} to {last}: {trends.total:,} events discovered{scope}")
        self.monthly.show_trends(trends)
        self.harm.show_trends(trends)
        kinds = "; ".join(f"{name}: {sum(values):,}" for name, values in trends.series)
        harm = "; ".join(f"{name}: {count:,}" for name, count in trends.harm)
        self.summary.setText(f"By kind — {kinds}.\nIncidents by harm — {harm}.")

    def clear(self) -> None:
        self.heading.clear()
        self.summary.clear()
        self.monthly.show_trends(None)
        self.harm.show_trends(None)
