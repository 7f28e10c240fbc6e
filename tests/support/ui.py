"""Using the real main window in tests as a user does: the profile every window test unlocks, the keys that
unlock it, and the report form filled from the keyboard (every key goes to the focused widget, as in use).
The fixtures that build the window are in tests/ui/conftest.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from pso_desktop.paths import resources_dir
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.editor_screen import EditorScreen
from pso_desktop.ui.form_fields import CheckListField, ChoiceField, FormField, RadioField
from pso_desktop.ui.report_form import ReportForm
from pso_desktop.ui.window import MainWindow
from tests.support.keyboard import KeyCounter, focused

PROFILE = "alice"  # the profile the window tests create and unlock
SECRET = "correct horse battery"  # its secret
REPORT_COUNT = 12  # the reports of the stored_reports fixture


def unlock(qtbot: Any, window: MainWindow, secret: str = SECRET, *, name: str = PROFILE) -> None:
    """Types the secret into the unlock form like a user and waits until the list is shown."""
    screen = window.profile_screen
    screen.profile_box.setCurrentText(name)
    screen.password.clear()
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        qtbot.keyClicks(screen.password, secret)
        qtbot.keyClick(screen.password, Qt.Key.Key_Return)


def shown_ids(window: MainWindow) -> set[str]:
    model = window.reports_screen.model
    return {model.summary(row).id for row in range(model.rowCount())}


# The window at the smallest screen the design supports, unlocked, the focus in the list's search.
WIDTH, HEIGHT = 1024, 600


def small_window(qtbot: Any, make_window: Callable[..., MainWindow], workstation: Workstation) -> MainWindow:
    workstation.create_profile(PROFILE, SECRET)
    window = make_window()
    window.resize(WIDTH, HEIGHT)
    window.activateWindow()
    unlock(qtbot, window)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.reports_screen.search)
    return window


def new_report(qtbot: Any, window: MainWindow, keys: KeyCounter) -> tuple[EditorScreen, ReportForm]:
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        keys.key(Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    editor = window.editor
    assert editor is not None and editor.form is not None
    return editor, editor.form


def field_path(form: ReportForm, widget: QWidget | None) -> str | None:
    for path, field in form.fields.items():
        if widget is not None and (field is widget or field.isAncestorOf(widget)):
            return path
    return None


def tab_to(keys: KeyCounter, form: ReportForm, path: str, *, limit: int = 60) -> None:
    for _ in range(limit):
        if field_path(form, focused()) == path:
            return
        keys.tab()
    raise AssertionError(f"Tab never reached {path}")


def open_from_list(qtbot: Any, window: MainWindow, report_id: str) -> tuple[EditorScreen, ReportForm]:
    """Selects the report's row in the list and presses Enter, as a nurse would."""
    model = window.reports_screen.model
    table = window.reports_screen.table
    qtbot.waitUntil(lambda: any(model.summary(r).id == report_id for r in range(model.rowCount())))
    table.setFocus()
    table.selectRow(next(r for r in range(model.rowCount()) if model.summary(r).id == report_id))
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        qtbot.keyClick(table, Qt.Key.Key_Return)
    editor = window.editor
    assert editor is not None and editor.form is not None and window.stack.currentWidget() is editor
    return editor, editor.form


