"""The window's automatic backups: taken on the sync thread after unlock, abandoned by a lock that never waits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pso_desktop.services.workstation import Workstation
from pso_desktop.storage.database import check_integrity
from pso_desktop.texts import LOCKOUT_NOTE
from pso_desktop.ui.window import MainWindow
from tests.support.ui import PROFILE, SECRET, unlock


def backup_folder(home: Path) -> Path:
    return home / "profiles" / PROFILE / "backups"


def test_unlock_takes_a_backup_when_one_is_due(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    pso_home: Path,
    workstation_factory: Callable[[], Workstation],
) -> None:
    window = make_window()
    with qtbot.waitSignal(window.backup_done, timeout=20_000) as taken:
        unlock(qtbot, window)
    path = taken.args[0]
    assert path is not None and path.parent == backup_folder(pso_home)
    key = workstation_factory().keys.unlock(PROFILE, SECRET)
    assert check_integrity(path, key) == []

    window.lock()
    with qtbot.waitSignal(window.backup_done, timeout=20_000) as again:
        unlock(qtbot, window)
    assert again.args[0] is None  # the newest is minutes old: not due
    assert [p.name for p in backup_folder(pso_home).iterdir()] == [path.name]


def test_lock_goes_ahead_while_the_backup_waits_and_the_backup_is_abandoned(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], pso_home: Path
) -> None:
    window = make_window()
    release = threading.Event()
    window.sync_worker.submit(lambda: release.wait(30))  # the sync thread is busy (a long upload, say)
    try:
        unlock(qtbot, window)  # its backup is queued behind that
        with qtbot.waitSignal(window.locked, timeout=5_000):
            window.lock()
        # The session closes on the database worker although the sync thread has not moved yet.
        closed: list[bool] = []
        window.worker.submit(lambda: window.backend.unlocked, on_done=closed.append)
        qtbot.waitUntil(lambda: closed == [False], timeout=5_000)
    finally:
        release.set()
    with qtbot.waitSignal(window.backup_done, timeout=20_000) as outcome:
        pass
    assert outcome.args[0] is None
    folder = backup_folder(pso_home)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_create_page_says_what_a_forgotten_password_costs(make_window: Callable[..., MainWindow]) -> None:
    window = make_window()
    window.profile_screen.show_create_page()
    assert LOCKOUT_NOTE in window.profile_screen.create_hint.text()
