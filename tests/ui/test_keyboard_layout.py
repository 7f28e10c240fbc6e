"""Issue 8, items 1, 2 and 4, as a keyboard user meets them in the real window at 1024×600: radio groups that
choose with the arrows, a Tab order that never skips the medication part, arrows that pass over greyed-out
categories, no letter that opens a menu or locks after Esc, one key from search to the list; no sideways
scrolling, the focused field in view, sections listed beside the form; a wheel turn never changes an answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QPushButton, QRadioButton

from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.form_fields import CheckListField, ChoiceField, GroupField, RadioField
from pso_desktop.ui.report_form import FOCUS_MARGIN_Y, PROBLEMS, ReportForm
from pso_desktop.ui.window import MainWindow
from tests.support.keyboard import KeyCounter, focused
from tests.support.ui import HEIGHT, WIDTH, field_path, new_report, small_window, tab_to, turn_wheel, unlock

TAB, BACKTAB = Qt.Key.Key_Tab, Qt.Key.Key_Backtab
ADD, REMOVE = "Add medication or substance", "Remove this medication or substance"


def workstation(workstation_factory: Callable[[], Workstation]) -> Workstation:
    return workstation_factory()


def test_harm_level_is_chosen_with_the_arrows_and_its_definition_shows_on_focus(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Space)  # Incident, the first kind of event
    assert form.report()["event_type"] == "incident"
    keys.type("y")  # not a radio group's key: nothing changes
    assert form.report()["event_type"] == "incident"
    tab_to(keys, form, "harm.level")
    harm = form.fields["harm.level"]
    assert isinstance(harm, RadioField)
    assert focused() is harm.buttons["LA20747-4"]  # the group's one Tab stop: its first answer
    assert harm.value() is None
    keys.key(Qt.Key.Key_Down, times=3)
    assert harm.value() == "LA21150-0" and focused() is harm.buttons["LA21150-0"]
    assert harm.buttons["LA21150-0"].isChecked()
    assert harm.help.isVisible() and harm.help.text().startswith("Mild harm: ")
    # The options show their names only; the long definitions are in the help line.
    assert all(":" not in button.text() for button in harm.buttons.values())
    keys.key(Qt.Key.Key_Up)
    assert harm.value() == "LA20749-0" and harm.help.text().startswith("Moderate harm: ")
    keys.tab()
    assert not harm.help.isVisible()
    keys.key(BACKTAB)  # back into the group: on the chosen answer, not the first
    assert focused() is harm.buttons["LA20749-0"]


def test_tab_goes_through_the_medication_part_to_circumstances_and_back_even_after_reopening(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Space)
    tab_to(keys, form, "categories")
    keys.type("Med")
    keys.key(Qt.Key.Key_Space)
    assert form.report()["categories"] == ["A54"]
    group = next(f for f in form.fields.values() if isinstance(f, GroupField))
    for _ in range(60):
        if focused() is group.add_button:
            break
        keys.tab()
    keys.key(Qt.Key.Key_Space)
    assert len(group.entries) == 1
    keys.type("Heparin")  # the entry's first question has the focus

    def walk(direction: Qt.Key, count: int) -> list[str]:
        seen = []
        for _ in range(count):
            keys.key(direction)
            widget = focused()
            seen.append(widget.text() if isinstance(widget, QPushButton) else field_path(form, widget) or "?")
        return seen

    def check_order() -> None:
        start = field_path(form, focused())
        forward = []
        while "← Back to the list" not in forward:
            forward += walk(TAB, 1)
            assert len(forward) < 40, forward
        add = forward.index(ADD)
        assert REMOVE in forward[:add]
        after = forward[add + 1 :]
        assert after[0] == "contributing_factors", forward
        assert "reporter.name" in after
        backward = walk(BACKTAB, len(forward))
        assert backward == [*reversed(forward[:-1]), start]

    first_entry = next(iter(group.entries[0].values()))
    qtbot.wait(10)
    first_entry.focus_target().setFocus()
    check_order()
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        pass
    report_id = form.report_id
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        keys.key(Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        window.open_report(report_id or "")
    group = next(f for f in form.fields.values() if isinstance(f, GroupField))
    assert len(group.entries) == 1
    next(iter(group.entries[0].values())).focus_target().setFocus()
    check_order()


def test_arrows_pass_over_greyed_out_categories(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Down, times=2)  # Unsafe condition: some categories do not fit it
    assert form.report()["event_type"] == "unsafe_condition"
    tab_to(keys, form, "categories")
    categories = form.fields["categories"]
    assert isinstance(categories, CheckListField)
    greyed = {item.text() for item in categories.items() if item.data(Qt.ItemDataRole.UserRole + 1)}
    assert greyed, "the catalogue greys out some categories for an unsafe condition"
    visited = []
    for key in (Qt.Key.Key_Home, *[Qt.Key.Key_Down] * 12, Qt.Key.Key_End, *[Qt.Key.Key_Up] * 12):
        keys.key(key)
        visited.append(categories.list.currentItem().text())
    assert not greyed & set(visited)
    assert len(set(visited)) == categories.list.count() - len(greyed)


def test_letters_typed_after_esc_in_the_file_menu_go_to_the_search_box_and_never_lock(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    keys.key(Qt.Key.Key_F, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window._file_menu.isVisible())
    keys.key(Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window._file_menu.isVisible() and window.menuBar().activeAction() is None)
    # The keyboard is back in the search box, not in the menu bar (where letters open menus).
    qtbot.waitUntil(lambda: focused() is window.reports_screen.search)
    keys.type("fall")
    qtbot.wait(50)
    assert window.is_unlocked
    assert not window._file_menu.isVisible()
    assert window.reports_screen.search.text() == "fall"
    # Lock has a shortcut (Ctrl+L) and no letter of its own.
    assert "&" not in window.lock_action.text()
    assert window.lock_action.shortcut().toString() == "Ctrl+L"


def test_one_key_from_the_search_box_to_the_list(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    stored_reports: list[dict[str, Any]],
) -> None:
    window = make_window()
    window.resize(WIDTH, HEIGHT)
    window.activateWindow()
    unlock(qtbot, window)
    screen = window.reports_screen
    qtbot.waitUntil(lambda: focused() is screen.search)
    keys = KeyCounter(qtbot)
    keys.key(Qt.Key.Key_Down)
    assert focused() is screen.table and screen.table.currentIndex().row() == 0
    keys.key(Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
    screen.search.setFocus()
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        keys.key(Qt.Key.Key_Return)  # in the search box: to the list ...
        assert focused() is screen.table
        qtbot.waitUntil(lambda: screen.table.currentIndex().isValid())
        keys.key(Qt.Key.Key_Return)  # ... and Enter there opens the report
    assert keys.other == 4


def test_nothing_scrolls_sideways_at_1024x600_and_the_focused_field_is_in_view(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    assert window.minimumSizeHint().width() <= WIDTH and window.minimumSizeHint().height() <= HEIGHT
    screen = window.reports_screen
    assert screen.minimumSizeHint().width() <= WIDTH
    banner_line = screen.banner.fontMetrics().lineSpacing()
    assert screen.banner.height() < 2 * banner_line + 20  # one line (with its padding)
    keys = KeyCounter(qtbot)
    editor, form = new_report(qtbot, window, keys)
    qtbot.wait(20)
    assert editor.banner.height() < 2 * banner_line + 20
    assert form.horizontalScrollBar().maximum() == 0
    assert form.widget().width() <= form.viewport().width()
    keys.key(Qt.Key.Key_Space)
    seen_sections = set()
    for _ in range(45):  # every field of an incident, the focused one in view with room around it
        keys.tab()
        widget = focused()
        if not form.widget().isAncestorOf(widget):
            break
        top_left = widget.mapTo(form.viewport(), QPoint(0, 0))
        bottom = top_left.y() + min(widget.height(), 120)
        at_end = form.verticalScrollBar().value() == form.verticalScrollBar().maximum()
        assert top_left.y() >= 0 and (bottom + FOCUS_MARGIN_Y <= form.viewport().height() or at_end), field_path(
            form, widget
        )
        assert top_left.x() >= 0 and form.horizontalScrollBar().value() == 0
        seen_sections.add(form.section_list.currentRow())
    assert len(seen_sections) >= 5  # the section list followed the focus
    assert form.verticalScrollBar().value() > 0
    # The next new report opens at the top left, on its first question.
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        keys.key(Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    new_report(qtbot, window, keys)
    assert form.verticalScrollBar().value() == 0 and form.horizontalScrollBar().value() == 0
    assert field_path(form, focused()) == "event_type"


def test_every_screen_fits_1024x600(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    new_report(qtbot, window, keys)
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        keys.key(Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    with qtbot.waitSignal(window.trends_shown, timeout=10_000):
        keys.key(Qt.Key.Key_T, Qt.KeyboardModifier.ControlModifier)
    hint = window.minimumSizeHint()
    assert hint.width() <= WIDTH and hint.height() <= HEIGHT, hint
    assert window.size().width() == WIDTH and window.size().height() == HEIGHT


def test_the_section_list_goes_to_a_section_and_marks_the_ones_with_problems(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    editor, form = new_report(qtbot, window, keys)
    sections = form.section_list
    titles = [sections.item(row).text() for row in range(sections.count()) if not sections.item(row).isHidden()]
    assert any("Reporter" in title for title in titles) and any("Patient" in title for title in titles)
    # What is left: each section counts its required questions not yet answered, and the count goes down.
    patient_row = next(row for row in range(sections.count()) if "Patient" in sections.item(row).text())
    assert sections.item(patient_row).text().endswith("Patient (3 to answer)")  # record number, gender, age
    sections.setFocus()
    sections.setCurrentRow(patient_row)
    keys.key(Qt.Key.Key_Return)
    assert field_path(form, focused()) == "patient.mrn"
    keys.tab()
    assert field_path(form, focused()) == "patient.name"
    keys.type("Jo Example")  # Submit takes the name where there is no record number: one fewer left
    assert sections.item(patient_row).text().endswith("Patient (2 to answer)")
    with qtbot.waitSignal(editor.invalid, timeout=10_000):
        keys.key(Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    marked = [
        sections.item(row).text() for row in range(sections.count()) if PROBLEMS in sections.item(row).text()
    ]
    assert marked and all("to fix" in text for text in marked)
    sections.setFocus()  # (Shift+Tab from the form reaches it as well)
    reporter_row = next(row for row in range(sections.count()) if "Reporter" in sections.item(row).text())
    sections.setCurrentRow(reporter_row - 1)
    keys.key(Qt.Key.Key_Down)
    keys.key(Qt.Key.Key_Return)
    assert field_path(form, focused()) == "reporter.anonymous"
    assert focused().mapTo(form.viewport(), QPoint(0, 0)).y() >= 0


def test_a_wheel_turn_over_an_unfocused_drop_down_scrolls_the_form_and_changes_nothing(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    ethnicity = form.fields["patient.ethnicity"]
    assert isinstance(ethnicity, ChoiceField)
    form.ensureWidgetVisible(ethnicity.combo, 50, form.viewport().height() // 2)
    before = form.verticalScrollBar().value()
    combo = ethnicity.combo
    assert not combo.hasFocus() and combo.focusPolicy() == Qt.FocusPolicy.StrongFocus
    for _ in range(3):
        turn_wheel(form, combo)  # one notch towards the user: the next answer, were the combo to take it
    qtbot.waitUntil(lambda: form.verticalScrollBar().value() > before)  # the page scrolled instead
    assert ethnicity.value() is None and combo.currentIndex() == 0
    assert not _editor.has_unsaved_changes
    # With the focus (clicked or tabbed to), the wheel does choose, as the clinician means it to.
    combo.setFocus()
    turn_wheel(form, combo)
    qtbot.waitUntil(lambda: combo.currentIndex() == 1)


def test_radio_buttons_show_no_inline_definitions(qtbot: Any) -> None:
    from pso_desktop.domain import load_catalogue

    form = ReportForm(load_catalogue())
    qtbot.addWidget(form)
    for field in form.fields.values():
        if isinstance(field, RadioField):
            for button in field.findChildren(QRadioButton):
                assert len(button.text()) < 40
