"""A risk manager's review leaves the window without waiting for the status timer, and Send to PSO (F9) works
beside the report (issue 12, found by an outside test: a review saved with the PSO up stayed on the workstation
for up to 15 minutes while the status line said "All sent", and F9 did nothing on the report's screen, so the
other risk manager did not see it "after the next sync" of theirs).

Real reference server over TLS on loopback, real SQLCipher profiles, the real window driven by keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pso_desktop.services import review, syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from pso_server.practice import RunningServer
from tests.support.reports import sample_reports
from tests.support.sync import FAST_RETRIES, Account, link, practice_server
from tests.support.ui import PROFILE, SECRET, open_from_list, unlock

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
OTHER = "rm2"  # the facility's other risk manager, on the same workstation for the test
OTHER_SECRET = "other risk manager secret"


@pytest.fixture
def facility(
    tmp_path: Path, workstation_factory: Callable[[], Workstation]
) -> Iterator[tuple[RunningServer, str]]:
    """A reporter's report at the PSO; profile PROFILE signed in as risk manager rm1 and synced (it holds the
    facility's copy); profile OTHER signed in as rm2. Yields the server and the report's id."""
    accounts = {
        "nurse1": Account("nurse1 password"),
        "rm1": Account("rm1 password", role="risk_manager"),
        "rm2": Account("rm2 password", role="risk_manager"),
    }
    with practice_server(tmp_path / "server", accounts) as server:
        workstation = workstation_factory()
        report = sample_reports(1, seed=12)[0]
        for profile, secret, username in (
            ("nurse1", "nurse1 secret 123", "nurse1"),
            (PROFILE, SECRET, "rm1"),
            (OTHER, OTHER_SECRET, "rm2"),
        ):
            workstation.create_profile(profile, secret)
            with workstation.session(profile, secret) as session:
                link(session, server, username, f"{username} password")
                if profile == "nurse1":
                    session.add_reports([report], submit=True)
                syncing.sync(session, policy=FAST_RETRIES)
        yield server, str(report["id"])


def _state_seen_by_other(workstation: Workstation, report_id: str) -> Any:
    with workstation.session(OTHER, OTHER_SECRET) as session:
        syncing.sync(session, policy=FAST_RETRIES)
        return review.review(session, report_id).fields["state"].value


def _wait_for_other(
    qtbot: Any, workstation: Workstation, report_id: str, seconds: float, state: str = "in_review"
) -> Any:
    deadline = time.monotonic() + seconds
    seen = _state_seen_by_other(workstation, report_id)
    while seen != state and time.monotonic() < deadline:
        qtbot.wait(300)
        seen = _state_seen_by_other(workstation, report_id)
    return seen


def _review_in_progress(qtbot: Any, window: MainWindow, report_id: str) -> None:
    """Opens the facility's report, moves to its review (Ctrl+Shift+V), picks the next state and saves it."""
    editor, _form = open_from_list(qtbot, window, report_id)
    panel = editor.review_panel
    qtbot.waitUntil(lambda: panel.review is not None)
    qtbot.keyClick(editor, Qt.Key.Key_V, CTRL_SHIFT)
    assert QApplication.focusWidget() is panel.state
    qtbot.keyClick(panel.state, Qt.Key.Key_Down)
    assert panel.state.currentData() == "in_review"
    with qtbot.waitSignal(panel.recorded, timeout=10_000):
        qtbot.keyClick(panel.state, Qt.Key.Key_R, CTRL_SHIFT)


def test_a_saved_review_goes_up_by_itself(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    facility: tuple[RunningServer, str],
) -> None:
    _server, report_id = facility
    window = make_window()
    with qtbot.waitSignal(window.sync_panel.finished, timeout=20_000):  # the run at unlock, before the review
        unlock(qtbot, window)
    _review_in_progress(qtbot, window, report_id)
    # Well within the send timer (5 min) and the status timer (15 min) the review was waiting for before.
    assert _wait_for_other(qtbot, workstation_factory(), report_id, 20) == "in_review"


def test_f9_beside_the_report_sends_the_review(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    facility: tuple[RunningServer, str],
) -> None:
    _server, report_id = facility
    window = make_window(auto_send=False)  # nothing goes by itself: only F9
    unlock(qtbot, window)
    _review_in_progress(qtbot, window, report_id)
    workstation = workstation_factory()
    assert _state_seen_by_other(workstation, report_id) != "in_review"
    assert window.editor is not None and window.stack.currentWidget() is window.editor
    with qtbot.waitSignal(window.sync_panel.finished, timeout=20_000):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_F9)
    assert _state_seen_by_other(workstation, report_id) == "in_review"


def test_a_choice_not_yet_saved_survives_a_note_and_the_sync_it_starts(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    facility: tuple[RunningServer, str],
) -> None:
    """The state is chosen, then a note added before saving it: the note is stored, sent, and the panel read
    again twice (after the note, after the sync); the chosen state stays chosen and is saved after."""
    _server, report_id = facility
    window = make_window()
    with qtbot.waitSignal(window.sync_panel.finished, timeout=20_000):
        unlock(qtbot, window)
    editor, _form = open_from_list(qtbot, window, report_id)
    panel = editor.review_panel
    qtbot.waitUntil(lambda: panel.review is not None)
    qtbot.keyClick(editor, Qt.Key.Key_V, CTRL_SHIFT)
    while panel.state.currentData() != "closed":
        qtbot.keyClick(panel.state, Qt.Key.Key_Down)
    panel.new_note.setFocus()
    qtbot.keyClicks(panel.new_note, "Asked the unit for the bed alarm log")
    with qtbot.waitSignal(window.sync_panel.finished, timeout=20_000):
        qtbot.keyClick(panel.new_note, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not window.sync_panel.running and panel.notes.count() == 1)
    qtbot.wait(500)  # the read after the sync has come back
    assert panel.state.currentData() == "closed"
    assert panel.review is not None and panel.review.fields["state"].value != "closed"  # not saved yet
    with qtbot.waitSignal(panel.recorded, timeout=10_000):
        qtbot.keyClick(panel.new_note, Qt.Key.Key_R, CTRL_SHIFT)
    assert _wait_for_other(qtbot, workstation_factory(), report_id, 20, "closed") == "closed"


def test_enter_in_the_due_date_adds_the_action(
    qtbot: Any, make_window: Callable[..., MainWindow], facility: tuple[RunningServer, str]
) -> None:
    """Text, Tab, owner, Tab, due date, Enter: the action is added (Enter adds a note; it did nothing here)."""
    _server, report_id = facility
    window = make_window(auto_send=False)
    unlock(qtbot, window)
    editor, _form = open_from_list(qtbot, window, report_id)
    panel = editor.review_panel
    qtbot.waitUntil(lambda: panel.review is not None)
    panel.action_text.setFocus()
    qtbot.keyClicks(panel.action_text, "Audit the bed alarms")
    qtbot.keyClick(panel.action_text, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is panel.action_owner
    qtbot.keyClicks(panel.action_owner, "rm2")
    qtbot.keyClick(panel.action_owner, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is panel.action_due
    qtbot.keyClicks(panel.action_due, "2027-01-15")
    with qtbot.waitSignal(panel.recorded, timeout=10_000):
        qtbot.keyClick(panel.action_due, Qt.Key.Key_Return)
    assert panel.review is not None
    assert [(a.text, a.owner, str(a.due)) for a in panel.review.actions] == [
        ("Audit the bed alarms", "rm2", "2027-01-15")
    ]
    assert panel.action_text.text() == panel.action_owner.text() == panel.action_due.text() == ""
