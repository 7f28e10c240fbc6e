"""Issue 12, item 2 in the real window: a risk manager opens a facility report from the list with the keyboard, it
is read-only (no Amend), and the review panel beside it is used by keys alone: state, assignee, a note, an
action, a save; after a sync the other risk manager's concurrent change shows as a conflict, resolved by keys.
The other risk manager works through the real services; both against the real server over TLS on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pso_desktop.services import review, syncing
from pso_desktop.services.workstation import Session, Workstation
from pso_desktop.storage.report_query import ReportQuery
from pso_desktop.sync.transport import ServerSettings
from pso_desktop.ui.window import MainWindow
from pso_server.practice import RunningServer
from tests.support.reports import sample_reports
from tests.support.sync import Account, practice_server
from tests.support.ui import PROFILE, SECRET, open_from_list, unlock

FACILITY = "North General"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    roles = (("rm1", "risk_manager"), ("rm2", "risk_manager"), ("nurse", "reporter"))
    accounts = {name: Account(f"{name} account password", role, FACILITY) for name, role in roles}
    with practice_server(tmp_path / "server", accounts) as running:
        yield running


def _linked(
    stack: ExitStack, workstation: Workstation, server: RunningServer, profile: str, account: str
) -> Session:
    workstation.create_profile(profile, SECRET)
    opened = stack.enter_context(workstation.session(profile, SECRET))
    settings = ServerSettings(server.base_url, ca_file=str(server.ca_path))
    syncing.login(opened, settings, account, f"{account} account password")
    return opened


def _focused() -> Any:
    return QApplication.focusWidget()


def test_a_risk_manager_reviews_a_facility_report_by_keys(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    server: RunningServer,
) -> None:
    workstation = workstation_factory()
    (sent,) = sample_reports(1, seed=31)
    with ExitStack() as stack:
        nurse = _linked(stack, workstation, server, "nurse-profile", "nurse")
        nurse.add_reports([sent], submit=True)
        assert syncing.sync(nurse).submitted == 1
    with ExitStack() as stack:
        mine = _linked(stack, workstation, server, PROFILE, "rm1")
        other = _linked(stack, workstation, server, "rm2-profile", "rm2")
        syncing.sync(other)
        review.change_field(other, sent["id"], "state", "in_review")
        review.add_note(other, sent["id"], "Asked the unit for the pump log.")
        syncing.sync(other)
        assert syncing.sync(mine).facility_reports == 1
    with ExitStack() as stack:
        other = stack.enter_context(workstation.session("rm2-profile", SECRET))
        _review_by_keys(qtbot, make_window, sent, other)
        # Opening the facility report and each review change are audited, naming the report only.
        mine = stack.enter_context(workstation.session(PROFILE, SECRET))
        entries = [
            (e.action, e.report_id, e.detail) for e in mine.audit.entries() if e.action in ("view", "review")
        ]
        assert entries == [
            ("view", sent["id"], "facility report"),
            ("review", sent["id"], "state changed"),
            ("review", sent["id"], "assignee changed"),
            ("review", sent["id"], "note added"),
            ("review", sent["id"], "action added"),
            ("review", sent["id"], "state changed"),
        ]
        assert mine.audit.verify()


def _review_by_keys(
    qtbot: Any, make_window: Callable[..., MainWindow], sent: dict[str, Any], other: Session
) -> None:
    # F9 alone sends: the review stays local until the other risk manager has closed the report on the same
    # version, so the conflict comes back to this window (sending by itself could send it first).
    window = make_window(auto_send=False)
    unlock(qtbot, window)
    editor, form = open_from_list(qtbot, window, sent["id"])
    panel = editor.review_panel
    assert editor.heading.text() == "Facility report (read-only)" and editor.read_only
    assert not editor.amend_button.isVisible() and not editor.amend_action.isEnabled()
    assert "only its reporter can change it" in editor.standing.text()
    qtbot.waitUntil(lambda: panel.review is not None)
    assert panel.isVisible() and panel.state.currentData() == "in_review"
    assert panel.notes.item(0).text().endswith("Asked the unit for the pump log.")
    for widget in panel.tab_stops():
        assert widget.accessibleName(), widget

    # Keys only: to the panel, the next state, Tab to the assignee, type, save.
    qtbot.keyClick(
        _focused(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert _focused() is panel.state
    qtbot.keyClick(panel.state, Qt.Key.Key_Down)
    assert panel.state.currentData() == "waiting_for_information"
    qtbot.keyClick(panel.state, Qt.Key.Key_Tab)
    assert _focused() is panel.assignee
    qtbot.keyClicks(panel.assignee, "rm1")
    with qtbot.waitSignal(panel.saved, timeout=10_000):
        qtbot.keyClick(
            panel.assignee, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        )
    # Tab on to the note, type it, Enter; then the action, its owner, Tab past the due date to Add.
    panel.new_note.setFocus()
    qtbot.keyClicks(panel.new_note, "Family informed.")
    with qtbot.waitSignal(panel.saved, timeout=10_000):
        qtbot.keyClick(panel.new_note, Qt.Key.Key_Return)
    qtbot.keyClick(panel.new_note, Qt.Key.Key_Tab)
    assert _focused() is panel.add_note_button
    qtbot.keyClick(_focused(), Qt.Key.Key_Tab)
    assert _focused() is panel.actions_list
    qtbot.keyClick(_focused(), Qt.Key.Key_Tab)
    assert _focused() is panel.action_text
    qtbot.keyClicks(panel.action_text, "Check the pump firmware")
    qtbot.keyClick(panel.action_text, Qt.Key.Key_Tab)
    qtbot.keyClicks(panel.action_owner, "biomed")
    qtbot.keyClick(panel.action_owner, Qt.Key.Key_Tab)
    assert _focused() is panel.action_due
    qtbot.keyClicks(panel.action_due, "2027-02-30")  # no such day: said, and nothing is added
    qtbot.keyClick(panel.action_due, Qt.Key.Key_Tab)
    assert _focused() is panel.add_action_button
    with qtbot.waitSignal(panel.failed, timeout=5_000) as said:
        qtbot.keyClick(panel.add_action_button, Qt.Key.Key_Space)
    assert said.args == ["Write the action's due date as YYYY-MM-DD (for example 2027-01-31), or leave it empty."]
    assert _focused() is panel.action_due and panel.actions_list.count() == 0
    qtbot.keyClicks(panel.action_due, "2027-02-28")
    qtbot.keyClick(panel.action_due, Qt.Key.Key_Tab)
    with qtbot.waitSignal(panel.saved, timeout=10_000):
        qtbot.keyClick(panel.add_action_button, Qt.Key.Key_Space)
    assert panel.actions_list.item(0).text().startswith("Check the pump firmware (biomed, due 2027-02-28; by rm1)")
    assert form.report() == sent  # the report itself never changed

    # Meanwhile the other risk manager closes it, on the version both saw: the window's sync shows the conflict.
    review.change_field(other, sent["id"], "state", "closed")
    syncing.sync(other)
    with qtbot.waitSignal(window.sync_panel.finished, timeout=30_000):
        window.sync_panel.send_action.trigger()
    qtbot.waitUntil(lambda: panel.conflicts.isVisible(), timeout=10_000)
    assert "rm1 set it to 'Waiting for information' at the same time as 'Closed'" in panel.conflicts.text()
    assert panel.state.currentData() == "closed"

    # Resolved by keys: keep 'Closed' and save; after the next sync neither side has a conflict.
    qtbot.keyClick(
        _focused(), Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    with qtbot.waitSignal(panel.saved, timeout=10_000):
        qtbot.keyClick(
            panel.state, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        )
    with qtbot.waitSignal(window.sync_panel.finished, timeout=30_000):
        window.sync_panel.send_action.trigger()
    qtbot.waitUntil(lambda: not panel.conflicts.isVisible(), timeout=10_000)
    syncing.sync(other)
    seen = review.review(other, sent["id"])
    assert (seen.fields["state"].value, seen.fields["state"].conflicts) == ("closed", ())
    assert seen.fields["assignee"].value == "rm1"
    assert [n.text for n in seen.notes] == ["Asked the unit for the pump log.", "Family informed."]
    assert [(a.text, a.owner) for a in seen.actions] == [("Check the pump firmware", "biomed")]

    # The list's review filter (ticked in the filter bar) shows it under Closed only.
    screen = window.reports_screen
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(_focused(), Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    for state, expected in (("closed", 1), ("in_review", 0)):
        with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
            screen.filter_bar.review_state.set_selected((state,))
            screen.filter_bar.changed.emit()
        assert screen.model.rowCount() == expected


def test_the_review_state_filter_selects_exactly(workstation_factory: Callable[[], Workstation]) -> None:
    """The storage query behind the filter, on a seeded profile: checked against a plain filter of the same rows."""
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        _seed_review_states(session)
        rows = session._conn.execute("SELECT id, review_state FROM reports").fetchall()
        for chosen in (("new",), ("closed", "in_review"), ("",), ("", "new")):
            expected = {i for i, s in rows if (s or "") in chosen}
            got = {r.id for r in session.store.list_summaries(query=ReportQuery(review_states=chosen), limit=1000)}
            assert got == expected, chosen
            assert session.store.count_matching(ReportQuery(review_states=chosen)) == len(expected)


def _seed_review_states(session: Session) -> None:
    reports = sample_reports(12, seed=5)
    session.add_reports(reports)
    states = [None, "new", "in_review", "waiting_for_information", "closed"]
    with session.write():
        for i, report in enumerate(reports):
            session._conn.execute(
                "UPDATE reports SET review_state = ? WHERE id = ?", (states[i % len(states)], report["id"])
            )
