"""Issue 8, outside test: the first start of a fresh installation opens a window the form fits in."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from pso_desktop.ui import ui_settings
from pso_desktop.ui.window import MainWindow

# MainWindow() takes the process-wide keyring: pin it to this test's in-memory one, whatever an earlier test left.
pytestmark = pytest.mark.usefixtures("memory_keyring")


def test_a_first_start_opens_at_the_usual_size_not_the_cards(
    qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh PSO_DESKTOP_HOME (nothing remembered) opened a 553×469 window on a 1366×768 screen, with the
    create-profile card behind a scroll bar: the start sized it to its size hint instead of 1100×700."""
    monkeypatch.setenv("PSO_DESKTOP_HOME", str(tmp_path))
    window = MainWindow()
    qtbot.addWidget(window)
    try:
        ui_settings.restore_geometry(window)  # as a start does: nothing saved yet
        window.show()
        qtbot.waitExposed(window)
        screen = window.screen()
        assert screen is not None
        room = screen.availableGeometry()
        assert window.width() == min(1100, room.width())
        assert window.height() == min(700, room.height())
    finally:
        window.shutdown()
