"""Issue 7: a Submit killed after its sealed copy was spooled, the agent delivered that copy, and the draft is
still here. The unlock numbers the draft above the PSO's copy; the window (not only the CLI) tells the clinician
once, in a line a screen reader reaches, and not again at the next unlock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.sync.sealed import Spool
from pso_desktop.sync.transport import ServerSettings
from pso_desktop.ui.window import MainWindow
from pso_server.practice import RunningServer
from tests.support.reports import sample_reports
from tests.support.sync import practice_server
from tests.support.ui import PROFILE, SECRET, open_from_list, unlock

ACCOUNT, PASSWORD = "nurse1", "nurse1 account password"
CASE = "PSO-2026-000042"
EXPECTED = (
    f"This report was already sent to the PSO as case {CASE} when PSO Desktop stopped during its Submit; "
    "it stays here as a draft you can change and submit again as an update."
)


@pytest.fixture
def pso(tmp_path: Path) -> Iterator[RunningServer]:
    with practice_server(tmp_path / "server", {ACCOUNT: PASSWORD}) as running:
        yield running


def test_the_window_says_once_that_a_draft_had_already_reached_the_pso(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    pso: RunningServer,
    workstation_factory: Callable[[], Workstation],
) -> None:
    report = sample_reports(1, seed=73)[0]
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        syncing.login(session, ServerSettings(pso.base_url, ca_file=str(pso.ca_path)), ACCOUNT, PASSWORD)
        session.add_reports([report])  # the draft whose Submit was killed after its spool write
        assert session.sealed is not None
        # What the agent records before the entry leaves the spool: the PSO holds that revision, with its case.
        session.sealed.spool.record_delivered(
            [{"report_id": report["id"], "revision": report["revision"], "status": "accepted", "server_ref": CASE}]
        )

    window = make_window(auto_send=False)
    notice = window.reports_screen.notice
    assert notice.isHidden()
    unlock(qtbot, window)
    expected = EXPECTED
    assert notice.isVisible() and notice.text() == expected
    assert notice.accessibleName() == "Notice" and notice.accessibleDescription() == expected
    assert window.statusBar().currentMessage() == expected
    with workstation.session(PROFILE, SECRET, read_only=True) as session:
        summary = session.store.summary(report["id"])
        assert summary is not None and summary.state == "draft" and summary.server_ref == CASE

    # The report itself, opened from the list by Enter, says in its header that it is a draft of that case.
    editor, _form = open_from_list(qtbot, window, report["id"])
    assert editor.heading.text() == "Draft report" and editor.standing.isVisible()
    assert f"Revision {report['revision'] + 1} of case number {CASE}, a draft" in editor.standing.text()

    window.lock()
    assert notice.isHidden() and notice.text() == ""
    unlock(qtbot, window)  # told once: the draft is already above the PSO's copy
    assert notice.isHidden() and "already sent" not in window.statusBar().currentMessage()


def test_a_submit_in_the_window_that_finds_its_draft_at_the_pso_says_so(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    pso: RunningServer,
    workstation_factory: Callable[[], Workstation],
    pso_home: Path,
) -> None:
    report = sample_reports(1, seed=74)[0]
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        syncing.login(session, ServerSettings(pso.base_url, ca_file=str(pso.ca_path)), ACCOUNT, PASSWORD)
        session.add_reports([report])
    window = make_window(auto_send=False)
    unlock(qtbot, window)
    assert window.reports_screen.notice.isHidden()
    editor, form = open_from_list(qtbot, window, report["id"])
    # Meanwhile an agent (another process) delivered a copy of this very revision from a killed CLI Submit.
    Spool(pso_home / "spool" / PROFILE).record_delivered(
        [{"report_id": report["id"], "revision": report["revision"], "status": "accepted", "server_ref": CASE}]
    )
    with qtbot.waitSignal(editor.submitted, timeout=10_000):
        qtbot.keyClick(
            form.fields["narrative"].focus_target(), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier
        )
    notice = window.reports_screen.notice
    qtbot.waitUntil(notice.isVisible, timeout=10_000)
    assert notice.text() == EXPECTED and notice.accessibleDescription() == EXPECTED
    with workstation.session(PROFILE, SECRET, read_only=True) as session:
        summary = session.store.summary(report["id"])
        assert summary is not None and summary.state == "queued" and summary.revision == report["revision"] + 1
