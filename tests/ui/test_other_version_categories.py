"""The list of a profile holding Hospital V1.2 reports beside V2.0 ones, as a nurse sees it in the real window: a
V1.2 report's category is shown in V1.2's words (it was the bare code, A63), the Category filter offers it, and
ticking it lists exactly that report. Found by an outside tester of issue 11."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QModelIndex, Qt

from pso_desktop.paths import resources_dir
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.reports_model import COLUMNS
from pso_desktop.ui.window import MainWindow
from tests.support.ui import PROFILE, SECRET, shown_ids, unlock

EXAMPLES = resources_dir() / "examples"


def _example(name: str) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return report


def test_a_v12_reports_category_is_in_words_and_can_be_filtered(
    qtbot: Any, make_window: Callable[..., MainWindow], workstation_factory: Callable[[], Workstation]
) -> None:
    v12 = _example("hospital-1.2/surgery-or-anesthesia-surgical.json")
    hit = _example("hospital-1.2/device-including-hit.json")
    v20 = _example("surgery-laceration.json")
    assert v12["form_version"] == hit["form_version"] == "hospital-1.2" and v12["categories"] == ["A63"]
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        session.add_reports([v12, hit, v20])

    window = make_window()
    unlock(qtbot, window)
    screen = window.reports_screen
    model = screen.model
    column = [key for key, _ in COLUMNS].index("categories")
    shown = {
        model.summary(row).id: model.data(model.index(row, column, QModelIndex()), Qt.ItemDataRole.DisplayRole)
        for row in range(model.rowCount())
    }
    assert shown == {
        v12["id"]: "Surgery or Anesthesia (includes invasive procedure)",
        hit["id"]: "Device or Medical/Surgical Supply, including Health Information Technology (HIT)",
        v20["id"]: "Surgery (including invasive procedure)",
    }

    bar = screen.filter_bar
    qtbot.waitUntil(lambda: "A63" in dict(bar.category.choices()), timeout=10_000)
    choices = dict(bar.category.choices())
    assert choices["A63"] == "Surgery or Anesthesia (includes invasive procedure)"
    assert choices["A61"] == "Surgery (including invasive procedure)"  # the current form's come first
    assert list(choices).index("A61") < list(choices).index("A63")
    actions = dict(zip((code for code, _ in bar.category.choices()), bar.category.menu().actions(), strict=True))
    with qtbot.waitSignals([screen.reports_loaded, screen.counts_loaded], timeout=10_000):
        actions["A63"].trigger()
    assert shown_ids(window) == {v12["id"]}
