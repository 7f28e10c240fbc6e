"""Send to PSO from the window, against the real reference server over TLS on loopback: sign in from the dialog,
progress, the outcome line, a wrong password, an unreachable server with Stop, and a lock in the middle."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from pso_desktop.services import syncing
from pso_desktop.services.workstation import Workstation
from pso_desktop.sync.transport import ServerSettings
from pso_desktop.ui.reports_model import COLUMNS
from pso_desktop.ui.sign_in_dialog import SignInDialog
from pso_desktop.ui.window import MainWindow
from pso_server.practice import RunningServer
from tests.support.fault_proxy import PASS, FaultProxy, status
from tests.support.reports import sample_reports
from tests.support.sync import ACCOUNT, PASSWORD
from tests.support.ui import PROFILE, SECRET, unlock

QUEUED = 4  # the stored_reports fixture queues its first four reports


def counts(workstation: Workstation) -> dict[str, int]:
    with workstation.session(PROFILE, SECRET) as session:
        return session.status_counts()


def press_send(qtbot: Any, window: MainWindow) -> None:
    qtbot.keyClick(window.reports_screen.table, Qt.Key.Key_F9)


def sign_in_dialog_after_send(qtbot: Any, window: MainWindow) -> SignInDialog:
    """Presses Send on a profile not linked yet and returns the sign-in dialog that opens."""
    press_send(qtbot, window)
    panel = window.sync_panel
    qtbot.waitUntil(lambda: panel.dialog is not None and panel.dialog.isVisible(), timeout=10_000)
    assert panel.dialog is not None
    return panel.dialog


def fill_sign_in(dialog: SignInDialog, server_url: str, *, ca_file: Path, proxy: str = "") -> None:
    """Everything but the password, as a clinician would type it."""
    dialog.server.setText(server_url)
    dialog.username.setText(ACCOUNT)
    dialog.ca_file.setText(str(ca_file))
    dialog.proxy.setText(proxy)


def test_first_send_asks_to_sign_in_then_sends_the_queue_with_progress(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    server: RunningServer,
    workstation_factory: Callable[[], Workstation],
) -> None:
    window = make_window()
    unlock(qtbot, window)
    panel = window.sync_panel
    dialog = sign_in_dialog_after_send(qtbot, window)

    # A wrong password: said in the dialog, which stays open with the password selected to type again.
    fill_sign_in(dialog, server.base_url, ca_file=server.ca_path)
    qtbot.keyClicks(dialog.password, "not the password")
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dialog.password.isEnabled() and dialog.error.text() != "Signing in…", timeout=10_000)
    assert dialog.isVisible()
    assert "password" in dialog.error.text().lower() and "Traceback" not in dialog.error.text()
    assert dialog.password.hasFocus()

    phases: list[str] = []
    window.sync_panel._relay.progress.connect(lambda _generation, progress: phases.append(progress.phase))
    with qtbot.waitSignal(panel.finished, timeout=30_000) as done:
        dialog.password.setText(PASSWORD)
        qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    summary = done.args[0]
    assert (summary.submitted, summary.remaining, summary.problem) == (QUEUED, 0, None)
    assert not dialog.isVisible() and dialog.password.text() == ""
    assert "sending" in phases and phases[-1] == "done"
    assert panel.status.full_text().startswith(f"{QUEUED} reports sent to the PSO; all sent at ")
    assert not panel.progress.isVisible() and panel.send_action.isEnabled()
    assert server.stats()["reports"] == QUEUED
    qtbot.waitUntil(lambda: window.reports_screen.count_labels["submitted"].text() == f"Submitted: {QUEUED}")
    assert counts(workstation_factory())["queued"] == 0

    # Signed in: the next Send goes without asking again (nothing is waiting now).
    with qtbot.waitSignal(panel.finished, timeout=30_000) as again:
        panel.send_action.trigger()
    assert again.args[0].submitted == 0 and panel.dialog is not None and not panel.dialog.isVisible()
    assert panel.status.full_text().startswith(f"{QUEUED} reports sent to the PSO; all sent at ")

    # The PSO asks for more about one report: the next sync brings it into the list's "At the PSO" column.
    asked = stored_reports[0]["id"]
    server.set_status(asked, "more_info_requested")
    with qtbot.waitSignal(panel.finished, timeout=30_000) as third:
        panel.send_action.trigger()
    assert third.args[0].status_changes >= 1
    model = window.reports_screen.model
    column = [key for key, _ in COLUMNS].index("pso_status")

    def shown_status() -> str | None:
        rows = [r for r in range(model.rowCount()) if model.summary(r).id == asked]
        return model.index(rows[0], column).data() if rows else None

    qtbot.waitUntil(lambda: shown_status() == "More information requested")


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def linked_to_a_server_that_is_down(
    stored_reports: list[dict[str, Any]], server: RunningServer, workstation_factory: Callable[[], Workstation]
) -> str:
    """The profile signed in to the server, whose address then points at a closed port: the network is down."""
    workstation = workstation_factory()
    with workstation.session(PROFILE, SECRET) as session:
        syncing.login(session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), ACCOUNT, PASSWORD)
        account = session.account.get()
        assert account is not None
        down = f"https://127.0.0.1:{_closed_port()}"
        session.account.link(account.__class__(**{**account.__dict__, "server_url": down}))
    return down


def waiting_to_retry(qtbot: Any, window: MainWindow) -> MainWindow:
    """Unlocks, presses Send, and waits until the run says it will try the unreachable server again."""
    unlock(qtbot, window)
    press_send(qtbot, window)
    qtbot.waitUntil(lambda: "Trying again in" in window.sync_panel.status.full_text(), timeout=20_000)
    return window


def test_an_unreachable_server_shows_the_wait_and_stop_leaves_the_reports_queued(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    linked_to_a_server_that_is_down: str,
    workstation_factory: Callable[[], Workstation],
) -> None:
    window = waiting_to_retry(qtbot, make_window())
    panel = window.sync_panel
    assert panel.running and panel.stop_button.isVisible()
    with qtbot.waitSignal(panel.finished, timeout=10_000) as done:
        panel.stop_button.click()
    summary = done.args[0]
    assert summary.submitted == 0 and summary.remaining == QUEUED and summary.problem
    text = panel.status.full_text()
    assert text.startswith(f"{QUEUED} reports waiting – stopped;") and "Traceback" not in text
    assert counts(workstation_factory())["queued"] == QUEUED


def test_locking_during_a_sync_stops_it_and_shows_nothing_of_it_after(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    linked_to_a_server_that_is_down: str,
    workstation_factory: Callable[[], Workstation],
) -> None:
    window = waiting_to_retry(qtbot, make_window())
    panel = window.sync_panel
    with qtbot.waitSignal(window.locked, timeout=10_000):
        window.lock_action.trigger()
    assert not panel.running and panel.status.full_text() == ""
    qtbot.waitUntil(lambda: window.sync_worker.pending == 0, timeout=10_000)  # the run ended on its thread
    assert panel.status.full_text() == ""  # its outcome, arriving after the lock, was dropped
    assert counts(workstation_factory())["queued"] == QUEUED


def test_a_report_the_pso_rejects_opens_with_its_reasons_and_goes_through_once_fixed(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    profile_with_a_report_the_pso_rejects: str,
    server: RunningServer,
) -> None:
    bad_id = profile_with_a_report_the_pso_rejects
    window = make_window()
    unlock(qtbot, window)
    panel = window.sync_panel
    with qtbot.waitSignal(panel.finished, timeout=30_000) as done:
        press_send(qtbot, window)
    assert (done.args[0].submitted, done.args[0].needs_attention) == (1, 1)
    assert "1 report needs attention (open it from the list to see why)" in panel.status.full_text()

    model = window.reports_screen.model
    qtbot.waitUntil(lambda: any(model.summary(r).state == "needs_attention" for r in range(model.rowCount())))
    row = next(r for r in range(model.rowCount()) if model.summary(r).id == bad_id)
    assert model.summary(row).state == "needs_attention"
    table = window.reports_screen.table
    table.setFocus()
    table.selectRow(row)
    with qtbot.waitSignal(window.editor_opened, timeout=10_000):
        qtbot.keyClick(table, Qt.Key.Key_Return)
    editor = window.editor
    assert editor is not None and editor.form is not None
    assert editor.errors.isVisible()
    assert editor.errors_heading.text().startswith("The PSO did not accept this report; fix 1 thing")
    assert "What is being reported" in editor.errors.item(0).text()  # the server's words, the client's wording
    editor.errors.setCurrentRow(0)
    editor.errors.setFocus()
    qtbot.keyClick(editor.errors, Qt.Key.Key_Return)
    assert editor.form.fields["event_type"].focus_target().hasFocus()

    editor.form.fields["event_type"].buttons["incident"].click()  # type: ignore[attr-defined]
    with qtbot.waitSignal(editor.submitted, timeout=10_000):
        editor.submit_button.click()
    with qtbot.waitSignal(panel.finished, timeout=30_000) as again:
        panel.send_action.trigger()
    assert (again.args[0].submitted, again.args[0].needs_attention) == (1, 0)
    assert server.stats()["reports"] == 2


@pytest.fixture
def profile_with_a_report_the_pso_rejects(
    workstation_factory: Callable[[], Workstation], server: RunningServer
) -> str:
    """A linked profile with two queued reports: one valid, one without its event type (stored as an older
    app version might have, without validation), which the server refuses with its reasons."""
    good, bad = sample_reports(2, seed=3)
    del bad["event_type"]
    workstation = workstation_factory()
    workstation.create_profile(PROFILE, SECRET)
    with workstation.session(PROFILE, SECRET) as session:
        session.add_reports([good, bad], submit=True)
        syncing.login(session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), ACCOUNT, PASSWORD)
    return str(bad["id"])


def test_the_indicator_says_where_the_queue_stands_in_one_sentence() -> None:
    from pso_desktop.ui.sync_panel import QueueView, standing_text

    view = QueueView(waiting=3, signed_in=True)
    assert standing_text(view) == "3 reports waiting to be sent."
    assert standing_text(replace(view, offline=True)) == (
        "3 reports waiting – no connection to the PSO; they go as soon as it is back."
    )
    assert standing_text(replace(view, waiting=1, offline=True)) == (
        "1 report waiting – no connection to the PSO; it goes as soon as it is back."
    )
    assert standing_text(replace(view, offline=True, busy_until="14:05")) == (
        "3 reports waiting – the PSO asked to wait; they go at 14:05."
    )
    assert standing_text(replace(view, phase="sending", sent=40, total=500)) == "Sending 40 of 500 to the PSO…"
    assert standing_text(replace(view, waiting=0, all_sent_at="14:02")) == "All sent at 14:02."
    assert standing_text(replace(view, waiting=0, all_sent_at="14:02", last_sent=1200, needs_attention=2)) == (
        "1,200 reports sent to the PSO; all sent at 14:02. 2 reports need attention (open each from the list "
        "to see why)."
    )
    assert standing_text(replace(view, signed_in=False)) == (
        "3 reports waiting – not signed in to the PSO; press Send to PSO (F9) to sign in."
    )
    assert standing_text(QueueView(waiting=0, signed_in=False)) == (
        "Not signed in to the PSO; press Send to PSO (F9) to sign in."
    )
    assert standing_text(replace(view, problem="The certificate of pso.example.org is not trusted.")) == (
        "3 reports waiting – The certificate of pso.example.org is not trusted."
    )
    assert standing_text(QueueView(waiting=0, signed_in=True)) == "Nothing waiting to be sent."
    assert standing_text(QueueView()) == ""  # locked, or not read yet: says nothing
    # A risk manager's review changes wait too: never "All sent" while they do.
    assert standing_text(QueueView(waiting=0, signed_in=True, reviews_waiting=2, all_sent_at="14:02")) == (
        "2 review changes waiting to be sent."
    )
    assert standing_text(replace(view, reviews_waiting=1, offline=True)) == (
        "3 reports and 1 review change waiting – no connection to the PSO; they go as soon as it is back."
    )


def test_signing_in_and_sending_through_the_hospital_inspecting_proxy(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    server: RunningServer,
) -> None:
    """The ward PC reaches the PSO only through a TLS-inspecting proxy with the hospital's own CA: the dialog's
    CA file and proxy fields are what make it work, and every request goes through the proxy."""
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        window = make_window()
        unlock(qtbot, window)
        panel = window.sync_panel
        dialog = sign_in_dialog_after_send(qtbot, window)
        fill_sign_in(dialog, server.base_url, ca_file=proxy.ca_path, proxy=proxy.proxy_url)  # the hospital's CA
        dialog.password.setText(PASSWORD)
        with qtbot.waitSignal(panel.finished, timeout=30_000) as done:
            qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
        assert (done.args[0].submitted, done.args[0].remaining) == (QUEUED, 0)
        paths = [seen.path for seen in proxy.seen]
    assert "/api/v1/auth/login" in paths and "/api/v1/reports/batch" in paths
    assert server.stats()["reports"] == QUEUED


def test_stop_ends_a_five_minute_retry_after_at_once(
    qtbot: Any,
    make_window: Callable[..., MainWindow],
    stored_reports: list[dict[str, Any]],
    server: RunningServer,
    workstation_factory: Callable[[], Workstation],
) -> None:
    with FaultProxy(server.base_url, server.ca_path) as proxy:
        with workstation_factory().session(PROFILE, SECRET) as session:
            syncing.login(session, ServerSettings(proxy.url, ca_file=str(proxy.ca_path)), ACCOUNT, PASSWORD)
        proxy.plan(PASS, status(503, retry_after=300))  # the renewal, then "come back in 5 minutes"
        window = make_window(auto_send=False)  # F9's own run meets the planned faults, not an automatic one
        unlock(qtbot, window)
        panel = window.sync_panel
        press_send(qtbot, window)
        qtbot.waitUntil(lambda: "Trying again in 300 s" in panel.status.full_text(), timeout=20_000)
        started = time.monotonic()
        with qtbot.waitSignal(panel.finished, timeout=10_000) as done:
            panel.stop_button.click()
        assert time.monotonic() - started < 2
    assert (done.args[0].remaining, done.args[0].problem) == (
        QUEUED,
        "Stopped; the remaining reports stay queued.",
    )
    assert panel.status.full_text().startswith(f"{QUEUED} reports waiting – stopped;")
    assert counts(workstation_factory())["queued"] == QUEUED
