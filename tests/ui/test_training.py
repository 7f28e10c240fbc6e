"""Training mode (``pso-desktop --demo``): a practice profile signed in to a practice server in this process,
marked TRAINING everywhere, that leaves nothing behind and never touches the real data root or keyring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pso_desktop.services.backend import TrainingBackend
from pso_desktop.services.training import (
    SAMPLE_DRAFTS,
    SAMPLE_SENT,
    TRAINING_PROFILE,
    TRAINING_SECRET,
    TrainingEnvironment,
)
from pso_desktop.ui.window import MainWindow
from tests.support.memory_keyring import MemoryKeyring
from tests.support.ui import shown_ids, unlock


def test_training_window_is_marked_works_end_to_end_and_leaves_nothing_behind(
    qtbot: Any, pso_home: Path, memory_keyring: MemoryKeyring
) -> None:
    environment = TrainingEnvironment()
    window = MainWindow(TrainingBackend(environment), training=True)
    try:
        assert "TRAINING" in window.windowTitle()
        with qtbot.waitSignal(window.ready, timeout=60_000):  # the practice server starts on the worker
            window.show()
        banner = window.findChild(type(window.profile_screen.busy_label), "trainingBanner")
        assert banner is not None and banner.isVisible() and TRAINING_SECRET in banner.text()
        assert window.profile_screen.profile_box.currentText() == TRAINING_PROFILE

        unlock(qtbot, window, TRAINING_SECRET, name=TRAINING_PROFILE)
        assert window.windowTitle() == f"PSO Desktop — TRAINING — {TRAINING_PROFILE}"
        assert len(shown_ids(window)) == SAMPLE_DRAFTS + SAMPLE_SENT
        qtbot.waitUntil(lambda: window.reports_screen.count_labels["submitted"].text().endswith(str(SAMPLE_SENT)))
        assert environment.server_url is not None and environment.server_url.startswith("https://127.0.0.1:")
    finally:
        window.shutdown()
        environment.close()
        window.deleteLater()
    assert not environment.folder.exists()
    assert not (pso_home / "profiles").exists()  # the real data root got no profile
    assert memory_keyring.entries == {}  # and the OS keyring no entry


def test_closing_a_training_environment_that_never_started_is_harmless() -> None:
    environment = TrainingEnvironment()
    environment.close()
    environment.close()
    assert not environment.folder.exists()
