"""Trends for the risk manager: events per month (a run chart, with its median line), by category, by harm level
and by unit, of what the list shows; a bar clicked (or chosen with the arrows and Enter) filters the list to it.

Counts only, computed in SQL on the database worker (``services.trends``); the charts are painted here with
QPainter rather than Qt Charts (measured: the PySide6-Addons wheel that carries Qt Charts is 175 MB to download
and 439 MB installed, against 234 MB for all of PySide6-Essentials; see docs/performance.md). Every figure is
also a tooltip on its bar, the chart's accessible description, and the text under the charts.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QFocusEvent,
    QHelpEvent,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.ui.one_line_label import PSWP_SHORT, OneLineLabel

if TYPE_CHECKING:  # the services load pydantic and SQLCipher; the screen only needs the types
    from pso_desktop.services.trends import Bar, Trends

BAR_COLOUR = "#2b6cb0"
CURRENT_COLOUR = "#dd6b20"  # the bar the keyboard is on, when the chart has the focus
MEDIAN_COLOUR = "#c53030"
MARGIN = 8


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def month_name(month: str) -> str:
    """ "2026-01" -> "Jan 2026"; anything else as it is."""
    year, _, number = month.partition("-")
    if len(month) == 7 and year.isdigit() and number.isdigit() and 1 <= int(number) <= 12:
        return f"{MONTHS[int(number) - 1]} {year}"
    return month


class BarChart(QWidget):
    """Bars that can be chosen: vertical (months, with the median as a dashed line) or horizontal (labels).
    Left/Right or Up/Down move between bars, Enter or a click emits ``chosen`` with the bar; a tooltip gives
    each bar's figure; the accessible description holds them all."""

    chosen = Signal(object)  # the Bar

    def __init__(self, title: str, *, vertical: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.vertical = vertical
        self.bars: tuple[Bar, ...] = ()
        self.median: float | None = None
        self.current = 0
        self.setAccessibleName(title)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # --- content -----------------------------------------------------------------------------------------

    def show_bars(self, bars: tuple[Bar, ...], median: float | None = None) -> None:
        self.bars = bars
        self.median = median
        self.current = min(self.current, max(0, len(bars) - 1))
        self.setAccessibleDescription(self.text())
        self.update()

    def text(self) -> str:
        """Every figure of the chart, as a sentence (the accessible description and the summary's line)."""
        if not self.bars:
            return f"{self.title}: none."
        figures = "; ".join(f"{self.label(bar)}: {bar.count:,}" for bar in self.bars)
        median = "" if self.median is None else f" Median {self.median:g} a month."
        return f"{self.title} — {figures}.{median}"

    def bar_text(self, index: int) -> str:
        bar = self.bars[index]
        hint = " — Enter or click shows them in the list" if bar.narrow else ""
        return f"{self.label(bar)}: {bar.count:,}{hint}"

    def label(self, bar: Bar) -> str:
        """A bar's name in words: a month as "Jan 2026" (not "2026-01", nor the "26-01" once drawn)."""
        return month_name(bar.label) if self.vertical else bar.label

    # --- geometry ----------------------------------------------------------------------------------------

    def _label_width(self) -> float:
        metrics = self.fontMetrics()
        widest = max((metrics.horizontalAdvance(bar.label) for bar in self.bars), default=0)
        return float(min(widest + 16, self.width() * 0.45))

    def _plot(self) -> QRectF:
        metrics = self.fontMetrics()
        if self.vertical:
            return QRectF(self.rect()).adjusted(
                MARGIN + metrics.horizontalAdvance("00000"),
                metrics.height() / 2 + 2,
                -MARGIN,
                -2 * metrics.height() - 4,  # the month, and the year under January and the first month
            )
        return QRectF(self.rect()).adjusted(self._label_width(), 2, -metrics.horizontalAdvance("000000"), -2)

    def _top(self) -> int:
        return max(1, max((bar.count for bar in self.bars), default=0))

    def bar_rect(self, index: int) -> QRectF:
        """Where bar ``index`` is drawn (its full slot, for clicks and tooltips)."""
        plot = self._plot()
        count = max(1, len(self.bars))
        if self.vertical:
            slot = plot.width() / count
            return QRectF(plot.left() + index * slot, plot.top(), slot, plot.height())
        slot = plot.height() / count
        return QRectF(0, plot.top() + index * slot, self.width(), slot)

    def bar_at(self, point: QPointF) -> int | None:
        for index in range(len(self.bars)):
            if self.bar_rect(index).contains(point):
                return index
        return None

    # --- painting ----------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.bars:
            return
        painter = QPainter(self)
        self.paint(painter)
        painter.end()

    def paint(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text_colour = self.palette().text().color()
        metrics = painter.fontMetrics()
        line = metrics.height()
        plot = self._plot()
        top = self._top()
        focused = self.hasFocus()
        for index, bar in enumerate(self.bars):
            slot = self.bar_rect(index)
            colour = QColor(CURRENT_COLOUR if focused and index == self.current else BAR_COLOUR)
            painter.setPen(text_colour)
            if self.vertical:
                height = plot.height() * bar.count / top
                painter.fillRect(
                    QRectF(slot.left() + slot.width() * 0.15, plot.bottom() - height, slot.width() * 0.7, height),
                    colour,
                )
                name = self.label(bar)
                month, _, year = name.partition(" ")
                # Narrow bars (large text, a small window): every second or third month named, never overlapping.
                widest = max(metrics.horizontalAdvance(name) for name in MONTHS)
                every = max(1, math.ceil((widest + 6) / max(slot.width(), 1)))
                if index % every == 0:
                    painter.drawText(
                        QRectF(slot.left() - slot.width(), plot.bottom() + 2, 3 * slot.width(), line),
                        Qt.AlignmentFlag.AlignCenter,
                        month,
                    )
                if year and (index == 0 or month == "Jan"):
                    painter.drawText(
                        QRectF(slot.left() - slot.width(), plot.bottom() + 2 + line, 3 * slot.width(), line),
                        Qt.AlignmentFlag.AlignCenter,
                        year,
                    )
            else:
                width = plot.width() * bar.count / top
                painter.drawText(
                    QRectF(0, slot.top(), plot.left() - 6, slot.height()),
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                    metrics.elidedText(bar.label, Qt.TextElideMode.ElideRight, int(plot.left() - 8)),
                )
                thickness = min(slot.height() * 0.7, line * 1.5)
                painter.fillRect(QRectF(plot.left(), slot.center().y() - thickness / 2, width, thickness), colour)
                painter.drawText(
                    QRectF(plot.left() + width + 4, slot.top(), 80, slot.height()),
                    Qt.AlignmentFlag.AlignVCenter,
                    f"{bar.count:,}",
                )
        if self.vertical:
            painter.setPen(text_colour)
            painter.drawLine(plot.bottomLeft(), plot.bottomRight())
            for value, y in ((top, plot.top()), (0, plot.bottom())):
                painter.drawText(
                    QRectF(0, y - line / 2, plot.left() - 6, line), Qt.AlignmentFlag.AlignRight, str(value)
                )
            if self.median is not None:
                y = plot.bottom() - plot.height() * self.median / top
                pen = QPen(QColor(MEDIAN_COLOUR), 2, Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
                label = f"median {self.median:g}"
                box = QRectF(plot.left() + 2, y - line - 2, metrics.horizontalAdvance(label) + 6, line)
                painter.fillRect(box, self.palette().window())
                painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)

    # --- the mouse and the keyboard ------------------------------------------------------------------------

    def event(self, event: object) -> bool:
        if isinstance(event, QHelpEvent) and event.type() == QHelpEvent.Type.ToolTip:
            index = self.bar_at(QPointF(event.pos()))
            if index is None:
                QToolTip.hideText()
                event.ignore()
            else:
                QToolTip.showText(event.globalPos(), self.bar_text(index), self, self.bar_rect(index).toRect())
            return True
        return super().event(event)  # type: ignore[arg-type]

    def mousePressEvent(self, event: QMouseEvent) -> None:
        index = self.bar_at(event.position())
        if index is not None and event.button() == Qt.MouseButton.LeftButton:
            self.current = index
            self.update()
            self._choose()
        else:
            super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = Qt.Key(event.key())
        step = {
            Qt.Key.Key_Left: -1,
            Qt.Key.Key_Up: -1,
            Qt.Key.Key_Right: 1,
            Qt.Key.Key_Down: 1,
        }.get(key)
        if self.bars and step is not None:
            self.current = max(0, min(len(self.bars) - 1, self.current + step))
        elif self.bars and key == Qt.Key.Key_Home:
            self.current = 0
        elif self.bars and key == Qt.Key.Key_End:
            self.current = len(self.bars) - 1
        elif self.bars and key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space):
            self._choose()
            return
        else:
            super().keyPressEvent(event)
            return
        self._announce()

    def focusInEvent(self, event: QFocusEvent) -> None:
        super().focusInEvent(event)
        if self.bars:
            self._announce()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        super().focusOutEvent(event)
        self.update()

    def _announce(self) -> None:
        """The current bar's figure where the keyboard user (and a screen reader) finds it."""
        text = self.bar_text(self.current)
        self.setAccessibleDescription(f"{text}. {self.text()}")
        self.setToolTip(text)
        QToolTip.showText(self.mapToGlobal(self.bar_rect(self.current).center().toPoint()), text, self)
        self.update()

    def _choose(self) -> None:
        if self.bars and self.bars[self.current].narrow:
            self.chosen.emit(self.bars[self.current])


def png_name(today: dt.date | None = None) -> str:
    """A file name with no PHI: ``pso-trends-2026-12-06.png``."""
    return f"pso-trends-{(today or dt.date.today()).isoformat()}.png"


class TrendsScreen(QWidget):
    """The trends page; ``show_trends`` fills it, ``clear`` (on lock) empties it. ``bar_chosen`` asks the window
    to filter the list to a bar; ``drafts_changed`` to count again with or without drafts; ``png_requested``
    to write the PNG (bytes, path) with its audit entry on the worker."""

    closed = Signal()
    bar_chosen = Signal(object)  # the Bar
    drafts_changed = Signal(bool)
    png_requested = Signal(bytes, object)  # PNG data, Path

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("trendsScreen")
        self.trends: Trends | None = None
        self.banner = OneLineLabel(short=PSWP_SHORT)
        self.banner.setObjectName("pswpBanner")
        self.banner.setAccessibleName("Confidentiality notice")
        self.back_action = QAction("← &Back to the list", self)
        self.back_action.setShortcut(QKeySequence("Alt+Left"))
        self.back_action.triggered.connect(self.closed)
        self.addAction(self.back_action)
        back = QPushButton(self.back_action.text().replace("&", ""))
        back.clicked.connect(self.back_action.trigger)
        self.heading = QLabel()
        self.heading.setObjectName("editorHeading")
        self.drafts = QCheckBox("Count &drafts too")
        self.drafts.setToolTip(
            "Events are the reports sent or received; tick to count drafts (never sent) as well"
        )
        self.drafts.toggled.connect(self.drafts_changed)
        self.png_action = QAction("Save as &PNG…", self)
        self.png_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.png_action.setToolTip(
            "Save the charts as a PNG picture, with the confidentiality label (Ctrl+Shift+S)"
        )
        self.png_action.triggered.connect(self._choose_png)
        self.addAction(self.png_action)
        png = QPushButton("Save as PNG…")
        png.setToolTip(self.png_action.toolTip())
        png.clicked.connect(self.png_action.trigger)
        top = QHBoxLayout()
        top.addWidget(back)
        top.addWidget(self.heading, 1)
        top.addWidget(self.drafts)
        top.addWidget(png)
        self.monthly = BarChart("Events per month", vertical=True)
        self.category = BarChart("Events by category")
        self.harm = BarChart("Incidents by harm to the patient")
        self.unit = BarChart("Events by unit")
        self.charts = (self.monthly, self.category, self.harm, self.unit)
        self.chart_area = QWidget()
        grid = QGridLayout(self.chart_area)
        grid.setContentsMargins(0, 0, 0, 0)
        for number, chart in enumerate(self.charts):
            chart.chosen.connect(self.bar_chosen)
            title = QLabel(chart.title)
            title.setBuddy(chart)
            box = QVBoxLayout()
            box.setSpacing(2)
            box.addWidget(title)
            box.addWidget(chart, 1)
            grid.addLayout(box, number // 2, number % 2)
        self.summary = QLabel()
        self.summary.setObjectName("trendsSummary")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        # The charts and their figures scroll vertically when the window is short for them (large text on a
        # small screen), instead of making the window taller than the screen.
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.chart_area, 1)
        column.addWidget(self.summary)
        scroll = QScrollArea()
        scroll.setObjectName("trendsScroll")
        scroll.setWidget(page)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout = QVBoxLayout(self)
        layout.addWidget(self.banner)
        layout.addLayout(top)
        layout.addWidget(scroll, 1)
        self.setTabOrder(back, self.drafts)
        self.setTabOrder(self.drafts, png)
        self.setTabOrder(png, self.monthly)
        for before, after in zip(self.charts, self.charts[1:], strict=False):
            self.setTabOrder(before, after)

    def show_trends(self, trends: Trends, *, filtered: bool = False) -> None:
        """Shows ``trends``; ``filtered`` when they count only the reports the list shows (its filters)."""
        from pso_desktop.services.workstation import PSWP_LABEL

        self.banner.setText(PSWP_LABEL)
        self.trends = trends
        first, last = trends.months[0], trends.months[-1]
        scope = " among the reports the list shows" if filtered else ""
        what = "events and drafts" if trends.drafts else "events"
        self.heading.setText(
            f"Trends, {month_name(first)} to {month_name(last)}: {trends.total:,} {what} discovered{scope}"
        )
        self.heading.setToolTip(self.heading.text())
        with_drafts = self.drafts.blockSignals(True)
        self.drafts.setChecked(trends.drafts)
        self.drafts.blockSignals(with_drafts)
        self.monthly.show_bars(trends.by_month, trends.median)
        self.category.show_bars(trends.by_category)
        self.harm.show_bars(trends.by_harm)
        self.unit.show_bars(trends.by_unit)
        kinds = "; ".join(f"{name}: {sum(values):,}" for name, values in trends.series)
        self.summary.setText("\n".join([*(chart.text() for chart in self.charts), f"By kind — {kinds}."]))

    def clear(self) -> None:
        self.trends = None
        self.heading.clear()
        self.summary.clear()
        for chart in self.charts:
            chart.show_bars(())

    # --- PNG ---------------------------------------------------------------------------------------------

    def png_bytes(self) -> bytes:
        """The four charts as one PNG, the PSWP label above them and the heading and summary below."""
        from pso_desktop.services.workstation import PSWP_LABEL

        charts = self.chart_area.grab().toImage()
        width = max(charts.width(), 800)
        metrics = self.fontMetrics()
        flags = Qt.TextFlag.TextWordWrap
        label_rect = metrics.boundingRect(0, 0, width - 16, 10_000, flags, PSWP_LABEL)
        words = f"{self.heading.text()}\n{self.summary.text()}"
        words_rect = metrics.boundingRect(0, 0, width - 16, 10_000, flags, words)
        height = label_rect.height() + charts.height() + words_rect.height() + 40
        image = QImage(width, height, QImage.Format.Format_RGB32)
        image.fill(QColor("white"))
        painter = QPainter(image)
        painter.setFont(self.font())
        painter.setPen(QColor("#7b341e"))
        y = 8
        painter.drawText(QRectF(8, y, width - 16, label_rect.height()), int(flags), PSWP_LABEL)
        y += label_rect.height() + 8
        painter.drawImage(0, y, charts)
        y += charts.height() + 8
        painter.setPen(QColor("black"))
        painter.drawText(QRectF(8, y, width - 16, words_rect.height()), int(flags), words)
        painter.end()
        image.setText("Confidentiality", PSWP_LABEL)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stubs say bytes; PySide6 takes str
        buffer.close()
        return bytes(data.data())

    def _choose_png(self) -> None:
        if self.trends is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the charts as PNG", png_name(), "PNG picture (*.png)")
        if path:
            if not path.lower().endswith(".png"):
                path += ".png"
            self.png_requested.emit(self.png_bytes(), Path(path))
