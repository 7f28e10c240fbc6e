"""Contrast (WCAG 2.2 AA) and the platform's high-contrast or dark theme.

The clinical colours of ``resources/ui/style.qss`` are used only with a light palette and no high-contrast
request; otherwise ``style-contrast.qss``, which sets no colour of its own (only the palette's roles), lets the
user's palette win. ``AccessibleStyle`` draws the edge of tick boxes, radio buttons and text boxes in a colour
taken from the palette that meets 3:1 (the platform style's light grey was about 1.9:1)."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPalette, QPen
from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleOption, QStyleOptionComplex, QWidget

TEXT_MIN = 4.5  # WCAG 2.2 AA: text (1.4.3)
EDGE_MIN = 3.0  # control boundaries, focus rings and other non-text parts (1.4.11)
_EDGE_SHARE = 0.6  # how much of the text colour the edge takes (the rest is the background)


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast_ratio(one: QColor | str, other: QColor | str) -> float:
    """WCAG 2.2 contrast ratio of two colours, 1 to 21."""
    lighter, darker = sorted((_luminance(QColor(one)), _luminance(QColor(other))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _mix(one: QColor, other: QColor, share: float) -> QColor:
    return QColor.fromRgbF(
        one.redF() * share + other.redF() * (1 - share),
        one.greenF() * share + other.greenF() * (1 - share),
        one.blueF() * share + other.blueF() * (1 - share),
    )


def edge_colour(palette: QPalette) -> QColor:
    """A control's edge from the palette: the text colour softened towards the background, as long as it
    keeps 3:1 against both the window and the input's base (else the text colour itself)."""
    text = palette.color(QPalette.ColorRole.Text)
    edge = _mix(text, palette.color(QPalette.ColorRole.Base), _EDGE_SHARE)
    backgrounds = (palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Window))
    return edge if all(contrast_ratio(edge, b) >= EDGE_MIN for b in backgrounds) else text


def readable(
    colour: QColor | str, palette: QPalette, role: QPalette.ColorRole = QPalette.ColorRole.Base
) -> QColor:
    """``colour`` where it keeps 4.5:1 on the palette's ``role``; else the palette's text colour (a
    high-contrast palette)."""
    wanted = QColor(colour)
    if contrast_ratio(wanted, palette.color(role)) >= TEXT_MIN:
        return wanted
    return palette.color(QPalette.ColorRole.Text)


def wants_palette_colours(palette: QPalette | None = None) -> bool:
    """True when the platform asks for high contrast or a dark scheme, or the palette is dark: then the app
    sets no colour of its own and the user's palette decides."""
    hints = QGuiApplication.styleHints()
    if hints.accessibility().contrastPreference() == Qt.ContrastPreference.HighContrast:
        return True
    if hints.colorScheme() == Qt.ColorScheme.Dark:
        return True
    palette = palette if palette is not None else QGuiApplication.palette()
    return _luminance(palette.color(QPalette.ColorRole.Window)) < 0.2


_EDGED = (
    QStyle.PrimitiveElement.PE_IndicatorCheckBox,  # also a list's tick boxes (the item check uses it)
    QStyle.PrimitiveElement.PE_IndicatorRadioButton,
    QStyle.PrimitiveElement.PE_FrameLineEdit,
    QStyle.PrimitiveElement.PE_Frame,  # a text area's and a list's edge
)


class AccessibleStyle(QProxyStyle):
    """The platform style, with a 3:1 edge (``edge_colour``) drawn over tick boxes, radio buttons, text boxes,
    date boxes, drop-downs and lists, the edges that identify the control (WCAG 1.4.11)."""

    def drawPrimitive(
        self,
        element: QStyle.PrimitiveElement,
        option: QStyleOption,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        super().drawPrimitive(element, option, painter, widget)
        if element not in _EDGED or option.rect.width() < 4 or option.rect.height() < 4:
            return
        _draw_edge(painter, option, round_=element == QStyle.PrimitiveElement.PE_IndicatorRadioButton)

    def drawComplexControl(
        self,
        control: QStyle.ComplexControl,
        option: QStyleOptionComplex,
        painter: QPainter,
        widget: QWidget | None = None,
    ) -> None:
        super().drawComplexControl(control, option, painter, widget)
        # A date box and a drop-down are drawn whole here, not from the primitives above.
        if control in _EDGED_COMPLEX and option.rect.width() >= 4 and option.rect.height() >= 4:
            _draw_edge(painter, option, round_=False)


_EDGED_COMPLEX = (QStyle.ComplexControl.CC_SpinBox, QStyle.ComplexControl.CC_ComboBox)


def _draw_edge(painter: QPainter, option: QStyleOption, *, round_: bool) -> None:
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(edge_colour(option.palette), 1.0))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    rect = QRectF(option.rect).adjusted(0.5, 0.5, -0.5, -0.5)
    if round_:
        painter.drawEllipse(rect)
    else:
        painter.drawRoundedRect(rect, 2.0, 2.0)
    painter.restore()
