"""Issue 8, item 6 and the defects seen in its screenshots, as a user meets them in the real window: the unlock
card as tall as its own page, the list's spare width given to Category, a message that stays with its screen,
and a newborn's age in days."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QApplication

from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from tests.support.keys import KeyCounter, focused
from tests.support.ui import PROFILE, SECRET, field_path, new_report, tab_to, unlock

CTRL = Qt.KeyboardModifier.ControlModifier
WIDE = (1366, 768)


def wide_window(qtbot: Any, make_window: Callable[..., MainWindow], workstation: Workstation) -> MainWindow:
    workstation.create_profile(PROFILE, SECRET)
    window = make_window()
    window.resize(*WIDE)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.width() == WIDE[0])
    return window


def test_the_unlock_card_is_as_tall_as_the_unlock_page(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = wide_window(qtbot, make_window, workstation_factory())
    screen = window.profile_screen
    unlock_page, create_page = screen.pages.widget(0), screen.pages.widget(1)
    assert screen.pages.currentWidget() is unlock_page
    # The page switcher no longer takes the (taller) create page's height: no gaps around the unlock form.
    qtbot.waitUntil(lambda: screen.pages.height() <= unlock_page.sizeHint().height() + 4)
    assert screen.pages.height() < create_page.sizeHint().height()
    # New profile… (Alt+N) shows the taller page whole; back on the unlock page, the card is short again.
    keys = KeyCounter(qtbot)
    keys.key(Qt.Key.Key_N, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: screen.pages.currentWidget() is create_page)
    # Whole: as tall as its wrapped text needs at the card's width.
    qtbot.waitUntil(lambda: screen.pages.height() >= create_page.heightForWidth(create_page.width()) - 4)
    screen.show_unlock_page()
    qtbot.waitUntil(lambda: screen.pages.height() <= unlock_page.sizeHint().height() + 4)


def test_at_1366_the_list_gives_its_spare_width_to_category_and_never_scrolls_sideways(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = wide_window(qtbot, make_window, workstation_factory())
    unlock(qtbot, window)
    table = window.reports_screen.table
    header = table.horizontalHeader()
    widths = [header.sectionSize(column) for column in range(header.count())]
    category = next(
        c for c in range(header.count()) if table.model().headerData(c, Qt.Orientation.Horizontal) == "Category"
    )
    assert widths[category] == max(widths)  # the longest text gets the room, not "At the PSO"
    assert widths[-1] < widths[category] // 2
    assert sum(widths) <= table.viewport().width() and table.horizontalScrollBar().maximum() == 0
    # At 1024 too: nothing scrolls sideways, and Category is still the widest.
    window.resize(1024, 600)
    qtbot.waitUntil(lambda: table.viewport().width() < 1024)
    qtbot.waitUntil(lambda: sum(header.sectionSize(c) for c in range(header.count())) <= table.viewport().width())
    assert table.horizontalScrollBar().maximum() == 0
    assert header.sectionSize(category) == max(header.sectionSize(c) for c in range(header.count()))


def test_the_forms_message_does_not_follow_the_user_to_another_screen(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = wide_window(qtbot, make_window, workstation_factory())
    unlock(qtbot, window)
    keys = KeyCounter(qtbot)
    editor, _form = new_report(qtbot, window, keys)
    with qtbot.waitSignal(editor.invalid, timeout=10_000):
        keys.key(Qt.Key.Key_Return, CTRL)  # Submit an empty report: "Not submitted: … to fix"
    assert window.statusBar().currentMessage().startswith("Not submitted")
    keys.key(Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)  # Back to the list
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.reports_screen)
    assert window.statusBar().currentMessage() == ""
    with qtbot.waitSignal(window.trends_shown, timeout=10_000):
        keys.key(Qt.Key.Key_T, CTRL)
    assert window.statusBar().currentMessage() == ""


def test_a_newborns_age_is_worked_out_in_days_and_a_screen_reader_hears_it(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = wide_window(qtbot, make_window, workstation_factory())
    unlock(qtbot, window)
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    discovered = dt.date.fromisoformat(form.fields["discovery.date"].value())
    keys.tab(2)
    assert field_path(form, focused()) == "discovery.date"
    tab_to(keys, form, "patient.mrn")
    keys.key(Qt.Key.Key_M, CTRL)  # the patient's "more detail": the date of birth is its first question
    assert field_path(form, focused()) == "patient.date_of_birth"
    keys.type((discovered - dt.timedelta(days=5)).isoformat())
    age = form.fields["patient.age_years"]
    assert age.value() == 0 and form.age_note.isVisible()
    assert "5 days old at the discovery date" in form.age_note.text()
    face = QAccessible.queryAccessibleInterface(age.focus_target())
    assert face is not None and "5 days old" in face.text(QAccessible.Text.Description)
    # An older baby: still in days under a year; an adult: in years, the note saying where it came from.
    keys.key(Qt.Key.Key_A, CTRL)
    keys.type((discovered - dt.timedelta(days=40)).isoformat())
    assert age.value() == 0 and "40 days old" in form.age_note.text()
    keys.key(Qt.Key.Key_A, CTRL)
    keys.type(discovered.replace(year=discovered.year - 30).isoformat())
    assert age.value() == 30 and "Worked out from the date of birth" in form.age_note.text()
    assert QApplication.focusWidget() is form.fields["patient.date_of_birth"].focus_target()
