"""Issue 8, item 6 and the defects seen in its screenshots, as a user meets them in the real window: the unlock
card as tall as its own page, the list's spare width given to Category, a message that stays with its screen,
a newborn's age in days; control edges and focus rings at 3:1 as drawn, the user's high-contrast palette
winning over the style sheet, and 200 % text at 1366×768 scrolling only vertically."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QAccessible, QColor, QFont, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QStyle,
    QStyleFactory,
    QStyleOptionButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.app import apply_style
from pso_desktop.ui.contrast import EDGE_MIN, TEXT_MIN, contrast_ratio
from pso_desktop.ui.form_fields import GREYED_ROLE, CheckListField
from pso_desktop.ui.one_line_label import OneLineLabel
from pso_desktop.ui.window import MainWindow
from tests.support.keyboard import KeyCounter, focused
from tests.support.ui import PROFILE, SECRET, field_path, new_report, tab_to, unlock

CTRL = Qt.KeyboardModifier.ControlModifier
WIDE = (1366, 768)
# A platform high-contrast theme (as Windows' "High Contrast Black"): the user's palette.
HIGH_CONTRAST_BLACK = {
    QPalette.ColorRole.Window: "#000000",
    QPalette.ColorRole.WindowText: "#ffffff",
    QPalette.ColorRole.Base: "#000000",
    QPalette.ColorRole.AlternateBase: "#000000",
    QPalette.ColorRole.Text: "#ffffff",
    QPalette.ColorRole.Button: "#000000",
    QPalette.ColorRole.ButtonText: "#ffffff",
    QPalette.ColorRole.Highlight: "#1aebff",
    QPalette.ColorRole.HighlightedText: "#000000",
    QPalette.ColorRole.PlaceholderText: "#ffff00",
}


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


# --- contrast, high contrast and large text (WCAG 2.2 AA) -----------------------------------------------------


@pytest.fixture
def styled(qapp: QApplication) -> Iterator[QApplication]:
    """The application as ``pso-desktop`` starts it (apply_style); its style, sheet, palette and font are put
    back after, so the other tests see the plain platform style."""
    style, sheet = qapp.style().name(), qapp.styleSheet()
    palette, font = QPalette(qapp.palette()), QFont(qapp.font())
    apply_style(qapp)
    yield qapp
    qapp.setFont(font)
    qapp.setPalette(palette)
    qapp.setStyleSheet(sheet)
    qapp.setStyle(QStyleFactory.create(style))


def darkest_edge(widget: QWidget, area: QRect, background: QColor) -> float:
    """The best contrast against ``background`` of any pixel drawn in ``area`` of ``widget`` (its edge)."""
    image = widget.grab().toImage()
    return max(
        contrast_ratio(QColor(image.pixel(x, y)), background)
        for x in range(max(area.left(), 0), min(area.right() + 1, image.width()))
        for y in range(max(area.top(), 0), min(area.bottom() + 1, image.height()))
    )


def test_tick_boxes_radio_buttons_text_boxes_and_focus_rings_are_drawn_at_3_to_1(
    qtbot: Any, styled: QApplication
) -> None:
    page = QWidget()
    layout = QVBoxLayout(page)
    tick, radio, text = QCheckBox("Fall"), QRadioButton("Incident"), QLineEdit()
    drop_down, date = QComboBox(), QDateEdit()
    drop_down.addItem("— not answered —")
    answers = QListWidget()
    item = QListWidgetItem("Medication")
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Unchecked)
    answers.addItem(item)
    for widget in (tick, radio, text, drop_down, date, answers):
        layout.addWidget(widget)
    qtbot.addWidget(page)
    page.resize(300, 220)
    page.show()
    page.activateWindow()
    qtbot.waitUntil(page.isActiveWindow)
    window, base = styled.palette().window().color(), styled.palette().base().color()
    option = QStyleOptionButton()
    option.initFrom(tick)
    box = tick.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, option, tick)
    assert darkest_edge(tick, box, window) >= EDGE_MIN  # the platform style's was about 1.9:1
    option.initFrom(radio)
    circle = radio.style().subElementRect(QStyle.SubElement.SE_RadioButtonIndicator, option, radio)
    assert darkest_edge(radio, circle, window) >= EDGE_MIN
    for box in (text, drop_down, date):  # an empty box: its top edge
        assert darkest_edge(box, QRect(0, 0, box.width(), 2), window) >= EDGE_MIN, type(box).__name__
    check = answers.visualItemRect(item)
    check.setWidth(check.height())
    assert darkest_edge(answers.viewport(), check, base) >= EDGE_MIN
    # The focus ring, reached with Tab as a user does: 3:1 against the window around it.
    tick.setFocus()
    qtbot.keyClick(tick, Qt.Key.Key_Tab)
    assert radio.hasFocus()
    qtbot.waitUntil(lambda: darkest_edge(radio, QRect(0, 0, radio.width(), 2), window) >= EDGE_MIN)


def test_the_stylesheet_sets_no_colour_in_a_high_contrast_theme_so_the_users_palette_wins(
    qtbot: Any,
    styled: QApplication,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
) -> None:
    contrast = QPalette()
    for role, colour in HIGH_CONTRAST_BLACK.items():
        contrast.setColor(role, QColor(colour))
    styled.setPalette(contrast)
    apply_style(styled)  # as when the platform says its theme changed
    assert not re.search(r"#[0-9a-fA-F]{3,6}\b", styled.styleSheet())
    window = wide_window(qtbot, make_window, workstation_factory())
    unlock(qtbot, window)
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Down)
    keys.key(Qt.Key.Key_Down)  # Unsafe condition: most categories greyed
    # Every label, banner, chip and input of the list and the form keeps the user's colours.
    overridden = [
        f"{type(w).__name__} {w.objectName()}"
        for w in [*window.findChildren(QLabel), *window.findChildren(QToolButton), *window.findChildren(QLineEdit)]
        if w.palette().color(QPalette.ColorRole.WindowText)
        != QColor(HIGH_CONTRAST_BLACK[QPalette.ColorRole.WindowText])
        or w.palette().color(QPalette.ColorRole.Window) != QColor(HIGH_CONTRAST_BLACK[QPalette.ColorRole.Window])
    ]
    assert overridden == []
    categories = form.fields["categories"]
    assert isinstance(categories, CheckListField)
    greyed = [item for item in categories.items() if item.data(GREYED_ROLE)]
    assert greyed and all(item.font().italic() for item in greyed)  # greyed is not told by colour alone
    # ... nor by sight alone: a screen reader hears it on the answer itself.
    face = QAccessible.queryAccessibleInterface(categories.list)
    assert face is not None
    cells = [face.child(i) for i in range(face.childCount())]
    heard = {cell.text(QAccessible.Text.Name): cell.text(QAccessible.Text.Description) for cell in cells if cell}
    assert all(heard[item.text()].startswith("Greyed out:") for item in greyed), heard
    base = categories.list.palette().base().color()
    assert all(contrast_ratio(item.foreground().color(), base) >= TEXT_MIN for item in greyed)
    # Back to the light theme: the clinical colours again.
    styled.setPalette(QPalette(QColor("#efefef")))
    apply_style(styled)
    assert "#1a5fb4" in styled.styleSheet()


def cut_labels(root: QWidget) -> list[str]:
    """Visible labels whose text does not fit where they are shown."""
    cut = []
    for label in root.findChildren(QLabel):
        if not label.isVisible() or not label.text() or label.objectName() == "qt_scrollarea_viewport":
            continue
        if label.wordWrap():
            fits = label.heightForWidth(label.contentsRect().width()) <= label.contentsRect().height() + 1
        else:
            fits = label.minimumSizeHint().width() <= label.width() + 1 or isinstance(label, OneLineLabel)
        if not fits:
            cut.append(label.text()[:40])
    return cut


def test_at_200_percent_text_on_1366x768_the_list_and_the_form_scroll_only_vertically(
    qtbot: Any,
    styled: QApplication,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
) -> None:
    font = QFont(styled.font())
    font.setPointSizeF(font.pointSizeF() * 2)  # the user's text size doubled
    styled.setFont(font)
    window = wide_window(qtbot, make_window, workstation_factory())
    # The unlock card scrolls, if it must, inside the window (with the training banner it is taller than the
    # screen at this size): the screen can be shorter than its card, and the window fits the screen.
    profile = window.profile_screen
    assert profile.minimumSizeHint().height() < profile.pages.height()
    # Headings grow with the text (a size fixed in the style sheet would leave them smaller than the body).
    for heading in (profile.findChild(QLabel, "appTitle"), profile.findChild(QLabel, "pageHeading")):
        assert heading is not None and heading.font().pointSizeF() > font.pointSizeF()
    assert cut_labels(profile) == []
    assert window.minimumSizeHint().width() <= WIDE[0] and window.minimumSizeHint().height() <= WIDE[1]
    unlock(qtbot, window)
    screen = window.reports_screen
    assert window.width() == WIDE[0] and screen.width() <= WIDE[0]
    assert window.minimumSizeHint().width() <= WIDE[0] and window.minimumSizeHint().height() <= WIDE[1]
    assert screen.table.horizontalScrollBar().maximum() == 0 and cut_labels(screen) == []
    keys = KeyCounter(qtbot)
    editor, form = new_report(qtbot, window, keys)
    qtbot.waitUntil(lambda: form.widget().width() <= form.viewport().width())
    assert form.horizontalScrollBar().maximum() == 0
    # The editor's own bar fits too: Submit is on screen, the window no wider than the screen.
    assert window.size().width() == WIDE[0] and window.minimumSizeHint().width() <= WIDE[0]
    assert window.minimumSizeHint().height() <= WIDE[1]
    for button in (editor.submit_button, editor.delete_button):
        assert button.mapTo(window, QPoint(button.width(), 0)).x() <= window.width()
    # The section list widens with the text: no section's word is cut ("Circumstanc…").
    sections = form.section_list
    room = sections.viewport().width() - 2 * sections.spacing() - 12  # the item's padding
    words = [w for row in range(sections.count()) for w in sections.item(row).text().split()]
    assert max(sections.fontMetrics().horizontalAdvance(word) for word in words) <= room
    # Tab through the whole form: every question shown whole, nothing ever scrolled sideways.
    seen = set()
    for _ in range(70):
        path = field_path(form, focused())
        if path is not None:
            seen.add(path)
            assert form.horizontalScrollBar().value() == 0
            assert cut_labels(form.widget()) == [], path
        keys.tab()
    assert {"narrative", "patient.mrn", "reporter.name"} <= seen


def test_a_chosen_answers_definition_is_heard_with_its_question(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = wide_window(qtbot, make_window, workstation_factory())
    unlock(qtbot, window)
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Down)
    keys.key(Qt.Key.Key_Up)  # Incident
    keys.tab()
    categories = form.fields["categories"]
    assert isinstance(categories, CheckListField) and focused() is categories.list
    keys.key(Qt.Key.Key_Home)
    for _ in range(12):
        if categories.list.currentItem().text() == "Pressure Injury":
            break
        keys.key(Qt.Key.Key_Down)
    keys.key(Qt.Key.Key_Space)
    assert "Pressure Injury" in [
        categories.list.item(r).text()
        for r in range(categories.list.count())
        if categories.list.item(r).checkState() == Qt.CheckState.Checked
    ]
    stage = form.fields["modules.pressure_injury.DE408"]
    tab_to(keys, form, "modules.pressure_injury.DE408", limit=80)
    face = QAccessible.queryAccessibleInterface(stage.focus_target())
    assert face is not None and face.text(QAccessible.Text.Description) == stage.help_text()
    keys.key(Qt.Key.Key_Down)  # the first stage, chosen in the closed drop-down
    assert "Intact skin with non-blanchable redness" in face.text(QAccessible.Text.Description)
