"""A submitted report in the real window: opened from the list it is read-only (no click, key or wheel turn
changes it, and nothing is written), shows its case number and the PSO's status, and only an explicit Amend
starts its next revision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QStyle

from pso_desktop.services.backend import Standing
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.editor_screen import AUTOSAVE_DELAY_MS, NOTE_SHOWN, EditorScreen, standing_text
from pso_desktop.ui.form_fields import CheckField, CheckListField, ChoiceField, LineField, RadioField
from pso_desktop.ui.report_form import NOT_STARTED, STARTED, ReportForm
from pso_desktop.ui.window import MainWindow
from pso_server.practice import RunningServer
from tests.support.reports import sample_reports
from tests.support.sync import link
from tests.support.ui import PROFILE, SECRET, open_from_list, turn_wheel, unlock

CASE_NUMBER = "PSO-2026-000042"
PSO_NOTE = "Reviewed with the <b>falls team</b> on Tuesday."  # markup from the server is shown as written


@pytest.fixture
def reports_at_each_stage(workstation_factory: Callable[[], Workstation]) -> dict[str, dict[str, Any]]:
    """A profile with a queued report, a report the PSO took (its case number and 'under review' from the status
    feed), and a draft. The sent one goes through the same store calls a sync makes: claim, record the server's
    result, record the status feed."""
    queued, sent, draft = sample_reports(3, seed=11)
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        session.add_reports([sent], submit=True)
        claimed = session.store.claim_batch(10, 1_000_000)
        assert [item.report_id for item in claimed] == [sent["id"]]
        session.store.record_results(
            [{"id": sent["id"], "revision": 1, "status": "created", "server_ref": CASE_NUMBER, "errors": []}]
        )
        session.account.record_statuses(
            [
                {
                    "id": sent["id"],
                    "server_ref": CASE_NUMBER,
                    "status": "under_review",
                    "note": PSO_NOTE,
                    "changed_at": "2026-12-01T10:00:00Z",
                }
            ],
            cursor=None,
        )
        session.add_reports([queued], submit=True)
        session.add_reports([draft])
    return {"queued": queued, "sent": sent, "draft": draft}


def stored_row(workstation: Workstation, report_id: str) -> tuple[tuple[int, str, str], dict[str, Any] | None]:
    """The report's row as the list reads it (revision, state, last change) and its stored content."""
    with workstation.session(PROFILE, SECRET) as session:
        row = next(s for s in session.store.list_summaries(limit=100) if s.id == report_id)
        return (row.revision, row.state, row.updated_at), session.get_report(report_id)


