"""Locking when the computer sleeps: logind's PrepareForSleep over a real D-Bus daemon, and the heartbeat that
notices a sleep after the fact on any platform."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from PySide6.QtDBus import QDBusConnection

from pso_desktop.ui.suspend import LOGIND_INTERFACE, LOGIND_PATH, LOGIND_SERVICE, SuspendWatcher
from pso_desktop.ui.window import MainWindow
from tests.support.ui import unlock

# Plays logind on a private bus: owns its well-known name, then sends PrepareForSleep(<line>) per stdin line.
FAKE_LOGIND = textwrap.dedent(
    f"""
    import sys
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtDBus import QDBusConnection, QDBusMessage
    app = QCoreApplication([])
    bus = QDBusConnection.sessionBus()
    print("ready" if bus.registerService({LOGIND_SERVICE!r}) else "name taken", flush=True)
    for line in sys.stdin:
        signal = QDBusMessage.createSignal({LOGIND_PATH!r}, {LOGIND_INTERFACE!r}, "PrepareForSleep")
        signal.setArguments([line.strip() == "true"])
        print("sent" if bus.send(signal) else "not sent", flush=True)
    """
)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake_logind(private_bus: tuple[Any, str]) -> Iterator[subprocess.Popen[str]]:
    _, address = private_bus
    with subprocess.Popen(
        [sys.executable, "-c", FAKE_LOGIND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": address, "QT_QPA_PLATFORM": "offscreen"},
    ) as process:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process  # leaving the block closes its input, which ends it


def _send(logind: subprocess.Popen[str], going_to_sleep: bool) -> None:
    assert logind.stdin is not None and logind.stdout is not None
    logind.stdin.write("true\n" if going_to_sleep else "false\n")
    logind.stdin.flush()
    assert logind.stdout.readline().strip() == "sent"


def test_the_heartbeat_notices_a_sleep_only_when_a_tick_is_far_too_late(qtbot: Any) -> None:
    clock = _Clock()
    watcher = SuspendWatcher(heartbeat_ms=5_000, grace_ms=30_000, clock=clock, bus=QDBusConnection("none"))
    fired: list[bool] = []
    watcher.suspended.connect(lambda: fired.append(True))
    for late in (0, 2_000, 29_000):  # on time, or delayed by a busy machine
        clock.now += 5_000 + late
        watcher.check_now()
    assert not fired
    clock.now += 5_000 + 31_000
    watcher.check_now()
    assert fired == [True]
    clock.now += 5_000  # the next tick is on time again: no second lock
    watcher.check_now()
    assert fired == [True]


def test_logind_signals_before_and_after_sleep_reach_the_watcher(
    qtbot: Any, private_bus: tuple[Any, str], fake_logind: subprocess.Popen[str]
) -> None:
    bus, _ = private_bus
    watcher = SuspendWatcher(bus=bus)
    assert watcher.listening_to_logind
    with qtbot.waitSignal(watcher.suspended, timeout=10_000):
        _send(fake_logind, going_to_sleep=True)
    with qtbot.waitSignal(watcher.suspended, timeout=10_000):
        _send(fake_logind, going_to_sleep=False)


def test_without_a_bus_only_the_heartbeat_watches(qtbot: Any) -> None:
    watcher = SuspendWatcher(bus=QDBusConnection("not connected"))
    assert not watcher.listening_to_logind


def test_the_window_locks_when_the_computer_goes_to_sleep(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    private_bus: tuple[Any, str],
    fake_logind: subprocess.Popen[str],
) -> None:
    bus, _ = private_bus
    window = make_window(suspend_watcher=SuspendWatcher(bus=bus))
    unlock(qtbot, window)
    assert window.reports_screen.model.rowCount() > 0
    with qtbot.waitSignal(window.locked, timeout=10_000):
        _send(fake_logind, going_to_sleep=True)
    assert window.reports_screen.model.rowCount() == 0
    assert window.stack.currentWidget() is window.profile_screen
    assert "went to sleep" in window.statusBar().currentMessage()
    _send(fake_logind, going_to_sleep=False)  # waking while locked changes nothing
    qtbot.wait(200)
    assert not window.is_unlocked


def test_the_window_locks_when_a_sleep_is_noticed_after_waking(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    clock = _Clock()
    window = make_window(suspend_watcher=SuspendWatcher(clock=clock, bus=QDBusConnection("none")))
    unlock(qtbot, window)
    clock.now += 8 * 3_600_000  # a night asleep
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.suspend.check_now()
    assert window.reports_screen.model.rowCount() == 0
