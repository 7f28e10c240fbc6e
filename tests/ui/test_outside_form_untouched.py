"""Issue 8 (outside test): nothing changes that the clinician did not change. A new report whose answers are put
back as they were is not saved; a filled repeating entry removed by mistake comes back with Ctrl+Z; a typed age
that disagrees with the date of birth is noted, and kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QPushButton

from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.form_fields import GroupField
from pso_desktop.ui.window import MainWindow
from tests.support.keyboard import KeyCounter, focused
from tests.support.ui import (
    PROFILE,
    SECRET,
    field_path,
    form_of,
    new_report,
    open_new_report,
    small_window,
    tab_to,
    unlock,
)

CTRL = Qt.KeyboardModifier.ControlModifier


@pytest.fixture
def profile(workstation_factory: Callable[[], Workstation]) -> Workstation:
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    return workstation


def stored_count(workstation: Workstation) -> int:
    with workstation.session(PROFILE, SECRET) as session:
        return sum(session.status_counts().values())


def test_ticking_anonymous_on_and_off_in_a_new_report_saves_no_draft(
    qtbot: Any, make_window: Callable[..., MainWindow], profile: Workstation
) -> None:
    window = make_window()
    unlock(qtbot, window)
    editor = open_new_report(qtbot, window)
    form = form_of(editor)
    box = form.fields["reporter.anonymous"].focus_target()
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert not box.isChecked()  # type: ignore[attr-defined]
    qtbot.wait(2_000)  # past the autosave delay
    assert not editor.has_unsaved_changes
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(box, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)  # back to the list
    assert window.reports_screen.model.rowCount() == 0
    assert stored_count(profile) == 0


def test_a_filled_medication_removed_by_mistake_comes_back_with_ctrl_z(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    window = small_window(qtbot, make_window, workstation_factory())
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    keys.key(Qt.Key.Key_Space)  # Incident
    tab_to(keys, form, "categories")
    keys.type("Med")
    keys.key(Qt.Key.Key_Space)
    group = next(f for f in form.fields.values() if isinstance(f, GroupField))
    for _ in range(60):
        if focused() is group.add_button:
            break
        keys.tab()
    keys.key(Qt.Key.Key_Space)
    keys.type("Heparin")  # the first entry's first question
    qtbot.wait(20)  # a person's pause: the new entry is laid out (Tab follows the layout)
    for _ in range(20):
        if focused() is group.add_button:
            break
        keys.tab()
    keys.key(Qt.Key.Key_Space)  # a second entry
    keys.type("Insulin")
    qtbot.wait(20)
    entered = form.report()["modules"]["medication"]["products"]
    assert [p["generic_name"] for p in entered] == ["Heparin", "Insulin"]
    # Back to the first entry's Remove button, pressed by mistake.
    first = next(iter(group.entries[0].values())).focus_target()
    first.setFocus()
    for _ in range(20):
        if isinstance(widget := focused(), QPushButton) and widget.text().startswith("Remove this"):
            break
        keys.tab()
    keys.key(Qt.Key.Key_Space)
    assert [p["generic_name"] for p in form.report()["modules"]["medication"]["products"]] == ["Insulin"]
    said = window.statusBar().currentMessage()
    assert said.startswith("Medication or substance removed") and "Undo (Ctrl+Z)" in said
    assert "Undo (Ctrl+Z)" in group.add_button.accessibleDescription()  # a screen reader hears it on the button
    keys.key(Qt.Key.Key_Z, CTRL)
    # Back in its place, with its answers; the keyboard on its first question.
    assert form.report()["modules"]["medication"]["products"] == entered
    assert focused() is next(iter(group.entries[0].values())).focus_target()
    assert "Undo" not in group.add_button.accessibleDescription()
    # Ctrl+Z in a text box is still that box's own undo; with nothing removed it changes nothing else.
    keys.key(Qt.Key.Key_Z, CTRL)
    assert len(group.entries) == 2


def test_a_typed_age_that_disagrees_with_the_date_of_birth_is_noted_and_kept(
    qtbot: Any, make_window: Callable[..., MainWindow], profile: Workstation
) -> None:
    window = make_window()
    unlock(qtbot, window)
    keys = KeyCounter(qtbot)
    _editor, form = new_report(qtbot, window, keys)
    tab_to(keys, form, "discovery.date")
    keys.key(Qt.Key.Key_A, CTRL)
    keys.type("2026-11-20")
    tab_to(keys, form, "patient.age_years")
    keys.type("40")
    age = form.fields["patient.age_years"]
    assert not form.age_note.isVisible()  # no date of birth yet: nothing to compare
    tab_to(keys, form, "patient.mrn")
    keys.key(Qt.Key.Key_M, CTRL)  # the patient's more detail: the date of birth first
    assert field_path(form, focused()) == "patient.date_of_birth"
    keys.type("1944-11-21")  # 81 at the discovery date
    assert age.value() == 40  # the typed age is kept
    assert form.age_note.isVisible()
    note = form.age_note.text()
    assert "40" in note and "81" in note and "disagree" in note
    face = QAccessible.queryAccessibleInterface(age.focus_target())
    assert face is not None and "disagree" in face.text(QAccessible.Text.Description)
    # The note does not stand in the way: the keyboard stays where it was, and correcting the age removes it.
    assert field_path(form, focused()) == "patient.date_of_birth"
    tab_to(keys, form, "patient.age_years")
    keys.key(Qt.Key.Key_A, CTRL)
    keys.type("81")
    assert age.value() == 81 and not form.age_note.isVisible()
    assert "disagree" not in (face.text(QAccessible.Text.Description) or "")
