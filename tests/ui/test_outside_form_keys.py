"""Issue 8, outside test: what a nurse typing quickly in the real form met (keys only, the app's style sheet)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QPlainTextEdit,
    QRadioButton,
    QStyle,
    QStyleOptionButton,
)
from pytestqt.qtbot import QtBot

from pso_desktop.domain.catalogue import load_catalogue
from pso_desktop.paths import resources_dir
from pso_desktop.ui.app import STYLE_SHEET
from pso_desktop.ui.editor_screen import new_report
from pso_desktop.ui.form_fields import CheckField, CheckListField, LineField
from pso_desktop.ui.report_form import ReportForm

FOCUS_RING = "#1a5fb4"  # resources/ui/style.qss


def _form(qtbot: QtBot) -> ReportForm:
    catalogue = load_catalogue()
    form = ReportForm(catalogue)
    form.setStyleSheet((resources_dir() / STYLE_SHEET).read_text(encoding="utf-8"))  # this form only
    qtbot.addWidget(form)
    form.load(new_report(catalogue))
    form.resize(1000, 580)
    form.show()
    qtbot.waitExposed(form)
    return form


def _into_reporter_name(qtbot: QtBot, form: ReportForm) -> None:
    name = form.fields["reporter.name"]
    assert isinstance(name, LineField)
    form.ensureWidgetVisible(name)
    QTest.mouseClick(name.edit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(name.edit.hasFocus)


def _key(widget: object, key: Qt.Key, times: int = 1) -> None:
    for _ in range(times):
        focused = QApplication.focusWidget()
        assert focused is not None
        QTest.keyClick(focused, key)


def test_space_after_a_typed_letter_ends_the_search(qtbot: QtBot) -> None:
    """'e', Space, 'pa', Space typed at speed ticks Environment and Patient factors. Qt's own search took the
    Space as a letter ('e '), found nothing for 'e pa', and the second Space unticked Environment again."""
    form = _form(qtbot)
    factors = form.fields["contributing_factors"]
    assert isinstance(factors, CheckListField)
    _into_reporter_name(qtbot, form)
    _key(form, Qt.Key.Key_Backtab, 5)  # anonymously, family notified, preventable, handover, the factors
    assert QApplication.focusWidget() is factors.list
    QTest.keyClicks(factors.list, "e")
    QTest.keyClick(factors.list, Qt.Key.Key_Space)
    QTest.keyClicks(factors.list, "pa")
    QTest.keyClick(factors.list, Qt.Key.Key_Space)
    assert factors.value() == ["environment", "patient_factors"]
    # The same letter again goes on to the next answer with it, as in Qt's lists: p → Policies, p → Patient.
    QTest.keyClick(factors.list, Qt.Key.Key_Space)  # untick Patient factors
    QTest.keyClicks(factors.list, "c")
    QTest.keyClick(factors.list, Qt.Key.Key_Space)
    assert set(factors.value() or ()) == {"environment", "communication"}


def test_a_letter_passes_over_a_greyed_category(qtbot: QtBot) -> None:
    """On an unsafe condition the categories that do not fit are greyed (italic); the arrows pass over them,
    and so does a typed letter (Qt's search landed on them, and Space then ticked a category that does not
    fit)."""
    form = _form(qtbot)
    categories = form.fields["categories"]
    assert isinstance(categories, CheckListField)
    radios = form.fields["event_type"].findChildren(QRadioButton)
    QTest.mouseClick(radios[0], Qt.MouseButton.LeftButton)  # Incident
    qtbot.waitUntil(radios[0].hasFocus)
    _key(form, Qt.Key.Key_Down, 2)  # Unsafe condition
    assert radios[2].isChecked()
    _key(form, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is categories.list
    greyed = [item.text() for item in categories.items() if item.font().italic()]
    assert greyed, "an unsafe condition greys some categories"
    for text in greyed:
        QTest.keyClicks(categories.list, text[:4].lower())
        current = categories.list.currentItem()
        assert current is None or not current.font().italic(), f"typing {text[:4]!r} went to {current.text()!r}"
        QTest.qWait(QApplication.keyboardInputInterval() + 50)  # the next letters start a new search
    assert categories.value() is None


def test_a_focused_tick_box_shows_its_whole_text(qtbot: QtBot) -> None:
    """'Report anonymously' reached by Tab read 'Report anonymousl': the ring and padding added on focus made
    the tick box wider than the room it was given, which was only as wide as its text."""
    form = _form(qtbot)
    _into_reporter_name(qtbot, form)
    _key(form, Qt.Key.Key_Backtab)
    anonymous = form.fields["reporter.anonymous"]
    assert isinstance(anonymous, CheckField)
    box: QCheckBox = anonymous.box
    assert QApplication.focusWidget() is box
    option = QStyleOptionButton()
    option.initFrom(box)  # with the focus, as it is drawn now
    option.text = box.text()
    assert option.state & QStyle.StateFlag.State_HasFocus
    text = QFontMetrics(box.font()).size(Qt.TextFlag.TextShowMnemonic, box.text())
    needed = box.style().sizeFromContents(QStyle.ContentsType.CT_CheckBox, option, text, box)
    assert box.width() >= needed.width(), f"{box.width()} px given, {needed.width()} px needed focused"


def test_the_answer_space_ticks_is_shown_when_tab_reaches_a_list(qtbot: QtBot) -> None:
    """Tab into a tick-box list showed no answer highlighted, yet Space ticked the first ('Incorrect patient'
    appeared ticked in a medication report); and a new report showed the answer highlighted in the last one."""
    form = _form(qtbot)
    factors = form.fields["contributing_factors"]
    assert isinstance(factors, CheckListField)
    _into_reporter_name(qtbot, form)
    _key(form, Qt.Key.Key_Backtab, 5)
    assert QApplication.focusWidget() is factors.list
    shown = factors.list.selectedItems()
    assert [item.text() for item in shown] == ["Communication"], "the answer Space would tick is highlighted"
    QTest.keyClicks(factors.list, "e")
    QTest.keyClick(factors.list, Qt.Key.Key_Space)
    assert factors.value() == ["environment"]

    form.load(new_report(form.catalogue))  # the next report, in the same form
    assert factors.list.selectedItems() == [], "nothing of the last report is highlighted"
    _into_reporter_name(qtbot, form)
    _key(form, Qt.Key.Key_Backtab, 5)
    assert QApplication.focusWidget() is factors.list
    assert [item.text() for item in factors.list.selectedItems()] == ["Communication"]
    QTest.keyClick(factors.list, Qt.Key.Key_Space)
    assert factors.value() == ["communication"]


def test_a_text_box_of_several_lines_shows_the_whole_focus_ring(qtbot: QtBot) -> None:
    """The brief description reached by Tab had a 1-pixel ring where one-line boxes have 2: its text area,
    sized for the unfocused 1-pixel edge, covered the inner half of the ring."""
    form = _form(qtbot)
    location = form.fields["location.description"]
    assert isinstance(location, LineField)
    form.ensureWidgetVisible(location)
    QTest.mouseClick(location.edit, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(location.edit.hasFocus)
    _key(form, Qt.Key.Key_Tab)
    narrative = QApplication.focusWidget()
    assert isinstance(narrative, QPlainTextEdit)
    for edit in (location.edit, narrative):
        edit.setFocus()
        qtbot.waitUntil(edit.hasFocus)
        image = edit.grab().toImage()
        middle = image.height() // 2
        ring = [image.pixelColor(x, middle).name() for x in range(2)]
        assert ring == [FOCUS_RING, FOCUS_RING], f"{type(edit).__name__}: {ring}"
