"""Issue 9, item 5: the window locks when the workstation locks.

Linux is replayed for real: a private D-Bus daemon, and a small service (tests/support/fake_session_services.py,
jeepney) that owns logind's and the screensavers' names and emits their signals -- logind's Session.Lock, the
session's LockedHint, org.freedesktop.ScreenSaver and org.gnome.ScreenSaver ActiveChanged. Windows' message
filter is fed a real MSG structure; the IT policy's idle time is read by the real window."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from ctypes import wintypes
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtDBus import QDBusConnection

from pso_desktop.ui.session_lock import (
    WM_WTSSESSION_CHANGE,
    WTS_REMOTE_DISCONNECT,
    WTS_SESSION_LOCK,
    WorkstationLockWatcher,
    _WindowsSessionFilter,
    logind_session_path,
    wts_reason,
)
from pso_desktop.ui.window import MainWindow
from tests.support.ui import unlock

REPO = Path(__file__).resolve().parents[2]
LOCKING = ["lock", "hint", "fdo", "kde", "gnome"]


class Services:
    """The fake logind and screensavers, in their own process on the private bus."""

    def __init__(self, address: str, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_session_services", address, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert self.readline() == "ready"

    def readline(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.readline() == "sent"

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()  # ends it
        self.process.wait(10)
        self.process.stdout.close()


@pytest.fixture
def services(private_bus: tuple[Any, str]) -> Iterator[Services]:
    started = Services(private_bus[1])
    yield started
    started.close()


def _watcher(bus: Any, session_id: str | None = "c2") -> WorkstationLockWatcher:
    return WorkstationLockWatcher(system_bus=bus, session_bus=bus, session_id=session_id, platform="linux")


def test_logind_session_paths_are_escaped_as_logind_does() -> None:
    assert logind_session_path("c2") == "/org/freedesktop/login1/session/c2"
    assert logind_session_path("2") == "/org/freedesktop/login1/session/_32"
    assert logind_session_path("a-b.1") == "/org/freedesktop/login1/session/a_2db_2e1"


def test_every_source_is_listened_to(qtbot: Any, private_bus: tuple[Any, str]) -> None:
    watcher = _watcher(private_bus[0])
    assert watcher.session_path == "/org/freedesktop/login1/session/c2"
    assert set(watcher.sources) == {
        "logind Lock",
        "logind LockedHint",
        "org.freedesktop.ScreenSaver /org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver /ScreenSaver",
        "org.gnome.ScreenSaver /org/gnome/ScreenSaver",
    }


@pytest.mark.parametrize("command", LOCKING)
def test_each_lock_signal_reaches_the_watcher(
    qtbot: Any, private_bus: tuple[Any, str], services: Services, command: str
) -> None:
    watcher = _watcher(private_bus[0])
    with qtbot.waitSignal(watcher.workstation_locked, timeout=10_000) as blocker:
        services.send(command)
    assert blocker.args == ["lock"]


def test_signals_that_do_not_mean_a_lock_of_this_session_are_ignored(
    qtbot: Any, private_bus: tuple[Any, str], services: Services
) -> None:
    watcher = _watcher(private_bus[0])
    fired: list[str] = []
    watcher.workstation_locked.connect(fired.append)
    for command in ("other-lock", "hint-false", "fdo-false"):
        services.send(command)
    # then a real lock: once it has arrived, the earlier signals (sent first, same connection) were seen too
    with qtbot.waitSignal(watcher.workstation_locked, timeout=10_000):
        services.send("lock")
    assert fired == ["lock"]


def test_without_xdg_session_id_logind_is_asked_for_this_session(qtbot: Any, private_bus: tuple[Any, str]) -> None:
    bus, address = private_bus
    services = Services(address, "--answer-get-session")
    try:
        watcher = _watcher(bus, session_id="")
        qtbot.waitUntil(lambda: watcher.session_path is not None, timeout=10_000)
        assert services.readline() == "answered"
        assert watcher.session_path == "/org/freedesktop/login1/session/c2"
        with qtbot.waitSignal(watcher.workstation_locked, timeout=10_000):
            services.send("lock")
    finally:
        services.close()


@pytest.mark.parametrize("command", LOCKING)
def test_the_window_locks_when_the_workstation_locks(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    private_bus: tuple[Any, str],
    services: Services,
    command: str,
) -> None:
    window = make_window(lock_watcher=_watcher(private_bus[0]))
    unlock(qtbot, window)
    assert window.reports_screen.model.rowCount() > 0
    with qtbot.waitSignal(window.locked, timeout=10_000):
        services.send(command)
    assert window.reports_screen.model.rowCount() == 0
    assert window.stack.currentWidget() is window.profile_screen
    assert not window.is_unlocked
    assert window.statusBar().currentMessage() == "Locked because the workstation was locked."


# -- Windows: the native event filter, fed real MSG structures -------------------------------------------


def _msg(message: int, wparam: int) -> wintypes.MSG:
    msg = wintypes.MSG()
    msg.message = message
    msg.wParam = wparam
    return msg


def test_windows_session_messages_are_read_from_the_native_msg() -> None:
    lock, disconnect = (
        _msg(WM_WTSSESSION_CHANGE, WTS_SESSION_LOCK),
        _msg(WM_WTSSESSION_CHANGE, WTS_REMOTE_DISCONNECT),
    )
    unlock_msg, other = _msg(WM_WTSSESSION_CHANGE, 0x8), _msg(0x0100, WTS_SESSION_LOCK)  # unlock; WM_KEYDOWN
    assert wts_reason(ctypes.addressof(lock)) == "lock"
    assert wts_reason(ctypes.addressof(disconnect)) == "disconnect"
    assert wts_reason(ctypes.addressof(unlock_msg)) is None
    assert wts_reason(ctypes.addressof(other)) is None


def test_the_windows_filter_reports_and_never_swallows_the_message(qapp: Any) -> None:
    seen: list[str] = []
    event_filter = _WindowsSessionFilter(0, seen.append)
    msg = _msg(WM_WTSSESSION_CHANGE, WTS_REMOTE_DISCONNECT)
    assert event_filter.nativeEventFilter(b"windows_generic_MSG", ctypes.addressof(msg)) == (False, 0)
    assert event_filter.nativeEventFilter(b"xcb_generic_event_t", ctypes.addressof(msg)) == (False, 0)
    assert seen == ["disconnect"]


def test_a_remote_disconnect_locks_the_window_and_says_so(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    watcher = WorkstationLockWatcher(
        system_bus=QDBusConnection("none"), session_bus=QDBusConnection("none"), platform="linux"
    )
    window = make_window(lock_watcher=watcher)
    unlock(qtbot, window)
    msg = _msg(WM_WTSSESSION_CHANGE, WTS_REMOTE_DISCONNECT)
    with qtbot.waitSignal(window.locked, timeout=10_000):
        _WindowsSessionFilter(0, watcher.workstation_locked.emit).nativeEventFilter(
            b"windows_generic_MSG", ctypes.addressof(msg)
        )
    assert window.statusBar().currentMessage() == "Locked because the remote desktop session was disconnected."


# -- IT policy sets the idle time ------------------------------------------------------------------------


def test_it_policy_sets_the_idle_time(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], pso_home: Path
) -> None:
    (pso_home / "policy.json").write_text(json.dumps({"idle_lock_minutes": 0.02}))  # 1.2 s
    window = make_window(idle_lock_ms=600_000)
    qtbot.waitUntil(lambda: window.idle.timeout_ms == 1_200, timeout=10_000)
    unlock(qtbot, window)
    with qtbot.waitSignal(window.locked, timeout=10_000):
        pass
    assert "without activity" in window.statusBar().currentMessage()


@pytest.mark.parametrize("value", [0, -5, "10", True, 24 * 60 + 1])
def test_a_bad_idle_time_in_the_policy_is_refused(pso_home: Path, value: object) -> None:
    from pso_desktop.security import PolicyError
    from pso_desktop.security.profiles import KeyPolicy

    (pso_home / "policy.json").write_text(json.dumps({"idle_lock_minutes": value}))
    with pytest.raises(PolicyError, match="idle_lock_minutes"):
        KeyPolicy.load(pso_home)
