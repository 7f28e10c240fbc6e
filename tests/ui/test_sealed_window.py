"""The locked window runs the sealed outbox's agent on a thread of its own: reports submitted before the lock
reach the real reference server (TLS on loopback) with no unlock; after the unlock, Send to PSO finds them there
(the server's dedupe), every report shows its case number and the spool is empty."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.sync.transport import ServerSettings
from pso_desktop.ui.window import MainWindow
from pso_server.practice import RunningServer
from tests.support.relay import coming_back
from tests.support.reports import sample_reports
from tests.support.sync import practice_server
from tests.support.ui import PROFILE, SECRET, unlock

ACCOUNT, PASSWORD = "nurse1", "nurse1 account password"
COUNT = 30


@pytest.fixture
def pso(tmp_path: Path) -> Iterator[RunningServer]:
    with practice_server(tmp_path / "server", {ACCOUNT: PASSWORD}) as running:
        yield running


def test_the_locked_window_delivers_the_spool_and_the_unlock_shows_case_numbers(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    pso: RunningServer,
    workstation_factory: Callable[[], Workstation],
    pso_home: Path,
) -> None:
    reports = sample_reports(COUNT, seed=21)
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        syncing.login(session, ServerSettings(pso.base_url, ca_file=str(pso.ca_path)), ACCOUNT, PASSWORD)
        session.add_reports(reports, submit=True)  # submitted, then the nurse locked the screen and left
    spool = pso_home / "spool" / PROFILE
    assert len(list(spool.glob("*.sealed"))) == COUNT

    window = make_window()  # starts locked: its agent sends the spool
    assert window.sealed_agent.allowed
    qtbot.waitUntil(lambda: pso.stats()["reports"] == COUNT, timeout=30_000)
    qtbot.waitUntil(lambda: not list(spool.glob("*.sealed")), timeout=10_000)

    unlock(qtbot, window)
    assert not window.sealed_agent.allowed  # unlocked and in view: the outbox sends
    with qtbot.waitSignal(window.sync_panel.finished, timeout=30_000):
        qtbot.keyClick(window.reports_screen.table, Qt.Key.Key_F9)
    assert pso.stats()["reports"] == COUNT and pso.stats()["revisions"] == COUNT
    window.showMinimized()  # minimised, the agent sends even while unlocked
    qtbot.waitUntil(lambda: window.sealed_agent.allowed, timeout=5_000)
    window.showNormal()
    qtbot.waitUntil(lambda: not window.sealed_agent.allowed, timeout=5_000)
    window.lock()
    assert window.sealed_agent.allowed
    with workstation.session(PROFILE, SECRET) as session:
        for report in reports:
            summary = session.store.summary(report["id"])
            assert summary is not None and summary.state == "submitted"
            assert summary.server_ref == pso.report(report["id"]).server_ref


def test_the_locked_window_sends_within_the_probe_interval_once_the_server_is_back(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    pso_home: Path,
    tmp_path: Path,
) -> None:
    (pso_home / "policy.json").write_text('{"sealed_outbox": {"probe_seconds": 2}}')
    with coming_back(tmp_path / "server", {ACCOUNT: PASSWORD}) as pso:
        workstation = workstation_factory()
        workstation.create_profile(PROFILE, SECRET)
        with workstation.session(PROFILE, SECRET) as session:
            syncing.login(session, ServerSettings(pso.relay.url, ca_file=str(pso.ca_path)), ACCOUNT, PASSWORD)
        pso.down()
        with workstation.session(PROFILE, SECRET) as session:
            session.add_reports(sample_reports(200, seed=22), submit=True)  # during the outage; then locked
        spool = pso_home / "spool" / PROFILE
        window = make_window()
        qtbot.wait(2500)  # the locked window's agent finds no server and waits
        assert len(list(spool.glob("*.sealed"))) == 200
        server = pso.up()
        came_up = time.monotonic()
        qtbot.waitUntil(lambda: not list(spool.glob("*.sealed")), timeout=30_000)
        assert time.monotonic() - came_up < 2 + 8  # the probe interval, and the upload on a busy machine
        assert server.stats()["reports"] == 200 and server.stats()["revisions"] == 200
        assert window.sealed_agent.allowed
