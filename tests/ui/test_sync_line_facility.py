"""The window's line about sending tells a risk manager what a sync did with the facility's reports and review
(issue 12 leftover, found by an outside test: it said "All sent at 03:06." and nothing of the facility, while
`pso-desktop sync` prints a Facility line). Real reference server over TLS on loopback, real SQLCipher
profiles, the real window driven by keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from tests.support.reports import sample_reports
from tests.support.sync import FAST_RETRIES, Account, link, practice_server
from tests.support.ui import PROFILE, SECRET, open_from_list, unlock

CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def theirs(tmp_path: Path, workstation_factory: Callable[[], Workstation]) -> Iterator[list[str]]:
    """Three reports of a reporter at the PSO; profile PROFILE signed in as risk manager rm1, never synced."""
    accounts = {"nurse1": Account("nurse1 password"), "rm1": Account("rm1 password", role="risk_manager")}
    written = sample_reports(3, seed=3)
    with practice_server(tmp_path / "server", accounts) as server:
        workstation = workstation_factory()
        workstation.create_profile("nurse1", "nurse1 secret 123")
        with workstation.session("nurse1", "nurse1 secret 123") as session:
            link(session, server, "nurse1", "nurse1 password")
            session.add_reports(written, submit=True)
            syncing.sync(session, policy=FAST_RETRIES)
        workstation.create_profile(PROFILE, SECRET)
        with workstation.session(PROFILE, SECRET) as session:
            link(session, server, "rm1", "rm1 password")
        yield [str(r["id"]) for r in written]


def _line(window: MainWindow) -> str:
    return window.sync_panel.status.full_text()


def test_the_line_says_what_came_from_the_facility(
    qtbot: Any, make_window: Callable[..., MainWindow], theirs: list[str]
) -> None:
    window = make_window(auto_send=False)
    unlock(qtbot, window)
    with qtbot.waitSignal(window.sync_panel.finished, timeout=20_000):
        qtbot.keyClick(window.reports_screen.table, Qt.Key.Key_F9)
    assert "Facility: 3 reports fetched at " in _line(window)

    editor, _form = open_from_list(qtbot, window, theirs[0])
    panel = editor.review_panel
    qtbot.waitUntil(lambda: panel.review is not None)
    qtbot.keyClick(editor, Qt.Key.Key_V, CTRL_SHIFT)
    qtbot.keyClick(panel.state, Qt.Key.Key_Down)
    with qtbot.waitSignal(panel.recorded, timeout=10_000):
        qtbot.keyClick(panel.state, Qt.Key.Key_R, CTRL_SHIFT)
    with qtbot.waitSignal(window.sync_panel.finished, timeout=20_000):
        qtbot.keyClick(panel.state, Qt.Key.Key_F9)
    line = _line(window)
    assert "Facility: 1 review change sent or received at " in line
    assert "reports fetched" not in line  # the last run's, not a sum
