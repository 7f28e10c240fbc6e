"""Import and export from the window's File menu, on the real encrypted store: a CSV exported by one clinician's
profile is imported into another's, a bad file is refused row by row with nothing stored, and the menu is off
while locked."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pso_desktop.services.workstation import PSWP_LABEL, Workstation
from pso_desktop.ui.window import MainWindow
from tests.support.ui import REPORT_COUNT, SECRET, shown_ids, unlock

CANARY = "Quentin Zylophane"


def test_export_then_import_into_another_profile(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    workstation_factory: Callable[[], Workstation],
    tmp_path: Path,
) -> None:
    workstation_factory().create_profile("bob", SECRET)
    window = make_window()
    actions = window.file_actions
    assert not actions.export_action.isEnabled()  # locked: no import or export
    unlock(qtbot, window)
    assert actions.export_action.isEnabled()

    out_json, out_csv, out_readable = (
        tmp_path / "reports.json",
        tmp_path / "reports.csv",
        tmp_path / "r.readable.csv",
    )
    for path, fmt in ((out_json, "json"), (out_csv, "csv"), (out_readable, "csv-readable")):
        with qtbot.waitSignal(actions.done, timeout=10_000) as done:
            actions.export_file(path, fmt)
        assert done.args[0].startswith(f"{REPORT_COUNT} reports exported to {path}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(out_json.read_text(encoding="utf-8"))
    assert document["confidentiality"] == PSWP_LABEL and document["count"] == REPORT_COUNT
    readable = out_readable.read_text(encoding="utf-8-sig").splitlines()
    assert (
        readable[0].startswith("confidentiality,id,case_number,state,pso_status,") and len(readable) > REPORT_COUNT
    )
    assert "event_type_label" in readable[0].split(",")

    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    assert not actions.import_action.isEnabled()
    unlock(qtbot, window, name="bob")
    assert shown_ids(window) == set()
    with qtbot.waitSignal(actions.imported, timeout=30_000) as imported:
        actions.import_file(out_csv, submit=False)
    assert imported.args == [REPORT_COUNT]
    qtbot.waitUntil(lambda: shown_ids(window) == {report["id"] for report in stored_reports})
    qtbot.waitUntil(lambda: window.reports_screen.count_labels["draft"].text() == f"Draft: {REPORT_COUNT}")


def test_a_file_with_bad_rows_is_refused_row_by_row_and_nothing_is_stored(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    header = "event_type,report_date,categories,discovery_date,discovery_time_unknown,location_unit,narrative"
    rows = [
        f"unsafe_condition,2026-11-10,A45,2026-11-10,true,ICU-2,{CANARY} tripped on a cable,",
        f"unsafe_condition,2026-11-10,Z99,2026-11-10,true,ICU-2,{CANARY} again",  # not a category
    ]
    backlog = tmp_path / "backlog.csv"
    backlog.write_text("\r\n".join([header, *rows]) + "\r\n", encoding="utf-8")

    window = make_window()
    unlock(qtbot, window)
    with qtbot.waitSignal(window.file_actions.refused, timeout=30_000) as refused:
        window.file_actions.import_file(backlog, submit=True)
    problems = refused.args[0]
    assert problems and all(problem.startswith("row ") for problem in problems)
    assert any("row 3" in problem and "categor" in problem.lower() for problem in problems)
    assert not any(CANARY in problem for problem in problems)  # row and column, never a cell's contents
    box = window.file_actions.problems_box
    assert box is not None and box.isVisible() and box.text().startswith("Nothing was stored")
    qtbot.waitUntil(lambda: window.worker.pending == 0)
    assert len(shown_ids(window)) == REPORT_COUNT  # nothing added
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock()
    assert not box.isVisible()  # the list of problems closes with the lock

    missing = tmp_path / "nowhere.csv"
    unlock(qtbot, window)
    window.file_actions.import_file(missing, submit=False)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == f"File not found: {missing}")


def test_export_goes_only_to_files(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    # The same service as the CLI's (tests/cli/test_export_targets.py): a pipe or a link is refused, untouched.
    window = make_window()
    unlock(qtbot, window)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    to_null = tmp_path / "to-null"
    to_null.symlink_to("/dev/null")
    for target, words in ((fifo, "pipe"), (to_null, "link")):
        before = os.lstat(target)
        with qtbot.waitSignal(window.file_actions.done, timeout=10_000) as done:
            window.file_actions.export_file(target, "json")
        assert words in done.args[0] and "exported" not in done.args[0]
        after = os.lstat(target)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
