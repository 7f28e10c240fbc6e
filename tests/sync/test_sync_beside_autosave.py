"""A sync on its own connection and thread (as the window runs it) beside the form's autosave on the main one:
neither waits for the other's whole run, no save fails, and every queued report lands once."""

from __future__ import annotations

import random
import threading
import time
import uuid

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.services import syncing
from pso_desktop.services.workstation import Session
from pso_desktop.sync.engine import SyncSummary
from pso_desktop.sync.transport import ServerSettings
from pso_server.practice import RunningServer
from tests.support.sync import PASSWORD

QUEUED = 1500
SAVES = 60


def test_autosave_keeps_working_while_a_second_connection_syncs(session: Session, server: RunningServer) -> None:
    rng = random.Random(5)
    session.add_reports([validate_report(sample_report(rng, i)).export() for i in range(QUEUED)], submit=True)
    syncing.login(session, ServerSettings(server.base_url, ca_file=str(server.ca_path)), "nurse1", PASSWORD)

    outcome: dict[str, SyncSummary | BaseException] = {}
    started = threading.Event()

    def run_sync() -> None:
        second = session.second_connection()  # opened on the thread that uses it, as the window's sync thread does
        try:
            outcome["summary"] = syncing.sync(second, batch_reports=100, on_progress=lambda _p: started.set())
        except BaseException as exc:  # handed to the main thread's assertions
            outcome["error"] = exc
        finally:
            started.set()
            second.close()

    thread = threading.Thread(target=run_sync)
    thread.start()
    assert started.wait(30)
    draft_id = str(uuid.uuid4())
    saved_during_sync = n = 0
    worst_wait = 0.0
    while n < SAVES or (thread.is_alive() and n < 100 * SAVES):  # the form's autosave, on the main connection
        began = time.perf_counter()
        session.save_draft({"id": draft_id, "revision": 1, "event_type": "incident", "narrative": f"typing {n}"})
        if thread.is_alive():
            saved_during_sync += 1
            worst_wait = max(worst_wait, time.perf_counter() - began)
        n += 1
        # Still 75 times the form's pace (one save 1.5 s after typing stops). Saving back to back with no pause
        # would starve the other connection's busy handler: SQLite's locks are not queued fairly.
        time.sleep(0.02)
    thread.join(120)
    assert not thread.is_alive()

    assert "error" not in outcome, outcome.get("error")
    summary = outcome["summary"]
    assert isinstance(summary, SyncSummary)
    assert (summary.submitted, summary.remaining, summary.problem) == (QUEUED, 0, None)
    assert saved_during_sync >= 10, saved_during_sync  # the saves really overlapped the upload
    # The storage layer's write gate wakes a waiting save as soon as a checkpoint ends: about 60 ms at worst
    # here, where SQLite's polling busy handler alone let a save wait 0.6-0.8 s, or starve past its timeout.
    assert worst_wait < 2.0, worst_wait
    assert session.get_report(draft_id)["narrative"] == f"typing {n - 1}"
    assert server.stats()["reports"] == QUEUED
    assert session.status_counts()["submitted"] == QUEUED
    # Closing the second connection is not a lock: the audit log has one unlock and no lock yet.
    actions = [entry.action for entry in session.audit.entries()]
    assert actions.count("lock") == 0 and "sync" in actions
