"""A read-only report shows no prompt to answer questions before submitting (issue 12, outside test: a
facility copy opened read-only still said "must be answered before you submit"). Real reference server over
TLS on loopback, real SQLCipher profiles, the real window driven by keys."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.ui.report_form import ReportForm
from pso_desktop.ui.window import MainWindow
from tests.support.reports import sample_reports
from tests.support.sync import FAST_RETRIES, Account, link, practice_server
from tests.support.ui import PROFILE, SECRET, open_from_list, unlock

SUBMIT_PROMPTS = ("before you submit", "to answer")


@pytest.fixture
def copy_and_draft(tmp_path: Path, workstation_factory: Callable[[], Workstation]) -> Iterator[tuple[str, str]]:
    """A reporter's report, sent; risk manager rm1's profile (PROFILE) holds it as the facility's copy, and a
    draft of its own with its narrative left empty. Yields (the copy's id, the draft's id)."""
    accounts = {"nurse1": Account("nurse1 password"), "rm1": Account("rm1 password", role="risk_manager")}
    theirs, draft = sample_reports(2, seed=21)
    draft["narrative"] = ""
    with practice_server(tmp_path / "server", accounts) as server:
        workstation = workstation_factory()
        workstation.create_profile("nurse1", "nurse1 secret 123")
        with workstation.session("nurse1", "nurse1 secret 123") as session:
            link(session, server, "nurse1", "nurse1 password")
            session.add_reports([theirs], submit=True)
            syncing.sync(session, policy=FAST_RETRIES)
        workstation.create_profile(PROFILE, SECRET)
        with workstation.session(PROFILE, SECRET) as session:
            link(session, server, "rm1", "rm1 password")
            assert syncing.sync(session, policy=FAST_RETRIES).facility_reports == 1
            session.add_reports([draft])
        yield str(theirs["id"]), str(draft["id"])


def _shown_texts(form: ReportForm) -> list[str]:
    sections = [form.section_list.item(row).text() for row in range(form.section_list.count())]
    return [form.legend.text(), form.section_list.toolTip(), *sections]


def test_a_facility_copy_shows_no_submit_prompt_and_a_draft_still_does(
    qtbot: Any, make_window: Callable[..., MainWindow], copy_and_draft: tuple[str, str]
) -> None:
    copy_id, draft_id = copy_and_draft
    window = make_window(auto_send=False)
    unlock(qtbot, window)

    editor, form = open_from_list(qtbot, window, copy_id)
    assert editor.read_only and form.read_only
    assert not [text for text in _shown_texts(form) if any(p in text for p in SUBMIT_PROMPTS)]
    assert "read-only" in form.legend.text()

    # Back to the list (Alt+Left), then the profile's own draft: its legend and counts still prompt.
    with qtbot.waitSignal(editor.closed, timeout=10_000):
        qtbot.keyClick(form, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    _, draft_form = open_from_list(qtbot, window, draft_id)
    assert not draft_form.read_only
    assert "must be answered before you submit" in draft_form.legend.text()
    assert any(text.endswith("to answer)") for text in _shown_texts(draft_form))
