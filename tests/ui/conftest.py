"""Fixtures for the window tests: real services (SQLCipher, key wrapping) with a fast KDF and an in-memory
keyring, and a main window whose worker is shut down after each test."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtDBus import QDBusConnection

from pso_desktop.services.backend import Backend
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.session_lock import WorkstationLockWatcher
from pso_desktop.ui.suspend import SuspendWatcher
from pso_desktop.ui.window import MainWindow
from tests.support.memory_keyring import MemoryKeyring
from tests.support.reports import sample_reports
from tests.support.sync import make_workstation
from tests.support.ui import PROFILE, REPORT_COUNT, SECRET


@pytest.fixture
def workstation_factory(pso_home: Path, memory_keyring: MemoryKeyring) -> Callable[[], Workstation]:
    def make() -> Workstation:
        return make_workstation(pso_home, memory_keyring)

    return make


@pytest.fixture
def stored_reports(workstation_factory: Callable[[], Workstation]) -> list[dict[str, Any]]:
    """Profile PROFILE with REPORT_COUNT reports, created through the real services before the window."""
    reports = sample_reports(REPORT_COUNT)
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        session.add_reports(reports[:4], submit=True)
        session.add_reports(reports[4:])
    return reports


@pytest.fixture
def make_window(qtbot: Any, workstation_factory: Callable[[], Workstation]) -> Iterator[Callable[..., MainWindow]]:
    """Builds a shown main window (waiting until its profile list is read); shuts every one down after."""
    windows: list[MainWindow] = []

    def make(
        *,
        idle_lock_ms: int = 600_000,
        backend: Backend | None = None,
        suspend_watcher: SuspendWatcher | None = None,
        lock_watcher: WorkstationLockWatcher | None = None,
        auto_send: bool = True,
    ) -> MainWindow:
        window = MainWindow(
            backend or Backend(workstation_factory),
            idle_lock_ms=idle_lock_ms,
            suspend_watcher=suspend_watcher,
            lock_watcher=lock_watcher,
            auto_send=auto_send,
        )
        windows.append(window)
        # Started: the profile list is shown (ready) and the keyring check, which comes after it, is done.
        with qtbot.waitSignals([window.ready, window.keyring_checked], timeout=10_000):
            window.show()
        return window

    yield make
    for window in windows:
        window.shutdown()
        window.deleteLater()


# Qt warnings fail every UI test (a warning usually means a wrong signal, a bad model index or a thread misuse).
# The offscreen platform of the tests warns that it cannot resize windows; that one is expected. Set here once
# for every test under tests/ui; a mark on a test itself is closer and so still wins.
QT_STRICT = (
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("propagateSizeHints", "does not support"),
)
UI_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest's collection hook sees every collected item, so only the ones under tests/ui are marked.
    for item in items:
        if item.path.is_relative_to(UI_TESTS):
            for mark in QT_STRICT:
                item.add_marker(mark)


@pytest.fixture
def private_bus() -> Iterator[tuple[Any, str]]:
    """A private D-Bus daemon (never the machine's buses) and a Qt connection to it."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed (Debian package dbus; scripts/setup.sh test installs it)")
    with subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as daemon:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().strip()
        bus = QDBusConnection.connectToBus(address, "pso-private-test-bus")
        try:
            assert bus.isConnected()
            yield bus, address
        finally:
            QDBusConnection.disconnectFromBus("pso-private-test-bus")
            daemon.terminate()
