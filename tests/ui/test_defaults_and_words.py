"""Issue 8, items 3 and 5, as a user meets them in the real window at 1024×600: a new report starts discovered
now; the questions most reports leave blank sit under each section's folded "more detail" part, which Tab
passes by and Ctrl+M opens; a report with an answer there, or a problem there, opens it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QAccessible, QColor
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QToolButton,
    QWidget,
)

from pso_desktop.paths import home, resources_dir
from pso_desktop.services.backend import SignInDefaults
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.filter_bar import ChoiceButton
from pso_desktop.ui.form_fields import GREYED_ROLE, CheckListField, FormField, GroupField, RadioField
from pso_desktop.ui.report_form import REQUIRED, REQUIRED_MARK, MoreDetail, ReportForm
from pso_desktop.ui.sign_in_dialog import SignInDialog
from pso_desktop.ui.ui_settings import KEYS
from pso_desktop.ui.window import MainWindow
from tests.support.keyboard import KeyCounter, focused
from tests.support.ui import (
    example,
    field_path,
    fill_fall_incident,
    new_report,
    small_window,
    unlock,
    write_the_fall_report,
)

CTRL = Qt.KeyboardModifier.ControlModifier


def in_view(form: ReportForm, widget: QWidget) -> bool:
    top = widget.mapTo(form.viewport(), QPoint(0, 0)).y()
    return top >= 0 and top + widget.height() <= form.viewport().height()


def test_a_new_report_is_discovered_now_and_tab_passes_the_folded_more_detail(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    before = dt.datetime.now().replace(second=0, microsecond=0)
    _editor, form = new_report(qtbot, window, keys)
    after = dt.datetime.now()
    shown = dt.datetime.fromisoformat(
        f"{form.fields['discovery.date'].value()}T{form.fields['discovery.time'].value()}"
    )
    assert before <= shown <= after
    # Tab from the categories goes straight to the discovery date, its text selected: typing replaces it.
    keys.tab(2)
    assert field_path(form, focused()) == "discovery.date"
    keys.type("2026-11-20")
    assert form.fields["discovery.date"].value() == "2026-11-20"
    visited = set()
    for _ in range(60):
        visited.add(field_path(form, focused()))
        keys.tab()
    for folded in ("report_date", "discovery.date_unknown", "patient.diagnosis_icd10", "serious_reportable_event"):
        assert folded not in visited, folded
    assert {"location.unit", "patient.age_years", "reporter.name"} <= visited


def test_ctrl_m_opens_the_sections_more_detail_and_not_known_hides_the_date(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    editor, form = new_report(qtbot, window, keys)
    keys.tab(2)
    assert field_path(form, focused()) == "discovery.date"
    keys.key(Qt.Key.Key_M, CTRL)
    assert field_path(form, focused()) == "report_date"  # the part's first question, scrolled into view
    qtbot.waitUntil(lambda: in_view(form, focused()))
    keys.tab()
    assert field_path(form, focused()) == "discovery.date_unknown"
    keys.key(Qt.Key.Key_Space)  # the date is not known: its question goes
    assert not form.fields["discovery.date"].isVisibleTo(form)
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        pass
    report = form.report()
    assert report["discovery"]["date_unknown"] is True and "date" not in report["discovery"]
    keys.key(Qt.Key.Key_M, CTRL)  # closes it again, the focus back in the section
    part = next(p for p in form.findChildren(MoreDetail) if "report_date" in p.paths)
    assert not part.is_open()
    assert field_path(form, focused()) in {"discovery.time", "location.unit", "location.description", "narrative"}
    # Reopened, a report with an answer under more detail shows it.
    keys.key(Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.reports_screen, timeout=10_000)
    screen = window.reports_screen
    qtbot.waitUntil(lambda: screen.table.model().rowCount() == 1, timeout=10_000)
    if focused() is screen.search:
        keys.key(Qt.Key.Key_Down)  # to the list
    assert focused() is screen.table
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        keys.key(Qt.Key.Key_Return)
    assert part.is_open() and form.fields["discovery.date_unknown"].isVisibleTo(form)


def test_sign_in_asks_only_for_user_name_and_password_when_it_policy_names_the_server(qtbot: Any) -> None:
    dialog = SignInDialog()
    qtbot.addWidget(dialog)
    dialog.prepare(SignInDefaults("https://pso.hospital.example", True, ""))
    dialog.show()
    dialog.activateWindow()
    qtbot.waitExposed(dialog)
    assert dialog.username.isVisible() and dialog.password.isVisible()
    hidden = (dialog.server, dialog.ca_file, dialog.proxy, dialog.advanced_button)
    assert not any(widget.isVisible() for widget in hidden)
    qtbot.waitUntil(dialog.username.hasFocus)
    qtbot.keyClicks(dialog.username, "nurse1")
    qtbot.keyClick(dialog.username, Qt.Key.Key_Tab)
    assert dialog.password.hasFocus()
    qtbot.keyClicks(dialog.password, "pw")
    with qtbot.waitSignal(dialog.sign_in_requested, timeout=2_000) as asked:
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert asked.args[:3] == ["https://pso.hospital.example", "nurse1", "pw"]


def test_without_a_policy_server_the_address_is_under_advanced_and_gets_https(qtbot: Any) -> None:
    dialog = SignInDialog()
    qtbot.addWidget(dialog)
    dialog.prepare(SignInDefaults("", False, ""))
    dialog.show()
    dialog.activateWindow()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(dialog.server.hasFocus)
    assert dialog.server.isVisible()  # nothing known yet: open, at the address
    assert "on Linux" in dialog.proxy.toolTip() and "proxy_from_environment" in dialog.proxy.toolTip()
    qtbot.keyClicks(dialog.server, "pso.example.org")
    with qtbot.assertNotEmitted(dialog.sign_in_requested):
        qtbot.keyClick(dialog.server, Qt.Key.Key_Return)
    assert "user name" in dialog.error.text() and "password" in dialog.error.text()  # every problem at once
    dialog.username.setFocus()
    qtbot.keyClicks(dialog.username, "nurse1")
    qtbot.keyClick(dialog.username, Qt.Key.Key_Tab)
    qtbot.keyClicks(dialog.password, "pw")
    with qtbot.waitSignal(dialog.sign_in_requested, timeout=2_000) as asked:
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    assert asked.args[0] == "https://pso.example.org"
    # Signed in once, the dialog opens folded: user name and password only.
    dialog.prepare(SignInDefaults("https://pso.example.org", False, "nurse1"))
    assert not dialog.server.isVisible() and dialog.advanced_button.isVisible() and dialog.password.hasFocus()


def test_the_age_is_worked_out_from_the_date_of_birth_and_never_overwrites_a_typed_age(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Space)  # Incident
    keys.tab(2)
    keys.type("2026-11-20")  # discovered
    for _ in range(10):
        keys.tab()
        if field_path(form, focused()) == "patient.mrn":
            break
    keys.key(Qt.Key.Key_M, CTRL)  # the patient's more detail: date of birth first
    assert field_path(form, focused()) == "patient.date_of_birth"
    keys.type("1944-11-21")
    assert form.fields["patient.age_years"].value() == 81  # 82 the day after the event
    assert form.age_note.isVisible()
    keys.key(Qt.Key.Key_Backspace)
    keys.type("0")  # 1944-11-20: a birthday on the day
    assert form.fields["patient.age_years"].value() == 82
    # A neonate: the age in days.
    for _ in range(10):
        keys.key(Qt.Key.Key_Backspace)
    keys.type("2026-11-08")
    assert form.fields["patient.age_years"].value() == 0 and "12 days old" in form.age_note.text()
    # An age typed by hand stays, whatever the date of birth says.
    age = form.fields["patient.age_years"].focus_target()
    age.setFocus()
    keys.key(Qt.Key.Key_Backspace)
    keys.type("1")
    form.fields["patient.date_of_birth"].focus_target().setFocus()
    keys.key(Qt.Key.Key_Backspace)
    keys.type("1")
    # Kept, with a plain note that it disagrees with the date of birth (issue 8).
    assert form.fields["patient.age_years"].value() == 1 and "disagree" in form.age_note.text()


def test_the_unit_and_reporter_are_remembered_in_the_profile_and_the_open_report_comes_back_after_unlock(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    workstation = workstation_factory()
    window = small_window(qtbot, make_window, workstation)
    keys = KeyCounter(qtbot)
    report = example()
    editor, form = new_report(qtbot, window, keys)
    write_the_fall_report(qtbot, keys, report)
    with qtbot.waitSignal(editor.submitted, timeout=10_000):
        keys.key(Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.reports_screen, timeout=10_000)
    # The next new report starts with this profile's unit and reporter.
    editor, form = new_report(qtbot, window, keys)
    assert form.fields["location.unit"].value() == report["location"]["unit"]
    assert form.fields["reporter.name"].value() == report["reporter"]["name"]
    assert form.fields["reporter.job"].value() == report["reporter"]["job"]
    # "Report anonymously" leaves them out of the report.
    form.fields["reporter.anonymous"].focus_target().setFocus()
    keys.key(Qt.Key.Key_Space)
    assert "name" not in form.report()["reporter"] and not form.fields["reporter.name"].isVisibleTo(form)
    report_id = form.report_id
    qtbot.waitUntil(lambda: not editor.has_unsaved_changes, timeout=10_000)
    # Locked and unlocked: back in the report that was open.
    keys.key(Qt.Key.Key_L, CTRL)
    assert window.stack.currentWidget() is window.profile_screen
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        unlock(qtbot, window)
    assert window.stack.currentWidget() is window.editor and window.editor.form is not None
    assert window.editor.form.report_id == report_id
    # Nothing of it in the plain settings file.
    settings_file = home() / "settings.ini"
    text = settings_file.read_text(encoding="utf-8") if settings_file.exists() else ""
    assert report["location"]["unit"] not in text and report["reporter"]["name"] not in text


def test_the_last_export_folder_and_format_are_offered_again(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    offered: list[tuple[str, str]] = []
    folder = tmp_path / "exports"
    folder.mkdir()

    def save_dialog(_parent: Any, _title: str, default: str, _filters: str, chosen: str = "") -> tuple[str, str]:
        offered.append((default, chosen))  # what the dialog opens with; the user picks CSV in exports/
        return str(folder / "week.csv"), "CSV spreadsheet (*.csv)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save_dialog))
    with qtbot.waitSignal(window.file_actions.done, timeout=10_000):
        window.file_actions.export_action.trigger()
    with qtbot.waitSignal(window.file_actions.done, timeout=10_000):
        window.file_actions.export_action.trigger()
    assert offered[0] == ("reports.json", "JSON (*.json)")
    assert offered[1] == (str(folder / "reports.csv"), "CSV spreadsheet (*.csv)")
    assert set(QSettings(str(home() / "settings.ini"), QSettings.Format.IniFormat).allKeys()) <= set(KEYS)


def test_required_questions_are_marked_the_same_way_with_a_legend_and_a_problem_opens_more_detail(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    editor, form = new_report(qtbot, window, keys)
    assert form.legend.isVisible() and REQUIRED_MARK.strip() in form.legend.text()
    captions = {label.buddy(): label.text() for label in form.findChildren(QLabel) if label.buddy() is not None}
    for path in REQUIRED:
        assert captions[form.fields[path].focus_target()].endswith(REQUIRED_MARK), path
    fall = [p for p in form.fields if p.startswith("modules.fall.")]
    assert fall and all(captions[form.fields[p].focus_target()].endswith(REQUIRED_MARK) for p in fall)
    optional = ("location.description", "patient.name", "reporter.job")
    assert not any(captions[form.fields[p].focus_target()].endswith(REQUIRED_MARK) for p in optional)
    # A discovery time left empty: Enter on its problem opens "more detail", where "Discovery time unknown" is.
    fill_fall_incident(qtbot, form)
    form.fields["discovery.time"].focus_target().setFocus()
    keys.key(Qt.Key.Key_A, CTRL)
    keys.key(Qt.Key.Key_Backspace)
    with qtbot.waitSignal(editor.invalid, timeout=10_000) as refused:
        keys.key(Qt.Key.Key_Return, CTRL)
    row = next(i for i, e in enumerate(refused.args[0]) if e.field == "discovery.time")
    editor.errors.setFocus()
    editor.errors.setCurrentRow(row)
    keys.key(Qt.Key.Key_Return)
    assert field_path(form, focused()) == "discovery.time"
    assert form.fields["discovery.time_unknown"].isVisibleTo(form)


def spoken(widget: QWidget, kind: QAccessible.Text) -> str:
    """What a screen reader is given for ``widget`` (its accessible interface, as over AT-SPI)."""
    face = QAccessible.queryAccessibleInterface(widget)
    return face.text(kind).strip() if face is not None else ""


def unnamed(widgets: list[QWidget]) -> list[str]:
    return [f"{type(w).__name__} {w.objectName()}" for w in widgets if not spoken(w, QAccessible.Text.Name)]


def help_shown(widget: QWidget) -> list[str]:
    """The help a sighted user gets for ``widget``: its tooltip (unless it only repeats its name), the tooltip
    of the question around it, and a format shown in an empty text box."""
    shown = []
    name = spoken(widget, QAccessible.Text.Name)
    if widget.toolTip() and widget.toolTip() != name:
        shown.append(widget.toolTip())
    field = widget.parentWidget()
    while field is not None and not isinstance(field, FormField):
        field = field.parentWidget()
    if field is not None and field.toolTip() and (not isinstance(field, GroupField) or widget is field.add_button):
        shown.append(field.toolTip())  # a repeating group's help is about adding entries, not removing one
    if field is not None and isinstance(widget, (QLineEdit, QPlainTextEdit)) and widget.placeholderText():
        shown.append(widget.placeholderText())  # a question's format (the search box's only says its name)
    return shown


def undescribed(widgets: list[QWidget]) -> list[str]:
    """Widgets whose help a screen reader is not given."""
    missing = []
    for widget in widgets:
        description = spoken(widget, QAccessible.Text.Description)
        missing += [
            f"{spoken(widget, QAccessible.Text.Name)}: {text}"
            for text in help_shown(widget)
            if text not in description
        ]
    return missing


def test_every_input_of_the_form_and_the_list_has_a_name_for_screen_readers(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())

    screen = window.reports_screen
    focusable = [
        w
        for w in screen.findChildren(QWidget)
        if w.isVisible()
        and w.focusPolicy() & Qt.FocusPolicy.TabFocus == Qt.FocusPolicy.TabFocus
        and w.objectName() != "qt_spinbox_lineedit"  # a date box's inner text: the date box is named
    ]
    assert focusable and unnamed(focusable) == [] and undescribed(focusable) == []
    assert "Ticked: any" in spoken(screen.filter_bar.findChildren(ChoiceButton)[0], QAccessible.Text.Description)
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    for part in form.findChildren(MoreDetail):
        part.set_open(True)  # (as its button does)
    stops = form.tab_stops()
    assert len(stops) > 30 and unnamed(stops) == [] and undescribed(stops) == []
    required = form.fields["location.unit"].focus_target()
    assert required.accessibleName() == "Unit where the event occurred, required"
    # Every input, the sections not shown for this kind of event too, with one entry of each repeating group
    # (added as a user does, Space on its Add button): the catalogue's help reaches the screen reader.
    for group in [f for f in form.fields.values() if isinstance(f, GroupField)]:
        group.add_button.setFocus()
        keys.key(Qt.Key.Key_Space)
    every = [
        w
        for w in form.findChildren(QWidget)
        if w.focusPolicy() & Qt.FocusPolicy.TabFocus == Qt.FocusPolicy.TabFocus
        and not isinstance(w, (QScrollBar, QToolButton))  # a list's own scroll bars; "more detail" (named)
        and w.window() is window  # not a drop-down's pop-up list
    ]
    assert len(every) > 100 and unnamed(every) == [] and undescribed(every) == []
    with_help = [
        (f"modules.{module.key}.{q.id}", q.help)
        for module in form.catalogue.modules.values()
        for q in module.questions
        if q.help
    ]
    assert with_help
    for path, text in with_help:
        assert text in spoken(form.fields[path].focus_target(), QAccessible.Text.Description), path
    # A radio button's name is its answer: its description says the question, the answer's meaning and the help.
    severe = cast(RadioField, form.fields["harm.level"]).buttons["LA20748-2"]  # Severe harm
    description = spoken(severe, QAccessible.Text.Description)
    assert description.startswith("Level of harm (AHRQ Harm Scale), required.")
    assert "interferes significantly" in description and form.catalogue.harm_guidance in description
    assert "YYYY-MM-DD" in spoken(form.fields["discovery.date"].focus_target(), QAccessible.Text.Description)


def _luminance(colour: QColor) -> float:
    def channel(value: float) -> float:
        return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(colour.redF()) + 0.7152 * channel(colour.greenF()) + 0.0722 * channel(colour.blueF())


def contrast(one: str | QColor, other: str | QColor) -> float:
    """WCAG 2.2 contrast ratio of two colours."""
    lighter, darker = sorted((_luminance(QColor(one)), _luminance(QColor(other))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_styles_colours_meet_wcag_aa_contrast(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    style = (resources_dir() / "ui" / "style.qss").read_text(encoding="utf-8")
    chip = style[style.index("QToolButton#countChip {") :].split("}")[0]
    chip_border = re.search(r"border: 1px solid (#[0-9a-fA-F]{6})", chip)
    assert chip_border is not None
    window_colour = QApplication.palette().window().color()
    for background in (window_colour, QColor("#eef2f6"), QColor("#ffffff")):
        assert contrast(chip_border.group(1), background) >= 3.0  # a control's edge
        assert contrast("#1a5fb4", background) >= 3.0  # the focus ring
    for chip_fill in ("#e8edf3", "#fde2e1", "#e3ecfb", "#dff3e4"):  # a focused chip: its ring against its fill
        assert contrast("#1a5fb4", chip_fill) >= 3.0
    # Tick boxes, radio buttons and text boxes: their edges as drawn are checked in test_accessibility.py.
    for text, background in (
        ("#1f2933", "#e8edf3"),  # chip text on each chip fill
        ("#1f2933", "#e3ecfb"),
        ("#1f2933", "#dff3e4"),
        ("#8a1c13", "#fde2e1"),
        ("#4a5568", "#ffffff"),  # hints
        ("#4a5568", "#eef2f6"),
        ("#3c4a5c", window_colour),  # help under a question
        ("#b42318", "#ffffff"),  # an error
        ("#5c4300", "#fff4d6"),  # the keyring warning
        ("#ffffff", "#7a1f1f"),  # the PSWP banner
        ("#ffffff", "#2b6cb0"),  # TRAINING
        ("#1d3557", "#e3ecfb"),  # where a submitted report stands
    ):
        assert contrast(text, background) >= 4.5, (text, background)
    # A category that does not fit the kind of event: greyed, yet readable.
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Down)
    keys.key(Qt.Key.Key_Down)  # Unsafe condition: most categories do not fit it
    categories = form.fields["categories"]
    assert isinstance(categories, CheckListField)
    greyed = [item for item in categories.items() if item.data(GREYED_ROLE)]
    assert greyed
    base = categories.list.palette().base().color()
    assert all(contrast(item.foreground().color(), base) >= 4.5 for item in greyed)
