"""The list's State column is as wide as its longest usual text, a risk manager's "Facility: In review"
(issue 12, outside test: it showed "Facility: In revi…"), at 1366 and at 1024 pixels, with no sideways scroll."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyle

from pso_desktop.services.workstation import Workstation
from pso_desktop.texts import REVIEW_STATE_LABELS, STATE_LABELS
from pso_desktop.ui.reports_model import COLUMNS
from pso_desktop.ui.window import MainWindow
from tests.support.ui import PROFILE, SECRET, unlock

USUAL_STATES = (*STATE_LABELS.values(), f"Facility: {REVIEW_STATE_LABELS['in_review']}")


def _cut(window: MainWindow) -> list[str]:
    """The usual State texts the column would cut, as the table's own cell draws them."""
    table = window.reports_screen.table
    width = table.horizontalHeader().sectionSize([key for key, _ in COLUMNS].index("state"))
    style = table.style()
    margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, table) + 1
    metrics = table.fontMetrics()
    room = width - 2 * margin
    return [text for text in USUAL_STATES if metrics.elidedText(text, Qt.TextElideMode.ElideRight, room) != text]


def test_the_state_column_fits_facility_in_review(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    workstation_factory().create_profile(PROFILE, SECRET)
    window = make_window()
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.width() == 1366)
    unlock(qtbot, window)
    table = window.reports_screen.table
    assert _cut(window) == []
    window.resize(1024, 600)
    qtbot.waitUntil(lambda: table.viewport().width() < 1024)
    qtbot.waitUntil(lambda: _cut(window) == [])
    assert table.horizontalScrollBar().maximum() == 0
