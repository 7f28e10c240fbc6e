"""What the window says is what happened: no "could not be saved" when nothing failed (after a lock, on
opening a report), opening or clearing the form is not an edit, and closing the window after editing saves the
draft and ends cleanly (exit 0, nothing on stderr)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMessageBox

from pso_desktop.ui import crash, editor_screen
from pso_desktop.ui.report_form import ReportForm
from pso_desktop.ui.window import MainWindow
from tests.support.cli import SECRET as CLI_SECRET
from tests.support.cli import cli_env, run_cli
from tests.support.small_disk import fill, small_tmpfs
from tests.support.ui import PROFILE, SECRET, form_of, open_new_report, type_into, unlock

FAST_AUTOSAVE_MS = 100
QUIET_MS = 600  # several autosave delays: any save the form wrongly thought it needed has happened by then


@pytest.fixture(autouse=True)
def fast_autosave(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(editor_screen, "AUTOSAVE_DELAY_MS", FAST_AUTOSAVE_MS)


def a_draft_that_greys_categories(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """A stored draft whose kind of event greys out categories: loading it changes how the list looks."""
    drafts = [r for r in reports[4:] if r.get("event_type") in ("near_miss", "unsafe_condition")]
    assert drafts, "the sample data has no such draft"
    return drafts[0]


def open_report(qtbot: Any, window: MainWindow, report_id: str) -> editor_screen.EditorScreen:
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        window.open_report(report_id)
    assert window.editor is not None
    return window.editor


def status_messages(window: MainWindow) -> list[str]:
    messages: list[str] = []
    window.statusBar().messageChanged.connect(lambda text: messages.append(text) if text else None)
    return messages


def test_opening_a_draft_is_not_an_edit(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    messages = status_messages(window)
    unlock(qtbot, window)
    editor = open_report(qtbot, window, a_draft_that_greys_categories(stored_reports)["id"])
    assert not editor.has_unsaved_changes
    assert editor.save_status.text() == editor_screen.SAVED_DRAFT
    with qtbot.assertNotEmitted(editor.saved, wait=QUIET_MS):
        pass
    assert messages == []


def test_after_a_lock_and_unlock_and_on_reopening_the_draft_nothing_says_it_failed(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    messages = status_messages(window)
    unlock(qtbot, window)
    draft = a_draft_that_greys_categories(stored_reports)
    editor = open_report(qtbot, window, draft["id"])
    with qtbot.waitSignal(editor.saved, timeout=10_000):
        type_into(qtbot, form_of(editor).fields["narrative"], " and then")
    failures: list[str] = []
    editor.failed.connect(failures.append)

    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock_action.trigger()
    assert not editor.has_unsaved_changes  # the form was emptied, not edited
    qtbot.wait(QUIET_MS)
    unlock(qtbot, window)
    qtbot.wait(QUIET_MS)
    editor = open_report(qtbot, window, draft["id"])
    assert " and then" in form_of(editor).report()["narrative"]  # the edit before the lock was kept
    qtbot.wait(QUIET_MS)

    assert failures == []
    assert not [m for m in messages if "could not be saved" in m], messages
    assert not editor.has_unsaved_changes
    assert editor.save_status.text() == editor_screen.SAVED_DRAFT


CANARY = "Zebulon Quaxworth slipped by the ice machine"
QT_OFFSCREEN_NOTICE = "This plugin does not support propagateSizeHints()"


def test_closing_the_window_after_editing_saves_the_draft_and_exits_cleanly(tmp_path: Path) -> None:
    """The real command in a subprocess: unlock, edit, close the window before the autosave."""
    home = tmp_path / "home"
    created = run_cli(home, "profile", "create", "nurse", "--password-stdin", stdin=CLI_SECRET + "\n")
    assert created.code == 0, created.err
    env = cli_env(home, QT_QPA_PLATFORM="offscreen", GUI_TEST_SECRET=CLI_SECRET)
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.gui_driver", "nurse", "edit-close", CANARY],
        capture_output=True,
        env=env,
        timeout=180,
        check=False,
    )
    err = child.stderr.decode("utf-8", "replace")
    assert child.returncode == 0, err
    assert [line for line in err.splitlines() if line != QT_OFFSCREEN_NOTICE] == [], err

    out = tmp_path / "reports.json"
    exported = run_cli(
        home, "export", "--format", "json", "--out", str(out), "--password-stdin", stdin=CLI_SECRET + "\n"
    )
    assert exported.code == 0, exported.err
    (report,) = json.loads(out.read_text())["reports"]
    assert report["narrative"] == CANARY and report["event_type"] == "near_miss"  # saved at close


def test_closing_the_training_window_after_editing_exits_cleanly_and_deletes_the_training_files(
    tmp_path: Path,
) -> None:
    """``pso-desktop --demo``: before, the failed second shutdown skipped the clean-up of the training files."""
    from pso_desktop.services.training import TRAINING_PROFILE, TRAINING_SECRET

    temp = tmp_path / "child-tmp"
    temp.mkdir()
    env = cli_env(
        tmp_path / "home",
        QT_QPA_PLATFORM="offscreen",
        GUI_TEST_SECRET=TRAINING_SECRET,
        GUI_TEST_DEMO="1",
        TMPDIR=str(temp),
    )
    child = subprocess.run(
        [sys.executable, "-m", "tests.support.gui_driver", TRAINING_PROFILE, "edit-close", CANARY],
        capture_output=True,
        env=env,
        timeout=180,
        check=False,
    )
    err = child.stderr.decode("utf-8", "replace")
    assert child.returncode == 0, err
    assert [line for line in err.splitlines() if line != QT_OFFSCREEN_NOTICE] == [], err
    assert list(temp.iterdir()) == []  # every training file deleted


def test_an_edit_that_arrives_after_the_window_closed_is_dropped_quietly(
    qtbot: Any, make_window: Callable[..., MainWindow], stored_reports: list[dict[str, Any]]
) -> None:
    window = make_window()
    unlock(qtbot, window)
    draft = a_draft_that_greys_categories(stored_reports)
    editor = open_report(qtbot, window, draft["id"])
    narrative = form_of(editor).fields["narrative"]
    type_into(qtbot, narrative, "typed just before closing ")
    window.close()  # closeEvent: flushes the draft, then (once it is saved) locks and stops the workers
    qtbot.waitUntil(lambda: window.worker.stopped, timeout=10_000)

    # A keystroke still in the queue, then the second shutdown that ``run`` does after the event loop ends.
    type_into(qtbot, narrative, "late")
    window.shutdown()
    qtbot.wait(QUIET_MS)  # the autosave delay passes: an exception in a slot would fail this test

    workstation = window.backend._get_workstation()
    with workstation.session(PROFILE, SECRET) as session:
        stored = session.get_report(draft["id"])
    assert stored is not None and stored["narrative"].startswith("typed just before closing ")


def stored_narratives(qtbot: Any, window: MainWindow) -> list[str]:
    qtbot.waitUntil(lambda: window.worker.pending == 0, timeout=10_000)  # the lock's save and close are done
    with window.backend._get_workstation().session(PROFILE, SECRET) as session:
        return [
            str((session.get_report(summary.id) or {}).get("narrative"))
            for summary in session.store.list_summaries(limit=100)
        ]


def assert_locked_and_told(window: MainWindow, guard: crash.CrashGuard) -> None:
    assert not window.is_unlocked
    assert window.stack.currentWidget() is window.profile_screen
    assert guard.box is not None and guard.box.isVisible()
    assert guard.box.text() == crash.CRASH_MESSAGE
    assert window.statusBar().currentMessage() == crash.CRASH_MESSAGE


def test_an_exception_in_a_slot_is_logged_without_values_and_locks_the_window_keeping_the_draft(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_on_changed = editor_screen.EditorScreen._on_changed

    def on_changed_with_a_bug(self: editor_screen.EditorScreen) -> None:
        real_on_changed(self)  # the edit counts (the draft has it to save), then a bug, its message holding PHI
        narrative = form_of(self).report().get("narrative") or ""
        if narrative.endswith("!"):
            raise ValueError(f"cannot handle {narrative}")

    monkeypatch.setattr(editor_screen.EditorScreen, "_on_changed", on_changed_with_a_bug)
    window = make_window()
    guard = crash.install(window)  # as ui.app.run does
    try:
        unlock(qtbot, window)
        editor = open_new_report(qtbot, window)
        type_into(qtbot, form_of(editor).fields["narrative"], CANARY)
        with caplog.at_level(logging.ERROR), qtbot.waitSignal(guard.handled, timeout=10_000):
            qtbot.keyClicks(form_of(editor).fields["narrative"].focus_target(), "!")
        assert_locked_and_told(window, guard)
        assert stored_narratives(qtbot, window).count(CANARY + "!") == 1  # every keystroke kept
    finally:
        guard.uninstall()
    lines = [r.getMessage() for r in caplog.records if r.name == crash.__name__]
    assert len(lines) == 1 and re.fullmatch(
        r"uncaught ValueError at test_true_outcome\.py:\d+ in on_changed_with_a_bug", lines[0]
    )
    assert "Zebulon" not in caplog.text and "cannot handle" not in caplog.text


def test_an_exception_on_a_background_thread_locks_the_window_too(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    window = make_window()
    guard = crash.install(window)
    try:
        unlock(qtbot, window)

        def background_bug() -> None:
            raise KeyError(CANARY)

        with caplog.at_level(logging.ERROR), qtbot.waitSignal(guard.handled, timeout=10_000):
            thread = threading.Thread(target=background_bug)
            thread.start()
            thread.join()
        assert_locked_and_told(window, guard)
    finally:
        guard.uninstall()
    assert "uncaught KeyError at " in caplog.text and "on a background thread" in caplog.text
    assert "Zebulon" not in caplog.text


def test_a_bug_in_saving_the_draft_still_locks_the_window_and_says_the_last_changes_were_not_saved(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_report = ReportForm.report

    def report_with_a_bug(self: ReportForm) -> dict[str, Any]:
        report = real_report(self)
        if str(report.get("narrative")).endswith("!"):
            raise ValueError(f"cannot save {report['narrative']}")
        return report

    monkeypatch.setattr(ReportForm, "report", report_with_a_bug)
    window = make_window()
    guard = crash.install(window)
    try:
        unlock(qtbot, window)
        editor = open_new_report(qtbot, window)
        with qtbot.waitSignal(editor.saved, timeout=10_000):
            type_into(qtbot, form_of(editor).fields["narrative"], CANARY)
        with caplog.at_level(logging.ERROR), qtbot.waitSignal(guard.handled, timeout=10_000):
            qtbot.keyClicks(form_of(editor).fields["narrative"].focus_target(), "!")  # the autosave fails
        assert guard.box is not None and guard.box.text() == crash.CRASH_MESSAGE_UNSAVED
        assert not window.is_unlocked and window.stack.currentWidget() is window.profile_screen
        assert form_of(editor).fields["narrative"].value() is None  # nothing left on screen
        assert CANARY in stored_narratives(qtbot, window)  # what was saved before stays
        assert not window.backend.unlocked  # the database was closed all the same
    finally:
        guard.uninstall()
    assert "Zebulon" not in caplog.text and "cannot save" not in caplog.text
    assert "uncaught ValueError at test_true_outcome.py:" in caplog.text


def shown_boxes(window: MainWindow) -> list[QMessageBox]:
    return [box for box in window.findChildren(QMessageBox) if box.isVisible()]


def test_closing_the_window_when_the_draft_cannot_be_saved_keeps_it_open_and_says_why(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Any],
    pso_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A disk full to the byte (a small tmpfs under PSO_DESKTOP_HOME): before, closing quit at once and the
    draft was lost. Now the window stays, says why, and the next close (space freed) saves the draft."""
    monkeypatch.setattr(editor_screen, "RETRY_DELAY_MS", 600_000)  # only the close saves again
    with small_tmpfs(pso_home, "6m"):
        workstation_factory().create_profile(PROFILE, SECRET)
        window = make_window()
        unlock(qtbot, window)
        editor = open_new_report(qtbot, window)
        filler = fill(pso_home)
        failures: list[str] = []
        editor.failed.connect(failures.append)
        with qtbot.waitSignal(editor.failed, timeout=10_000):
            type_into(qtbot, form_of(editor).fields["narrative"], CANARY)
        assert failures and failures[-1].startswith("The draft could not be saved: The disk is full")
        assert editor.save_status.text() == "Not saved yet"

        window.close()  # as the window manager's close button does (WM_DELETE_WINDOW)
        assert window.isVisible()  # before: closed at once, and the draft was lost
        qtbot.waitUntil(lambda: shown_boxes(window) != [], timeout=10_000)
        (box,) = shown_boxes(window)
        assert window.isVisible() and window.is_unlocked and not window.worker.stopped
        assert re.fullmatch(r"The draft could not be saved: The disk is full[^.;]*;[^.]*\.", box.text()), (
            box.text()
        )
        buttons = {button.text(): button for button in box.buttons()}
        assert set(buttons) == {"Keep the window open", "Quit without saving"}
        assert box.defaultButton() is buttons["Keep the window open"]
        assert form_of(editor).fields["narrative"].value() == CANARY  # still on screen

        buttons["Keep the window open"].click()
        qtbot.waitUntil(lambda: shown_boxes(window) == [], timeout=5_000)
        assert window.isVisible() and window.is_unlocked

        filler.unlink()  # space freed
        window.close()
        qtbot.waitUntil(lambda: window.worker.stopped, timeout=10_000)
        assert not window.isVisible()
        with workstation_factory().session(PROFILE, SECRET) as session:
            narratives = [
                (session.get_report(summary.id) or {}).get("narrative")
                for summary in session.store.list_summaries(limit=10)
            ]
        assert narratives == [CANARY]


def test_quit_without_saving_closes_the_window_when_the_draft_cannot_be_saved(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    workstation_factory: Callable[[], Any],
    pso_home: Path,
) -> None:
    with small_tmpfs(pso_home, "6m"):
        workstation_factory().create_profile(PROFILE, SECRET)
        window = make_window()
        unlock(qtbot, window)
        editor = open_new_report(qtbot, window)
        fill(pso_home)
        with qtbot.waitSignal(editor.failed, timeout=10_000):
            type_into(qtbot, form_of(editor).fields["narrative"], CANARY)
        window.close()
        qtbot.waitUntil(lambda: shown_boxes(window) != [], timeout=10_000)
        (box,) = shown_boxes(window)
        window.close()  # a second close while it asks: still one question, the window stays
        qtbot.wait(200)
        assert shown_boxes(window) == [box] and window.isVisible()
        (quit_button,) = [button for button in box.buttons() if button.text() == "Quit without saving"]
        quit_button.click()
        qtbot.waitUntil(lambda: window.worker.stopped, timeout=10_000)
        assert not window.isVisible() and not window.is_unlocked
