"""Issue 8, outside test: after a lock and unlock the nurse is back at the question she was typing in."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPlainTextEdit
from pytestqt.qtbot import QtBot

from pso_desktop.ui.window import MainWindow

# MainWindow() takes the process-wide keyring: pin it to this test's in-memory one, whatever an earlier test left.
pytestmark = pytest.mark.usefixtures("memory_keyring")

PASSWORD = "nightshift1"


def _type(text: str) -> None:
    focused = QApplication.focusWidget()
    assert focused is not None
    QTest.keyClicks(focused, text)


def _key(key: Qt.Key, modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    focused = QApplication.focusWidget()
    assert focused is not None
    QTest.keyClick(focused, key, modifier)


def test_unlock_goes_back_to_the_question_that_had_the_focus(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locked while typing the brief description, the unlock went back to the report but at its top, focus on
    the first question, so the nurse had to find her place again."""
    monkeypatch.setenv("PSO_DESKTOP_HOME", str(tmp_path))
    window = MainWindow()
    qtbot.addWidget(window)
    try:
        window.resize(1024, 600)
        window.show()
        qtbot.waitExposed(window)
        window.activateWindow()
        screen = window.profile_screen
        qtbot.waitUntil(lambda: screen.new_name.isVisible() and screen.new_name.hasFocus(), timeout=10_000)
        _type("Jordan Example")
        _key(Qt.Key.Key_Tab)
        _type(PASSWORD)
        _key(Qt.Key.Key_Tab)
        _type(PASSWORD)
        with qtbot.waitSignal(window.unlocked, timeout=60_000):
            _key(Qt.Key.Key_Return)
        with qtbot.waitSignal(window.editor_opened, timeout=10_000):
            _key(Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
        editor = window.editor
        assert editor is not None and editor.form is not None
        narrative = editor.form.fields["narrative"].focus_target()
        for key in (Qt.Key.Key_Space, Qt.Key.Key_Tab, Qt.Key.Key_Tab, Qt.Key.Key_Tab, Qt.Key.Key_Tab):
            _key(key)  # Incident, then the categories, date, time, unit
        _type("4W")
        _key(Qt.Key.Key_Tab)
        _key(Qt.Key.Key_Tab)
        assert QApplication.focusWidget() is narrative
        _type("Found on the floor")
        with qtbot.waitSignal(editor.saved, timeout=10_000):
            pass
        with qtbot.waitSignal(window.locked, timeout=10_000):
            _key(Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(screen.password.hasFocus, timeout=10_000)
        _type(PASSWORD)
        with qtbot.waitSignal(window.editor_opened, timeout=60_000):
            _key(Qt.Key.Key_Return)
        form = editor.form
        assert form is not None
        narrative = form.fields["narrative"].focus_target()
        assert isinstance(narrative, QPlainTextEdit)
        assert narrative.toPlainText() == "Found on the floor"
        qtbot.waitUntil(narrative.hasFocus, timeout=5_000)
        _type(", call light in reach")
        assert narrative.toPlainText() == "Found on the floor, call light in reach"
    finally:
        window.shutdown()
