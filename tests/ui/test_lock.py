"""Locking by hand and by idleness: report data leaves the window and the session is closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QLineEdit

from pso_desktop.paths import APP_NAME
from pso_desktop.ui.idle import IdleWatcher
from pso_desktop.ui.window import MainWindow
from tests.support.ui import PROFILE, REPORT_COUNT, SECRET, shown_ids, unlock


def _backend_unlocked(qtbot: Any, window: MainWindow) -> bool:
    """Asks the worker (which owns the session) whether a session is open."""
    answers: list[bool] = []
    window.worker.submit(lambda: window.backend.unlocked, on_done=answers.append)
    qtbot.waitUntil(lambda: bool(answers), timeout=10_000)
    return answers[0]


def test_lock_clears_the_list_and_returns_to_unlock(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    assert _backend_unlocked(qtbot, window)
    # A search whose page is still on its way when the lock comes: its rows must never be shown.
    screen.search.setText("fall")
    screen.reload_reports()

    with qtbot.waitSignal(window.locked, timeout=10_000):
        qtbot.keyClick(window, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)

    assert screen.model.rowCount() == 0
    assert screen.search.text() == ""
    assert screen.list_status.text() == ""
    assert screen.count_labels["draft"].text() == "Draft: –"
    assert window.stack.currentWidget() is window.profile_screen
    assert window.profile_screen.profile_box.currentText() == PROFILE
    assert window.profile_screen.password.text() == ""
    assert window.windowTitle() == APP_NAME
    assert not window.lock_action.isEnabled()
    assert not _backend_unlocked(qtbot, window)  # its answer comes after the in-flight page's
    assert screen.model.rowCount() == 0

    unlock(qtbot, window)
    assert len(shown_ids(window)) == REPORT_COUNT


def test_idle_lock_after_the_timeout(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window(idle_lock_ms=500)
    screen = window.profile_screen
    with qtbot.waitSignals([window.unlocked, window.locked], order="strict", timeout=10_000):
        qtbot.keyClicks(screen.password, SECRET)
        qtbot.keyClick(screen.password, Qt.Key.Key_Return)
    assert window.reports_screen.model.rowCount() == 0
    assert window.stack.currentWidget() is screen
    assert "without activity" in window.statusBar().currentMessage()
    assert not window.idle.active
    assert not _backend_unlocked(qtbot, window)


def test_no_idle_lock_is_armed_while_locked(
    make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window(idle_lock_ms=300)
    assert not window.idle.active


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_user_input_postpones_the_idle_lock(qtbot: Any) -> None:
    clock = _Clock()
    watcher = IdleWatcher(1_000, clock=clock)
    fired: list[bool] = []
    watcher.idle.connect(lambda: fired.append(True))
    watcher.start()
    try:
        clock.now = 900.0
        watcher.check_now()
        assert not fired
        # Any key press anywhere in the application counts as activity.
        field = QLineEdit()
        qtbot.addWidget(field)
        qtbot.keyClick(field, Qt.Key.Key_A)
        clock.now = 1_500.0
        watcher.check_now()
        assert not fired  # 600 ms since the key press
        clock.now = 1_900.0
        watcher.check_now()
        assert fired == [True]
        assert not watcher.active
        clock.now = 5_000.0
        watcher.check_now()
        assert fired == [True]  # once per start
    finally:
        watcher.stop()


@pytest.mark.parametrize("event_type", [QEvent.Type.KeyRelease, QEvent.Type.Paint])
def test_non_input_events_do_not_count_as_activity(qtbot: Any, event_type: QEvent.Type) -> None:
    clock = _Clock()
    watcher = IdleWatcher(1_000, clock=clock)
    watcher.start()
    try:
        clock.now = 999.0
        if event_type == QEvent.Type.KeyRelease:
            watcher.eventFilter(watcher, QKeyEvent(event_type, Qt.Key.Key_A, Qt.KeyboardModifier.NoModifier))
        else:
            watcher.eventFilter(watcher, QEvent(event_type))
        clock.now = 1_000.0
        with qtbot.waitSignal(watcher.idle, timeout=1_000):
            watcher.check_now()
    finally:
        watcher.stop()


def test_idle_watcher_rejects_a_zero_timeout() -> None:
    with pytest.raises(ValueError, match="positive"):
        IdleWatcher(0)