def back_to_the_list(qtbot: Any, window: MainWindow, editor: EditorScreen) -> None:
    """Alt+Left (which saves any pending edit at once), then waits until the worker has done everything."""
    focused = QApplication.focusWidget() or editor
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(focused, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    qtbot.waitUntil(lambda: window.worker.pending == 0)


def click_check_indicator(field: CheckListField, code: str) -> None:
    """A mouse click on the tick box of one answer of a check list."""
    item = field.item(code)
    assert item is not None
    rect = field.list.visualItemRect(item)
    indicator = field.list.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth)
    point = QPoint(rect.left() + indicator // 2 + 4, rect.center().y())
    QTest.mouseClick(field.list.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)


def unfold(form: ReportForm, path: str) -> None:
    """A click on "More detail" of the section holding ``path`` (folded away on a report with no answer there)."""
    part = form.detail_part(path)
    assert part is not None
    if not part.is_open():
        QTest.mouseClick(part.button, Qt.MouseButton.LeftButton)
    assert form.fields[path].isVisibleTo(form)


def try_every_stray_input(qtbot: Any, form: ReportForm, after_each: Callable[[str], None]) -> None:
    """Clicks, keys and wheel turns a hurried user might give a form, on every kind of input; ``after_each`` is
    called with the input's name after each one."""
    f = form.fields
    date_unknown = f["discovery.date_unknown"]
    assert isinstance(date_unknown, CheckField)
    unfold(form, "discovery.date_unknown")
    QTest.mouseClick(date_unknown.box, Qt.MouseButton.LeftButton)  # the click that blanked a sent report's date
    after_each("click on the date's Unknown box")
    time_unknown = f["discovery.time_unknown"]
    assert isinstance(time_unknown, CheckField)
    time_unknown.box.setFocus()
    qtbot.keyClick(time_unknown.box, Qt.Key.Key_Space)
    after_each("Space on the time's Unknown box")
    for path in ("location.description", "narrative"):
        target = f[path].focus_target()
        target.setFocus()
        qtbot.keyClick(target, Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClicks(target, " typed by mistake")
        after_each(f"typing into {path}")
        qtbot.keyClick(target, Qt.Key.Key_Backspace)
        after_each(f"Backspace in {path}")
    gender = f["patient.gender"]
    assert isinstance(gender, ChoiceField)
    turn_wheel(form, gender.combo)
    after_each("the wheel over a drop-down")
    gender.combo.setFocus()
    qtbot.keyClick(gender.combo, Qt.Key.Key_Down)
    after_each("Down on a drop-down")
    categories = f["categories"]
    assert isinstance(categories, CheckListField)
    click_check_indicator(categories, "A42")
    after_each("click on a category's tick box")
    categories.list.setFocus()
    categories.list.setCurrentRow(0)
    qtbot.keyClick(categories.list, Qt.Key.Key_Space)
    after_each("Space on a category")
    harm = f["harm.level"]
    assert isinstance(harm, RadioField)
    unchosen = next(b for b in harm.buttons.values() if not b.isChecked())
    # On its round button: the button is as wide as the form, its text only part of that.
    QTest.mouseClick(unchosen, Qt.MouseButton.LeftButton, pos=QPoint(8, unchosen.height() // 2))
    after_each("click on a radio button")
    harm.focus_target().setFocus()
    qtbot.keyClick(harm.focus_target(), Qt.Key.Key_Down)
    after_each("Down on the chosen radio button")


@pytest.mark.parametrize("stage", ["sent", "queued"])
def test_no_click_key_or_wheel_changes_a_submitted_report_and_nothing_is_written(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    reports_at_each_stage: dict[str, dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
    stage: str,
) -> None:
    report = reports_at_each_stage[stage]
    workstation = workstation_factory()
    before = stored_row(workstation, report["id"])
    window = make_window()
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, report["id"])
    assert form.report() == report

    def unchanged(what: str) -> None:
        assert form.report() == report, f"{what} changed a {stage} report"

    try_every_stray_input(qtbot, form, unchanged)
    qtbot.wait(AUTOSAVE_DELAY_MS + 300)  # long enough for an autosave to have started
    assert not editor.has_unsaved_changes
    back_to_the_list(qtbot, window, editor)

    assert stored_row(workstation, report["id"]) == before  # same revision, state, time and content


def line_edit_of(form: ReportForm, path: str) -> Any:
    field = form.fields[path]
    assert isinstance(field, LineField)
    return field.edit


def test_a_sent_report_shows_its_case_number_and_status_and_amend_starts_its_next_revision(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    reports_at_each_stage: dict[str, dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
) -> None:
    sent = reports_at_each_stage["sent"]
    workstation = workstation_factory()
    window = make_window()
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, sent["id"])
    assert editor.read_only and editor.heading.text() == "Submitted report (read-only)"
    assert editor.standing.isVisible()
    # The section marks' legend says what they mean in a read-only report (answered or not), seen and spoken.
    assert form.section_legend.text() == f"{NOT_STARTED} not answered\n{STARTED} answered"
    assert form.section_list.accessibleDescription() == form.section_legend.text()
    assert CASE_NUMBER in editor.standing.text() and "At the PSO: Under review." in editor.standing.text()
    assert PSO_NOTE in editor.standing.text() and editor.standing.textFormat() == Qt.TextFormat.PlainText
    assert PSO_NOTE in editor.standing.toolTip()
    assert editor.amend_button.isVisible() and editor.amend_button.accessibleName() == "Amend this report"
    assert not editor.submit_button.isVisible() and not editor.submit_action.isEnabled()
    description = line_edit_of(form, "location.description")
    assert description.isReadOnly()

    # The keyboard user goes to the field to change, then Ctrl+E: the focus stays there and typing works.
    description.setFocus()
    qtbot.keyClick(description, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    assert not editor.read_only and not editor.amend_button.isVisible() and editor.submit_button.isVisible()
    assert "problems to fix" in form.section_legend.text()
    assert form.fields["patient.gender"].focus_target().accessibleDescription() == ""
    assert description.hasFocus() and not description.isReadOnly()
    assert "revision 2, a draft until you submit it" in editor.standing.text()
    assert stored_row(workstation, sent["id"])[0][:2] == (1, "submitted")  # Amend alone writes nothing

    # Now every one of the inputs that did nothing before changes the report, and it is saved as revision 2.
    seen = [form.report()]

    def changed(what: str) -> None:
        now = form.report()
        if what == "the wheel over a drop-down":  # not focused: it scrolls the page, even when editable (issue 8)
            assert now == seen[-1], "the wheel over an unfocused drop-down changed its answer"
            return
        assert now != seen[-1], f"{what} did not change an amended report"
        seen.append(now)

    with qtbot.waitSignal(editor.saved, timeout=10_000) as saved:
        try_every_stray_input(qtbot, form, changed)
    assert saved.args == [2]
    amended = form.report()
    assert amended["discovery"]["date_unknown"] is True and "date" not in amended["discovery"]
    back_to_the_list(qtbot, window, editor)
    (revision, state, _), content = stored_row(workstation, sent["id"])
    assert (revision, state) == (2, "draft") and content == amended
    with workstation.session(PROFILE, SECRET) as session:
        assert session.store.get_revision(sent["id"], 1) == sent  # what the PSO holds is kept as it was

    # Reopened, the new revision is an ordinary draft of the same case.
    editor, form = open_from_list(qtbot, window, sent["id"])
    assert not editor.read_only and not editor.amend_button.isVisible()
    assert "Revision 2 of case number " + CASE_NUMBER in editor.standing.text()


def test_amend_by_mouse_on_a_queued_report_then_a_click_on_unknown_makes_its_next_revision(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    reports_at_each_stage: dict[str, dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
) -> None:
    queued = reports_at_each_stage["queued"]
    window = make_window()
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, queued["id"])
    assert (
        editor.read_only and "queued" in editor.standing.text() and "no case number yet" in editor.standing.text()
    )
    date_unknown = form.fields["discovery.date_unknown"]
    assert isinstance(date_unknown, CheckField)
    unfold(form, "discovery.date_unknown")
    QTest.mouseClick(date_unknown.box, Qt.MouseButton.LeftButton)
    assert not date_unknown.box.isChecked()

    QTest.mouseClick(editor.amend_button, Qt.MouseButton.LeftButton)
    assert not editor.read_only
    assert form.fields["event_type"].focus_target().hasFocus()  # the button went away: back to the top
    with qtbot.waitSignal(editor.saved, timeout=10_000) as saved:
        QTest.mouseClick(date_unknown.box, Qt.MouseButton.LeftButton)
    assert saved.args == [2] and date_unknown.box.isChecked()
    back_to_the_list(qtbot, window, editor)
    (revision, state, _), content = stored_row(workstation_factory(), queued["id"])
    assert (revision, state) == (2, "draft") and content is not None and "date" not in content["discovery"]
    with workstation_factory().session(PROFILE, SECRET) as session:
        assert session.status_counts()["queued"] == 1  # revision 1 is still sent as it was


def test_a_read_only_report_can_be_read_with_the_keyboard(
    qtbot: Any, make_window: Callable[..., MainWindow], reports_at_each_stage: dict[str, dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, reports_at_each_stage["sent"]["id"])
    f = form.fields
    # A screen reader hears that a tick box or a drop-down will not change (a text box says so itself).
    for path in ("discovery.date_unknown", "patient.gender", "categories"):
        assert f[path].focus_target().accessibleDescription().startswith("Read-only"), path
    assert f["categories"].focus_target().accessibleDescription().endswith(f["categories"].help_text())
    # Tab visits the answers (text boxes, tick boxes, drop-downs, lists), as in a draft.
    wanted = {
        f[path].focus_target()
        for path in ("categories", "discovery.date", "location.description", "narrative", "patient.gender")
    }
    visited = set()
    for _ in range(40):
        focused = QApplication.focusWidget()
        assert focused is not None
        visited.add(focused)
        qtbot.keyClick(focused, Qt.Key.Key_Tab)
    assert wanted <= visited
    # Arrow keys move along a radio group without choosing, and text can be selected to copy.
    harm = f["harm.level"]
    assert isinstance(harm, RadioField)
    chosen = harm.value()
    harm.focus_target().setFocus()
    qtbot.keyClick(harm.focus_target(), Qt.Key.Key_Down)
    assert harm.value() == chosen and QApplication.focusWidget() in harm.buttons.values()
    assert QApplication.focusWidget() is not harm.buttons[str(chosen)] or chosen == list(harm.buttons)[-1]
    description = line_edit_of(form, "location.description")
    description.setFocus()
    qtbot.keyClick(description, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert description.selectedText() == description.text() != ""
    assert not editor.has_unsaved_changes


def test_a_draft_opens_editable_as_before(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    reports_at_each_stage: dict[str, dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
) -> None:
    draft = reports_at_each_stage["draft"]
    window = make_window()
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, draft["id"])
    assert not editor.read_only and not editor.amend_button.isVisible() and not editor.standing.isVisible()
    assert editor.submit_button.isVisible() and editor.heading.text() == "Draft report"
    date_unknown = form.fields["discovery.date_unknown"]
    assert isinstance(date_unknown, CheckField)
    unfold(form, "discovery.date_unknown")
    with qtbot.waitSignal(editor.saved, timeout=10_000) as saved:
        QTest.mouseClick(date_unknown.box, Qt.MouseButton.LeftButton)
    assert saved.args == [1]  # a draft is saved in place
    back_to_the_list(qtbot, window, editor)
    (revision, state, _), content = stored_row(workstation_factory(), draft["id"])
    assert (revision, state) == (1, "draft") and content is not None and "date" not in content["discovery"]


def test_the_wheel_over_a_read_only_drop_down_scrolls_the_form(
    qtbot: Any, make_window: Callable[..., MainWindow], reports_at_each_stage: dict[str, dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    _editor, form = open_from_list(qtbot, window, reports_at_each_stage["sent"]["id"])
    gender = form.fields["patient.gender"]
    assert isinstance(gender, ChoiceField)
    chosen = gender.value()
    form.ensureWidgetVisible(gender.combo, 50, form.viewport().height() // 2)
    before = form.verticalScrollBar().value()
    turn_wheel(form, gender.combo)
    qtbot.waitUntil(lambda: form.verticalScrollBar().value() > before)  # the turn went on to the page
    assert gender.value() == chosen


def test_locking_empties_the_case_line(
    qtbot: Any, make_window: Callable[..., MainWindow], reports_at_each_stage: dict[str, dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    editor, _form = open_from_list(qtbot, window, reports_at_each_stage["sent"]["id"])
    assert PSO_NOTE in editor.standing.text()
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock_action.trigger()
    assert not any(
        PSO_NOTE in label.text() or CASE_NUMBER in label.text() for label in window.findChildren(QLabel)
    )


def test_a_long_note_from_the_pso_is_cut_short_in_the_case_line() -> None:
    note = "Please add the time the fall was found. " * 50
    text = standing_text(Standing("submitted", 3, CASE_NUMBER, "more_info_requested", note))
    assert text.startswith(f"Sent to the PSO, case number {CASE_NUMBER}. At the PSO: More information requested.")
    assert "…" in text and len(text) < NOTE_SHOWN + 300
    assert "revision 4" in text  # Amend makes the next one


def test_a_change_that_gets_past_the_inputs_is_undone_and_not_saved(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    reports_at_each_stage: dict[str, dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
) -> None:
    sent = reports_at_each_stage["sent"]
    before = stored_row(workstation_factory(), sent["id"])
    window = make_window()
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, sent["id"])
    date_unknown = form.fields["discovery.date_unknown"]
    gender = form.fields["patient.gender"]
    assert isinstance(date_unknown, CheckField) and isinstance(gender, ChoiceField)
    # What a screen reader's or voice control's "press" does: the widget's own slot, no mouse or key event.
    date_unknown.box.click()
    gender.combo.setCurrentIndex(0)
    qtbot.waitUntil(lambda: form.report() == sent)
    assert not date_unknown.box.isChecked() and not editor.has_unsaved_changes
    back_to_the_list(qtbot, window, editor)
    assert stored_row(workstation_factory(), sent["id"]) == before


def test_the_case_line_follows_a_sync_that_ends_while_the_report_is_open(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    server: RunningServer,
) -> None:
    (queued,) = sample_reports(1, seed=12)
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        session.add_reports([queued], submit=True)
        link(session, server)
    window = make_window(auto_send=False)  # the report is open, still queued, when F9 sends it
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, queued["id"])
    assert "no case number yet" in editor.standing.text()

    with qtbot.waitSignal(window.sync_panel.finished, timeout=30_000):
        window.sync_panel.send_action.trigger()
    qtbot.waitUntil(lambda: editor.standing.text().startswith("Sent to the PSO, case number "))
    assert editor.read_only and "Amend (Ctrl+E)" in editor.standing.text()
    assert form.report() == queued and stored_row(workstation, queued["id"])[0][:2] == (1, "submitted")
