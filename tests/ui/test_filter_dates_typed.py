"""The list's discovery-date filter, typed as a risk manager does: click the box that says "from: any", type
the day, Tab, type the other day. (Its first form, a QDateEdit showing "any", took no typed day at all: the
text became "from: any2026…" and the list stayed unfiltered.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pso_desktop.ui.window import MainWindow
from tests.support.ui import shown_ids, unlock


def _discovered(report: dict[str, Any]) -> str:
    return str(report["discovery"]["date"])


def test_typed_days_narrow_the_list(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    bar = screen.filter_bar
    days = sorted(_discovered(r) for r in stored_reports)
    first, last = days[2], days[-3]  # a range that leaves reports out at both ends
    assert days[0] < first and last < days[-1]
    expected = {r["id"] for r in stored_reports if first <= _discovered(r) <= last}

    qtbot.mouseClick(bar.date_from, Qt.MouseButton.LeftButton)
    assert bar.date_from.hasFocus()
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClicks(bar.date_from, first)
    qtbot.keyClick(bar.date_from, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is bar.date_to
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClicks(bar.date_to, last)
    assert bar.date_from.text() == first and bar.date_to.text() == last
    assert shown_ids(window) == expected

    # Up steps the day: the day after ``last`` is in the list too.
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(bar.date_to, Qt.Key.Key_Up)
    assert bar.date_to.text() > last

    # A day that does not exist is not applied, and leaving the box puts back the day that filters.
    qtbot.keyClick(bar.date_to, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(bar.date_to, Qt.Key.Key_Backspace)
    qtbot.keyClicks(bar.date_to, "2026-02-30")
    qtbot.keyClick(bar.date_to, Qt.Key.Key_Tab)
    assert bar.date_to.text() == ""
    assert shown_ids(window) == {r["id"] for r in stored_reports if first <= _discovered(r)}
