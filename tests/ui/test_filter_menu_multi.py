"""A filter's menu stays open while ticking several choices, like a multi-select (issue 12, outside test: it
closed after each tick, so four harm levels took four openings, and Space did not tick). Real window, real
SQLCipher profile, driven by keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu

from pso_desktop.ui.window import MainWindow
from tests.support.ui import shown_ids, unlock


def test_one_opening_ticks_four_harm_levels_with_space_and_enter(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    bar = window.reports_screen.filter_bar
    qtbot.waitUntil(lambda: len(bar.harm.choices()) > 4, timeout=10_000)
    wanted = [code for code, _ in bar.harm.choices()[:4]]
    seen: dict[str, Any] = {}

    def tick_four() -> None:
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu)
        for index, key in enumerate((Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Space, Qt.Key.Key_Enter)):
            QTest.keyClick(menu, Qt.Key.Key_Down)
            QTest.keyClick(menu, key)
            seen[f"open after tick {index + 1}"] = QApplication.activePopupWidget() is menu and menu.isVisible()
        seen["ticked while open"] = bar.harm.selected()
        QTest.keyClick(menu, Qt.Key.Key_Escape)

    bar.harm.setFocus()
    QTimer.singleShot(200, tick_four)
    qtbot.keyClick(bar.harm, Qt.Key.Key_Space)  # returns when the menu is closed
    assert seen == {
        "open after tick 1": True,
        "open after tick 2": True,
        "open after tick 3": True,
        "open after tick 4": True,
        "ticked while open": tuple(wanted),
    }
    assert QApplication.activePopupWidget() is None
    assert bar.harm.text() == "Harm: 4"
    # The list shows exactly the reports with those harm levels (a plain filter of the same data).
    expected = {str(r["id"]) for r in stored_reports if ((r.get("harm") or {}).get("level") or "") in wanted}
    qtbot.waitUntil(lambda: shown_ids(window) == expected, timeout=10_000)

    # Tab closes too, and Space on a ticked choice unticks it.
    def untick_first_then_tab() -> None:
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu)
        QTest.keyClick(menu, Qt.Key.Key_Down)
        QTest.keyClick(menu, Qt.Key.Key_Space)
        seen["after untick"] = bar.harm.selected()
        QTest.keyClick(menu, Qt.Key.Key_Tab)

    QTimer.singleShot(200, untick_first_then_tab)
    qtbot.keyClick(bar.harm, Qt.Key.Key_Space)
    assert seen["after untick"] == tuple(wanted[1:])
    assert QApplication.activePopupWidget() is None
    assert bar.harm.text() == "Harm: 3"
    expected = {str(r["id"]) for r in stored_reports if ((r.get("harm") or {}).get("level") or "") in wanted[1:]}
    qtbot.waitUntil(lambda: shown_ids(window) == expected, timeout=10_000)
