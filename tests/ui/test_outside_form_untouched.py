"""Issue 8 (outside test): nothing changes that the clinician did not change. A new report whose answers are put
back as they were is not saved; a filled repeating entry removed by mistake comes back with Ctrl+Z; a typed age
that disagrees with the date of birth is noted, and kept."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import Qt

from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from tests.support.ui import PROFILE, SECRET, form_of, open_new_report, unlock


@pytest.fixture
def profile(workstation_factory: Callable[[], Workstation]) -> Workstation:
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    return workstation


def stored_count(workstation: Workstation) -> int:
    with workstation.session(PROFILE, SECRET) as session:
        return sum(session.status_counts().values())


def test_ticking_anonymous_on_and_off_in_a_new_report_saves_no_draft(
    qtbot: Any, make_window: Callable[..., MainWindow], profile: Workstation
) -> None:
    window = make_window()
    unlock(qtbot, window)
    editor = open_new_report(qtbot, window)
    form = form_of(editor)
    box = form.fields["reporter.anonymous"].focus_target()
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Space)
    qtbot.keyClick(box, Qt.Key.Key_Space)
    assert not box.isChecked()  # type: ignore[attr-defined]
    qtbot.wait(2_000)  # past the autosave delay
    assert not editor.has_unsaved_changes
    with qtbot.waitSignal(window.reports_screen.reports_loaded, timeout=10_000):
        qtbot.keyClick(box, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)  # back to the list
    assert window.reports_screen.model.rowCount() == 0
    assert stored_count(profile) == 0
