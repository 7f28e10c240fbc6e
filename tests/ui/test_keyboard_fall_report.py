"""The figure of issue 8 (docs/performance.md): the example fall report (resources/examples/fall-incident.json)
written and submitted in the real window at 1024×600 with the keyboard alone, from Ctrl+N on the list to
"queued". Every key goes to whatever has the focus; the keys that are not characters of an answer (Tab,
arrows, Space, Enter, shortcuts) are counted.

Run it alone to print the figure: ``pytest tests/ui/test_keyboard_fall_report.py -s``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pso_desktop.paths import resources_dir
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from tests.ui.conftest import PROFILE, SECRET, unlock
from tests.ui.keys import KeyCounter

# The goal of DESIGN.md (see docs/performance.md for where the keys go).
MAX_NON_CHARACTER_KEYS = 40
TYPE_AHEAD_PAUSE_MS = QApplication.keyboardInputInterval() + 100 if QApplication.instance() else 500
SPACE, DOWN = Qt.Key.Key_Space, Qt.Key.Key_Down


def example() -> dict[str, Any]:
    return json.loads((resources_dir() / "examples" / "fall-incident.json").read_text(encoding="utf-8"))


def write_the_fall_report(qtbot: Any, keys: KeyCounter, report: dict[str, Any]) -> None:
    """The keys a nurse presses, field by field, in the order Tab visits them; letters typed into a drop-down or
    a list pick the answer that starts with them (characters, as in any text)."""
    patient, harm, reporter, fall = (
        report["patient"],
        report["harm"],
        report["reporter"],
        report["modules"]["fall"],
    )
    assert harm["level"] == "LA21150-0" and fall == {
        "DE192": "A867",
        "DE204": "A905",
        "DE210": "A15",
        "DE213": "A15",
    }

    def pick_in_list(prefix: str) -> None:  # type-ahead in a list, then Space ticks it
        qtbot.wait(TYPE_AHEAD_PAUSE_MS)
        keys.type(prefix)
        keys.key(SPACE)

    # What happened
    keys.key(SPACE)  # Incident (the first kind, where the focus starts)
    keys.tab()
    pick_in_list("Fall")
    keys.tab()
    # When and where (the discovery date and time start as now, selected as Tab reaches them: typing replaces them;
    # the report date, already today's, and the "unknown" ticks are under the section's more detail, which Tab passes by)
    keys.type(report["discovery"]["date"])
    keys.tab()
    keys.type(report["discovery"]["time"][:5])
    keys.tab()
    keys.type(report["location"]["unit"])
    keys.tab()
    keys.type(report["location"]["description"])
    keys.tab()
    keys.type(report["narrative"])
    keys.tab()
    # Patient
    keys.type(patient["mrn"])
    keys.tab()
    keys.type(patient["name"])
    keys.tab()  # (date of birth and diagnosis code: under more detail)
    keys.type(str(patient["age_years"]))
    keys.tab()
    keys.type("F")  # Female
    keys.tab()
    keys.type("N")  # Not Hispanic or Latino
    keys.tab()
    pick_in_list("W")  # White
    keys.tab()
    # Harm
    keys.type("Y")  # evidence of harm: Yes
    keys.tab()
    keys.key(DOWN, times=3)  # from Death: Severe, Moderate, Mild harm
    keys.tab()
    keys.type("T")  # Temporary harm
    keys.tab()  # (a longer stay: under more detail)
    keys.type("Y")  # rescue attempted
    keys.tab()
    keys.type(report["rescue"]["interventions"])
    keys.tab()
    # Fall: details
    keys.type("U")  # Unassisted
    keys.tab()
    keys.type("S")  # Skin tear, avulsion, hematoma or significant bruising
    keys.tab()
    keys.type("Y")  # risk assessment documented
    keys.tab()
    keys.type("Y")  # at increased risk
    keys.tab()
    # Circumstances
    pick_in_list("Pat")  # Patient factors
    pick_in_list("Env")  # Environment
    keys.tab()
    keys.type("N")  # handover: No
    keys.tab()
    keys.type("L")  # Likely could have been prevented
    keys.tab()
    keys.type("Y")  # family notified
    keys.tab(2)  # past "Report anonymously" (the Serious Reportable Event question: under more detail)
    # Reporter
    keys.type(reporter["name"])
    keys.tab()
    keys.type(reporter["job"])
    keys.tab()  # (telephone and e-mail: under more detail)
    keys.type("H")  # first reported by a healthcare professional
    keys.tab()
    keys.type("N")  # Nurse, nurse practitioner or physician assistant


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
