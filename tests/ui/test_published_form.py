"""Issue 11, item 3 in the real window: after a sync against a real server on which the PSO published a
catalogue, and with that server gone, a new report opens on it offline, with its new question; a draft started on the old version offers
to move, and moving lists one sentence per answer that no longer fits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.window import MainWindow
from pso_server import catalogues
from tests.support.catalogues import NEW_QUESTION_TEXT, changed_catalogue, fall_report, write
from tests.support.sync import link, practice_server
from tests.support.ui import PROFILE, SECRET, unlock


def test_new_report_on_the_published_form_and_an_old_draft_moves(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Workstation],
    tmp_path: Path,
) -> None:
    draft = fall_report("hospital-2.0", DE204="A906")
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with practice_server(tmp_path / "server") as server:
        catalogues.publish(server.db, write(tmp_path / "hospital-2.1.json", changed_catalogue()), time.time())
        with workstation.session(PROFILE, SECRET) as session:
            session.save_draft(draft)
            link(session, server)
            assert syncing.sync(session).problem is None
    window = make_window()
    unlock(qtbot, window)

    window.new_report()
    qtbot.waitUntil(lambda: window.editor is not None and window.editor.form is not None, timeout=10_000)
    editor = window.editor
    assert editor is not None and editor.form is not None
    assert editor.form.catalogue.version == "hospital-2.1"
    assert editor.form.catalogue.modules["fall"].by_id["bed_alarm"].text == NEW_QUESTION_TEXT
    assert editor.form.field_for("modules.fall.bed_alarm") is not None
    assert editor.move_button.isHidden()
    window.editor.close_editor()

    window.open_report(draft["id"])
    qtbot.waitUntil(lambda: editor.form is not None and editor.form.report_id == draft["id"], timeout=10_000)
    assert editor.form.catalogue.version == "hospital-2.0"
    qtbot.waitUntil(editor.move_button.isVisible, timeout=10_000)
    assert editor.move_button.text() == "Move to form hospital-2.1"
    qtbot.mouseClick(editor.move_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: editor.form is not None and editor.form.catalogue.version == "hospital-2.1", timeout=10_000
    )
    assert editor.move_button.isHidden()
    assert editor.errors.count() == 1
    assert '"Intracranial injury" is no longer offered' in editor.errors.item(0).text()
    assert "Moved to form hospital-2.1" in editor.errors_heading.text()
    assert editor.form.report()["form_version"] == "hospital-2.1"