def turn_wheel(form: ReportForm, widget: QWidget) -> None:
    """One notch down of a real mouse wheel (through the window system, as a user's) over ``widget``,
    scrolled into the middle of the form first."""
    form.ensureWidgetVisible(widget, 50, form.viewport().height() // 2)
    window = widget.window()
    handle = window.windowHandle()
    assert handle is not None
    QTest.wheelEvent(handle, QPointF(widget.mapTo(window, widget.rect().center())), QPoint(0, -120))


# The report form, filled in through its fields.
CANARY = "Zebulon Quaxworth fell near the ice machine"


def open_new_report(qtbot: Any, window: MainWindow) -> EditorScreen:
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        qtbot.keyClick(window.reports_screen.search, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert window.editor is not None and window.stack.currentWidget() is window.editor
    return window.editor


def form_of(editor: EditorScreen) -> ReportForm:
    assert editor.form is not None
    return editor.form


def type_into(qtbot: Any, field: FormField, text: str) -> None:
    target = field.focus_target()
    target.setFocus()
    qtbot.keyClicks(target, text)


def replace_in(qtbot: Any, field: FormField, text: str) -> None:
    """Types ``text`` over what the field holds (a default such as the discovery date), as Ctrl+A then typing."""
    target = field.focus_target()
    target.setFocus()
    qtbot.keyClick(target, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(target, text)


def choose(field: FormField, code: str) -> None:
    """Picks an answer as the keyboard would (the combo's current item, the radio button, the tick)."""
    if isinstance(field, ChoiceField):
        field.combo.setCurrentIndex(field.combo.findData(code))
    elif isinstance(field, RadioField):
        field.buttons[code].click()
    elif isinstance(field, CheckListField):
        item = field.item(code)
        assert item is not None
        field.list.setCurrentItem(item)
        item.setCheckState(Qt.CheckState.Checked)
    else:
        raise AssertionError(f"cannot choose on {type(field).__name__}")


def fill_fall_incident(qtbot: Any, form: ReportForm) -> None:
    f = form.fields
    choose(f["event_type"], "incident")
    choose(f["categories"], "A48")
    replace_in(qtbot, f["discovery.date"], "2026-11-20")  # a new report starts discovered now
    replace_in(qtbot, f["discovery.time"], "3:40")
    type_into(qtbot, f["location.unit"], "4W-MEDSURG")
    type_into(qtbot, f["narrative"], CANARY)
    type_into(qtbot, f["patient.mrn"], "MRN4455")
    type_into(qtbot, f["patient.age_years"], "82")
    choose(f["patient.gender"], "F")
    choose(f["harm.evidence_of_harm"], "A15")
    choose(f["harm.level"], "LA21150-0")
    for question, answer in (("DE192", "A867"), ("DE204", "A910"), ("DE210", "A15"), ("DE213", "A15")):
        choose(f[f"modules.fall.{question}"], answer)
    type_into(qtbot, f["reporter.name"], "Jordan Example")


# The example fall report (resources/examples), typed with the keyboard alone.
TYPE_AHEAD_PAUSE_MS = QApplication.keyboardInputInterval() + 100 if QApplication.instance() else 500

SPACE, DOWN = Qt.Key.Key_Space, Qt.Key.Key_Down


def example() -> dict[str, Any]:
    report: dict[str, Any] = json.loads((resources_dir() / "examples" / "fall-incident.json").read_text("utf-8"))
    return report


def write_the_fall_report(qtbot: Any, keys: KeyCounter, report: dict[str, Any]) -> None:
    """The keys a nurse presses, field by field, in the order Tab visits them; letters typed into a drop-down or
    a list pick the answer that starts with them (characters, as in any text)."""
    patient, harm, reporter, fall = (
        report["patient"],
        report["harm"],
        report["reporter"],
        report["modules"]["fall"],
    )
    assert harm["level"] == "LA21150-0" and fall == {
        "DE192": "A867",
        "DE204": "A905",
        "DE210": "A15",
        "DE213": "A15",
    }

    def pick_in_list(prefix: str) -> None:  # type-ahead in a list, then Space ticks it
        qtbot.wait(TYPE_AHEAD_PAUSE_MS)
        keys.type(prefix)
        keys.key(SPACE)

    # What happened
    keys.key(SPACE)  # Incident (the first kind, where the focus starts)
    keys.tab()
    pick_in_list("Fall")
    keys.tab()
    # When and where (the discovery date and time start as now, selected as Tab reaches them: typing replaces them;
    # the report date, already today's, and the "unknown" ticks are under the section's more detail, which Tab passes by)
    keys.type(report["discovery"]["date"])
    keys.tab()
    keys.type(report["discovery"]["time"][:5])
    keys.tab()
    keys.type(report["location"]["unit"])
    keys.tab()
    keys.type(report["location"]["description"])
    keys.tab()
    keys.type(report["narrative"])
    keys.tab()
    # Patient
    keys.type(patient["mrn"])
    keys.tab()
    keys.type(patient["name"])
    keys.tab()  # (date of birth and diagnosis code: under more detail)
    keys.type(str(patient["age_years"]))
    keys.tab()
    keys.type("F")  # Female
    keys.tab()
    keys.type("N")  # Not Hispanic or Latino
    keys.tab()
    pick_in_list("W")  # White
    keys.tab()
    # Harm
    keys.type("Y")  # evidence of harm: Yes
    keys.tab()
    keys.key(DOWN, times=3)  # from Death: Severe, Moderate, Mild harm
    keys.tab()
    keys.type("T")  # Temporary harm
    keys.tab()  # (a longer stay: under more detail)
    keys.type("Y")  # rescue attempted
    keys.tab()
    keys.type(report["rescue"]["interventions"])
    keys.tab()
    # Fall: details
    keys.type("U")  # Unassisted
    keys.tab()
    keys.type("S")  # Skin tear, avulsion, hematoma or significant bruising
    keys.tab()
    keys.type("Y")  # risk assessment documented
    keys.tab()
    keys.type("Y")  # at increased risk
    keys.tab()
    # Circumstances
    pick_in_list("Pat")  # Patient factors
    pick_in_list("Env")  # Environment
    keys.tab()
    keys.type("N")  # handover: No
    keys.tab()
    keys.type("L")  # Likely could have been prevented
    keys.tab()
    keys.type("Y")  # family notified
    keys.tab(2)  # past "Report anonymously" (the Serious Reportable Event question: under more detail)
    # Reporter
    keys.type(reporter["name"])
    keys.tab()
    keys.type(reporter["job"])
    keys.tab()  # (telephone and e-mail: under more detail)
    keys.type("H")  # first reported by a healthcare professional
    keys.tab()
    keys.type("N")  # Nurse, nurse practitioner or physician assistant
