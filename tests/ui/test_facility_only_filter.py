"""A risk manager narrows the list to the facility's reports, or to their own, with the filter bar's "From"
(issue 12 leftover, found by an outside test: there was no such filter, and the Submitted chip counted the
facility's copies with the profile's own). Real reference server over TLS on loopback, real SQLCipher
profiles, the real window driven by keys; the list summary's printout names the filter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMenu

from pso_desktop.services import syncing
from pso_desktop.services.printout import list_printout
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.filter_bar import ChoiceButton
from pso_desktop.ui.window import MainWindow
from tests.support.reports import sample_reports
from tests.support.sync import FAST_RETRIES, Account, link, practice_server
from tests.support.ui import PROFILE, SECRET, shown_ids, unlock


@pytest.fixture
def reports(tmp_path: Path, workstation_factory: Callable[[], Workstation]) -> Iterator[tuple[set[str], set[str]]]:
    """Three reports of a reporter at the facility, two of risk manager rm1's own (profile PROFILE), all sent;
    PROFILE synced, so it holds the three as the facility's. Yields (the facility's ids, the own ids)."""
    accounts = {"nurse1": Account("nurse1 password"), "rm1": Account("rm1 password", role="risk_manager")}
    written = sample_reports(5, seed=7)
    theirs, own = written[:3], written[3:]
    with practice_server(tmp_path / "server", accounts) as server:
        workstation = workstation_factory()
        for profile, secret, username, batch in (
            ("nurse1", "nurse1 secret 123", "nurse1", theirs),
            (PROFILE, SECRET, "rm1", own),
        ):
            workstation.create_profile(profile, secret)
            with workstation.session(profile, secret) as session:
                link(session, server, username, f"{username} password")
                session.add_reports(batch, submit=True)
                syncing.sync(session, policy=FAST_RETRIES)
        with workstation.session(PROFILE, SECRET) as session:
            syncing.sync(session, policy=FAST_RETRIES)  # the reporter's three, now at the PSO
        yield {str(r["id"]) for r in theirs}, {str(r["id"]) for r in own}


def _toggle(qtbot: Any, window: MainWindow, button: ChoiceButton, label: str) -> None:
    """Space opens the filter's menu; Down to the choice, Enter ticks (or unticks) it, Esc closes the menu (it
    stays open for more ticks); the list reloads."""

    def choose() -> None:
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu)
        for _ in menu.actions():
            QTest.keyClick(menu, Qt.Key.Key_Down)
            active = menu.activeAction()
            if active is not None and active.text() == label:
                QTest.keyClick(menu, Qt.Key.Key_Return)
                QTest.keyClick(menu, Qt.Key.Key_Escape)
                return
        menu.close()

    button.setFocus()
    QTimer.singleShot(200, choose)
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(button, Qt.Key.Key_Space)


def _submitted_chip(window: MainWindow) -> str:
    return window.reports_screen.count_labels["submitted"].text()


def test_from_narrows_to_the_facility_or_to_ones_own(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    reports: tuple[set[str], set[str]],
) -> None:
    theirs, own = reports
    window = make_window(auto_send=False)
    unlock(qtbot, window)
    bar = window.reports_screen.filter_bar
    assert shown_ids(window) == theirs | own

    _toggle(qtbot, window, bar.origin, "Your facility's")
    assert bar.origin.text() == "From: Your facility's"
    assert shown_ids(window) == theirs
    # The facility's copies have their own chip; a state's chip counts the profile's own reports only.
    qtbot.waitUntil(lambda: window.reports_screen.count_labels["facility"].text() == "Facility: 3")
    assert _submitted_chip(window) == "Submitted: 0"

    _toggle(qtbot, window, bar.origin, "Your facility's")
    _toggle(qtbot, window, bar.origin, "Your own")
    assert shown_ids(window) == own
    qtbot.waitUntil(lambda: _submitted_chip(window).endswith(": 2"))

    query = window.reports_screen.current_query()
    assert query.origins == ("mine",)
    with workstation_factory().session(PROFILE, SECRET) as session:
        summary = list_printout(session, query)
    filters = dict(summary.sections[0].rows)
    assert filters["From"] == "Your own" and filters["Reports"] == "2"


@pytest.fixture
def facility_only(tmp_path: Path, workstation_factory: Callable[[], Workstation]) -> Iterator[set[str]]:
    """A reporter's three reports, sent; risk manager rm1's profile (PROFILE) has none of its own, synced, so it
    holds the three as the facility's. Yields their ids."""
    accounts = {"nurse1": Account("nurse1 password"), "rm1": Account("rm1 password", role="risk_manager")}
    theirs = sample_reports(3, seed=12)
    with practice_server(tmp_path / "server", accounts) as server:
        workstation = workstation_factory()
        workstation.create_profile("nurse1", "nurse1 secret 123")
        with workstation.session("nurse1", "nurse1 secret 123") as session:
            link(session, server, "nurse1", "nurse1 password")
            session.add_reports(theirs, submit=True)
            syncing.sync(session, policy=FAST_RETRIES)
        workstation.create_profile(PROFILE, SECRET)
        with workstation.session(PROFILE, SECRET) as session:
            link(session, server, "rm1", "rm1 password")
            assert syncing.sync(session, policy=FAST_RETRIES).facility_reports == 3
        yield {str(r["id"]) for r in theirs}


def test_state_chips_count_ones_own_reports_and_the_facility_has_its_own_chip(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    facility_only: set[str],
) -> None:
    """Outside test: with "From: any", a risk manager with no report of its own saw "Submitted: 3" while
    `pso-desktop status --json` said 0, and the list summary's "By state" said the same."""
    window = make_window(auto_send=False)
    unlock(qtbot, window)
    screen = window.reports_screen
    chips = screen.count_labels
    assert screen.current_query().origins == ()
    assert shown_ids(window) == facility_only
    qtbot.waitUntil(lambda: chips["facility"].text() == "Facility: 3")
    assert {state: chip.text() for state, chip in chips.items() if state != "facility"} == {
        "draft": "Draft: 0",
        "queued": "Queued: 0",
        "sending": "Sending: 0",
        "submitted": "Submitted: 0",
        "needs_attention": "Needs attention: 0",
    }
    assert chips["facility"].isVisible()
    with workstation_factory().session(PROFILE, SECRET) as session:
        status = session.status_counts()  # what `pso-desktop status --json` prints
        by_state = dict(
            next(
                s for s in list_printout(session, screen.current_query()).sections if s.heading == "By state"
            ).rows
        )
    assert status["submitted"] == 0 and sum(status.values()) == 0
    assert by_state == {"Facility": "3"}

    # The Facility chip, by keys, shows the facility's copies; the Submitted chip the profile's own (none).
    chips["facility"].setFocus()
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(chips["facility"], Qt.Key.Key_Space)
    assert chips["facility"].isChecked() and shown_ids(window) == facility_only
    chips["submitted"].setFocus()
    with qtbot.waitSignal(screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(chips["submitted"], Qt.Key.Key_Space)
    assert not chips["facility"].isChecked() and screen.current_query().states == ("submitted",)
    assert shown_ids(window) == set()
