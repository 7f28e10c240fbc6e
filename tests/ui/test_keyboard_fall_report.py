"""The figure of issue 8 (docs/performance.md): the example fall report (resources/examples/fall-incident.json)
written and submitted in the real window at 1024×600 with the keyboard alone, from Ctrl+N on the list to
"queued". Every key goes to whatever has the focus; the keys that are not characters of an answer (Tab,
arrows, Space, Enter, shortcuts) are counted.

Run it alone to print the figure: ``pytest tests/ui/test_keyboard_fall_report.py -s``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from tests.support.keyboard import KeyCounter
from tests.support.ui import PROFILE, SECRET, example, unlock, write_the_fall_report

# The goal of DESIGN.md (see docs/performance.md for where the keys go).
MAX_NON_CHARACTER_KEYS = 40


def test_the_example_fall_report_from_ctrl_n_to_submitted_with_the_keyboard_alone(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    window = make_window()
    window.resize(1024, 600)
    window.activateWindow()  # (under a real X server without a window manager nothing else activates it)
    unlock(qtbot, window)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.reports_screen.search)
    report = example()
    keys = KeyCounter(qtbot)
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        keys.key(Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    editor = window.editor
    assert editor is not None and editor.form is not None
    write_the_fall_report(qtbot, keys, report)
    with qtbot.waitSignal(editor.submitted, timeout=10_000):
        keys.key(Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)

    with workstation.session(PROFILE, SECRET) as session:
        stored = session.get_report(editor.form.report_id or "")
        counts = session.status_counts()
    assert stored is not None and counts.get("queued") == 1
    for key in (
        "event_type",
        "categories",
        "discovery",
        "location",
        "narrative",
        "patient",
        "harm",
        "rescue",
        "handover_involved",
        "preventability",
        "family_notified",
        "reporter",
        "modules",
    ):
        assert stored[key] == report[key], key
    assert set(stored["contributing_factors"]) == set(report["contributing_factors"])
    print(
        f"\nkeyboard-only fall report at 1024x600: {keys.other} non-character keys "
        f"(goal 40), {keys.characters} characters typed; keys: {' '.join(keys.log)}"
    )
    assert keys.other <= MAX_NON_CHARACTER_KEYS
