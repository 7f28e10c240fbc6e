"""The report form in the window: written from the keyboard, autosaved into the real encrypted store, submitted
or refused with every problem listed, saved on lock, and built from the catalogue with its branching."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit, QMessageBox, QPlainTextEdit

from pso_desktop.domain import load_catalogue, validate_report
from pso_desktop.paths import resources_dir
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.editor_screen import EditorScreen
from pso_desktop.ui.report_form import ReportForm
from pso_desktop.ui.window import MainWindow
from tests.support.ui import (
    CANARY,
    PROFILE,
    SECRET,
    choose,
    fill_fall_incident,
    form_of,
    open_new_report,
    type_into,
    unlock,
)


@pytest.fixture
def profile(workstation_factory: Callable[[], Workstation]) -> Workstation:
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    return workstation


def stored(workstation: Workstation, report_id: str) -> dict[str, Any] | None:
    with workstation.session(PROFILE, SECRET) as session:
        return session.get_report(report_id)


def counts(workstation: Workstation) -> dict[str, int]:
    with workstation.session(PROFILE, SECRET) as session:
        return session.status_counts()


def unlocked_with_a_new_report(qtbot: Any, window: MainWindow) -> tuple[MainWindow, EditorScreen, ReportForm]:
    unlock(qtbot, window)
    editor = open_new_report(qtbot, window)
    return window, editor, form_of(editor)


def test_a_new_report_is_autosaved_then_submitted_and_listed_as_queued(
    qtbot: Any, make_window: Callable[..., MainWindow], profile: Workstation
) -> None:
    window, editor, form = unlocked_with_a_new_report(qtbot, make_window())
    assert form.fields["event_type"].focus_target().hasFocus()  # the keyboard starts at the first question

    with qtbot.waitSignal(editor.saved, timeout=10_000):  # the autosave timer, no button pressed
        fill_fall_incident(qtbot, form)
    report_id = form.report_id
    assert report_id is not None
    qtbot.waitUntil(lambda: not editor.has_unsaved_changes and editor.save_status.text().startswith("Draft saved"))
    draft = stored(profile, report_id)
    assert draft is not None and draft["narrative"] == CANARY
    assert draft["discovery"]["time"] == "03:40:00"
    assert draft["modules"] == {"fall": {"DE192": "A867", "DE204": "A910", "DE210": "A15", "DE213": "A15"}}
    validate_report(draft)  # what the form built is a complete, valid report

    with qtbot.waitSignal(editor.submitted, timeout=10_000) as done:
        qtbot.keyClick(
            form.fields["reporter.name"].focus_target(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    assert done.args == [report_id]
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.reports_screen)
    qtbot.waitUntil(lambda: window.reports_screen.model.rowCount() == 1)
    assert window.reports_screen.model.summary(0).state == "queued"
    assert counts(profile)["queued"] == 1


def test_submitting_an_incomplete_report_lists_each_problem_and_keeps_the_draft(
    qtbot: Any, make_window: Callable[..., MainWindow], profile: Workstation
) -> None:
    window, editor, form = unlocked_with_a_new_report(qtbot, make_window())
    choose(form.fields["event_type"], "incident")
    type_into(qtbot, form.fields["narrative"], CANARY)

    def submit_refused() -> list[Any]:
        with qtbot.waitSignal(editor.invalid, timeout=10_000) as refused:
            editor.submit_button.click()
        return list(refused.args[0])

    # The shape first (what every report has), each error naming its own field...
    assert {error.field for error in submit_refused()} == {"categories", "location.unit"}
    choose(form.fields["categories"], "A42")
    type_into(qtbot, form.fields["location.unit"], "ICU")
    # ...then the rules of the form.
    errors = submit_refused()
    assert {error.field for error in errors} == {  # (the discovery date and time start as now)
        "patient",
        "harm.evidence_of_harm",
        "reporter.name",
    }
    assert editor.errors.isVisible() and editor.errors.count() == len(errors)
    assert all(CANARY not in editor.errors.item(i).text() for i in range(editor.errors.count()))
    assert window.stack.currentWidget() is editor  # still on the form, nothing lost

    # Enter on a problem takes the cursor to its field.
    row = next(i for i, e in enumerate(errors) if e.field == "reporter.name")
    editor.errors.setCurrentRow(row)
    editor.errors.setFocus()
    qtbot.keyClick(editor.errors, Qt.Key.Key_Return)
    assert form.fields["reporter.name"].focus_target().hasFocus()
    # A problem with a whole section ("enter the patient's details") goes to its first field.
    editor.errors.setCurrentRow(next(i for i, e in enumerate(errors) if e.field == "patient"))
    qtbot.keyClick(editor.errors, Qt.Key.Key_Return)
    assert form.fields["patient.mrn"].focus_target().hasFocus()

    draft = stored(profile, str(form.report_id))
    assert draft is not None and draft["narrative"] == CANARY
    assert counts(profile) == {**counts(profile), "draft": 1, "queued": 0}


def test_locking_while_typing_saves_the_last_keystrokes_and_empties_the_form(
    qtbot: Any, make_window: Callable[..., MainWindow], profile: Workstation
) -> None:
    window, editor, form = unlocked_with_a_new_report(qtbot, make_window())
    choose(form.fields["event_type"], "near_miss")
    type_into(qtbot, form.fields["narrative"], CANARY)
    assert editor.has_unsaved_changes  # the autosave timer has not fired yet
    report_id = str(form.report_id)

    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock_action.trigger()
    assert window.stack.currentWidget() is window.profile_screen
    texts = [w.text() for w in window.findChildren(QLineEdit)]
    texts += [w.toPlainText() for w in window.findChildren(QPlainTextEdit)]
    assert not any(CANARY in text for text in texts)
    qtbot.waitUntil(lambda: window.worker.pending == 0)
    draft = stored(profile, report_id)
    assert draft is not None and draft["narrative"] == CANARY and draft["event_type"] == "near_miss"


def test_a_submitted_report_opens_read_only_and_after_amend_an_edit_makes_a_new_draft_revision(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
) -> None:
    window = make_window()
    unlock(qtbot, window)
    table = window.reports_screen.table
    model = window.reports_screen.model
    row = next(r for r in range(model.rowCount()) if model.summary(r).state == "queued")
    report_id = model.summary(row).id
    table.setFocus()
    table.selectRow(row)
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        qtbot.keyClick(table, Qt.Key.Key_Return)
    editor = window.editor
    assert editor is not None
    form = form_of(editor)
    original = next(r for r in stored_reports if r["id"] == report_id)
    assert form.report() == original  # opening changes nothing
    assert editor.read_only
    type_into(qtbot, form.fields["location.description"], " (corrected)")
    assert form.report() == original and not editor.has_unsaved_changes  # typing changes nothing until Amend

    qtbot.keyClick(
        form.fields["location.description"].focus_target(), Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier
    )
    with qtbot.waitSignal(editor.saved, timeout=10_000) as saved:
        type_into(qtbot, form.fields["location.description"], " (corrected)")
    assert saved.args == [original["revision"] + 1]
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(
            form.fields["location.description"].focus_target(), Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier
        )
    assert window.stack.currentWidget() is window.reports_screen
    states = {model.summary(r).id: model.summary(r).state for r in range(model.rowCount())}
    assert states[report_id] == "draft"
    assert stored(workstation_factory(), report_id)["location"]["description"].endswith(" (corrected)")


# --- the form alone: built from the catalogue, with its branching --------------------------------------------


@pytest.mark.parametrize("name", ["fall-incident", "medication-near-miss", "unsafe-condition"])
def test_opening_a_report_and_reading_it_back_changes_nothing(qtbot: Any, name: str) -> None:
    report = json.loads((resources_dir() / "examples" / f"{name}.json").read_text(encoding="utf-8"))
    form = ReportForm(load_catalogue())
    qtbot.addWidget(form)
    form.load(report)
    assert form.report() == report


def test_answers_that_no_longer_apply_are_hidden_and_left_out(qtbot: Any) -> None:
    form = ReportForm(load_catalogue())
    qtbot.addWidget(form)
    form.show()
    form.load({"id": "6f1c2a8e-3b4d-4e5f-9a0b-1c2d3e4f5a61", "revision": 1})
    f = form.fields

    choose(f["event_type"], "incident")
    assert not f["modules.fall.DE192"].isVisible()  # no Fall module without the Fall category
    choose(f["categories"], "A48")
    choose(f["modules.fall.DE210"], "A15")
    assert f["modules.fall.DE213"].isVisible()
    choose(f["modules.fall.DE213"], "A18")
    assert form.report()["modules"]["fall"] == {"DE210": "A15", "DE213": "A18"}
    choose(f["modules.fall.DE210"], "A18")  # the follow-up's trigger changes: the follow-up goes
    assert not f["modules.fall.DE213"].isVisible()
    assert form.report()["modules"]["fall"] == {"DE210": "A18"}

    type_into(qtbot, f["reporter.name"], "Jordan Example")
    f["reporter.anonymous"].set_value(True)
    f["reporter.anonymous"].changed.emit()
    assert not f["reporter.name"].isVisible()
    assert form.report()["reporter"] == {"anonymous": True}  # no identity stored or sent

    choose(f["patient.gender"], "F")
    choose(f["harm.evidence_of_harm"], "A15")
    choose(f["event_type"], "unsafe_condition")
    assert not f["patient.gender"].isVisible() and not f["harm.evidence_of_harm"].isVisible()
    report = form.report()
    assert "patient" not in report and "harm" not in report
    # A Fall is always an incident: its category greys out but stays ticked (validation says to change one of
    # the two), and its answers are kept until the clinician decides.
    assert report["categories"] == ["A48"] and report["modules"]["fall"] == {"DE210": "A18"}


def test_each_module_question_of_the_catalogue_has_an_input(qtbot: Any) -> None:
    catalogue = load_catalogue()
    form = ReportForm(catalogue)
    qtbot.addWidget(form)
    for module in catalogue.modules.values():
        for question in module.questions:
            assert f"modules.{module.key}.{question.id}" in form.fields


def _answer_delete(qtbot: Any, editor: EditorScreen, button: QMessageBox.StandardButton) -> None:
    editor.delete_action.trigger()
    box = editor.confirm_delete
    assert box is not None and box.isVisible()
    box.button(button).click()


def test_a_draft_can_be_deleted_after_a_question_and_a_submitted_report_cannot(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
) -> None:
    window, editor, form = unlocked_with_a_new_report(qtbot, make_window())
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        type_into(qtbot, form.fields["narrative"], CANARY)
    report_id = str(form.report_id)

    _answer_delete(qtbot, editor, QMessageBox.StandardButton.No)  # "No" keeps it
    assert window.stack.currentWidget() is editor and form.fields["narrative"].value() == CANARY
    with qtbot.waitSignal(editor.deleted, timeout=10_000):
        _answer_delete(qtbot, editor, QMessageBox.StandardButton.Yes)
    qtbot.waitUntil(lambda: window.stack.currentWidget() is window.reports_screen)
    assert form.fields["narrative"].value() is None  # nothing of it left in the form
    workstation = workstation_factory()
    assert stored(workstation, report_id) is None
    with workstation.session(PROFILE, SECRET) as session:
        assert ("delete", report_id) in [(e.action, e.report_id) for e in session.audit.entries()]

    # A queued report is part of the record: it opens without Delete, and amending it does not offer Delete.
    queued = stored_reports[0]
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        window.open_report(queued["id"])
    assert editor.read_only and not editor.delete_action.isEnabled() and not editor.delete_button.isVisible()
    editor.amend_action.trigger()
    assert not editor.delete_action.isEnabled() and not editor.delete_button.isVisible()
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        type_into(qtbot, form.fields["location.description"], " (corrected)")
    # Its next revision, reopened later, is a draft the form offers to delete: that is refused with a sentence,
    # and the report stays.
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        window.open_report(queued["id"])
    assert editor.delete_action.isEnabled()
    with qtbot.waitSignal(editor.failed, timeout=10_000) as refused:
        _answer_delete(qtbot, editor, QMessageBox.StandardButton.Yes)
    assert refused.args[0] == "Only drafts that were never submitted can be deleted; this one was submitted."
    kept = stored(workstation, queued["id"])
    assert kept is not None and kept["revision"] == 2
    with workstation.session(PROFILE, SECRET) as session:
        assert session.store.get_revision(queued["id"], 1) == queued
