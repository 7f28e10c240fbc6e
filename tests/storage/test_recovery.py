"""The recovery merge (storage/recovery.py) on real SQLCipher files: what wins, what is re-queued, what stays gone."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.storage import backup, recovery
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import open_database
from pso_desktop.storage.reports import ReportStore

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def reports(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [validate_report(sample_report(rng, i)).export() for i in range(count)]


def snapshot(path: Path, key: bytes) -> tuple[dict[str, tuple[int, str, str]], dict[str, int], list[tuple]]:
    """(id -> (revision, state, narrative)), outbox counts, and every outbox entry (id, revision, state)."""
    conn = open_database(path, key, full_check=True)
    try:
        store = ReportStore(conn)
        rows = {
            row[0]: (row[1], row[2], store.get(row[0])["narrative"])
            for row in conn.execute("SELECT id, revision, state FROM reports")
        }
        entries = conn.execute("SELECT report_id, revision, state FROM outbox ORDER BY seq").fetchall()
        assert AuditLog(conn).verify()
        return rows, store.outbox_counts(), entries
    finally:
        conn.close()


def history(path: Path, key: bytes) -> tuple[Path, list[dict[str, Any]]]:
    """A profile's life: a backup is taken midway; returns the backup and the reports."""
    r = reports(5)
    conn = open_database(path, key, create=True)
    store, audit = ReportStore(conn), AuditLog(conn)
    audit.append("profile_create", actor="nurse")
    store.add_reports(r[:3], submit=True)  # 0, 1, 2 queued
    store.add_reports(r[3:4])  # 3 draft
    sent = store.claim_batch(1, 10**6)  # 0 is sent ...
    store.record_results([{"id": sent[0].report_id, "revision": 1, "status": "created", "server_ref": "PSO-1"}])
    taken = backup.take_backup(conn, path, key, now=T0)
    # After the backup: 1 gets a second revision (a draft), 3 is submitted, 4 is new, 2 is caught mid-upload.
    store.save_draft(dict(r[1], narrative="Second revision after the backup."))
    store.submit([r[3]["id"]])
    store.add_reports(r[4:])
    store.claim_batch(1, 10**6)  # takes 1's revision 1 (the oldest queued) to 'sending'
    audit.append("submit", actor="nurse", report_id=r[3]["id"])
    conn.close()
    return taken.path, r


def rebuild(path: Path, key: bytes, backup_path: Path | None, damaged: recovery.Contents | None) -> Path:
    merged = recovery.merge(
        recovery.read_contents(backup_path, key, damaged=False) if backup_path else None, damaged
    )
    out = path.with_name("rebuilt.db")
    recovery.write_database(out, key, merged, actor="nurse", detail="test")
    return out


def test_merging_with_a_sound_newer_file_gives_that_file_back(db_path: Path, key: bytes):
    backup_path, _ = history(db_path, key)
    rows, counts, entries = snapshot(db_path, key)

    out = rebuild(db_path, key, backup_path, recovery.read_contents(db_path, key, damaged=True))

    new_rows, new_counts, new_entries = snapshot(out, key)
    assert new_rows == rows
    # The one difference is meant: the entry caught mid-upload ('sending') is queued again.
    assert [(i, r, "queued" if s == "sending" else s) for i, r, s in entries] == new_entries
    assert new_counts == counts | {"queued": counts["queued"] + counts["sending"], "sending": 0}


def test_lost_rows_come_back_from_frozen_revisions_and_the_backup(db_path: Path, key: bytes):
    backup_path, r = history(db_path, key)
    damaged = recovery.read_contents(db_path, key, damaged=True)
    # As if pages were lost: report 3's row (it was submitted after the backup; its frozen revision survives),
    # report 1's row (its revision 2 draft lives only there) and the outbox entry of report 2.
    del damaged.reports[r[3]["id"]]
    del damaged.reports[r[1]["id"]]
    del damaged.outbox[(r[2]["id"], 1)]

    out = rebuild(db_path, key, backup_path, damaged)

    rows, _counts, entries = snapshot(out, key)
    assert rows[r[3]["id"]][:2] == (1, "queued")  # rebuilt from its frozen revision, still waiting to be sent
    # Report 1: the highest revision left is 1, frozen and queued (its revision 2 draft was on the lost page).
    assert rows[r[1]["id"]][:2] == (1, "queued")
    assert (r[2]["id"], 1, "queued") in entries  # the entry came back from the backup
    assert rows[r[0]["id"]][:2] == (1, "submitted")
    assert set(rows) == {report["id"] for report in r}


def test_frozen_revision_without_any_entry_is_queued_again(db_path: Path, key: bytes):
    _, r = history(db_path, key)
    damaged = recovery.read_contents(db_path, key, damaged=True)
    del damaged.outbox[(r[3]["id"], 1)]  # no backup holds it either: it was submitted after the backup

    out = rebuild(db_path, key, None, damaged)

    rows, _counts, entries = snapshot(out, key)
    assert (r[3]["id"], 1, "queued") in entries
    assert rows[r[3]["id"]][:2] == (1, "queued")


def test_a_draft_deleted_after_the_backup_stays_deleted(db_path: Path, key: bytes):
    history(db_path, key)
    extra = reports(1, seed=9)[0]
    conn = open_database(db_path, key)
    try:
        store, audit = ReportStore(conn), AuditLog(conn)
        store.add_reports([extra])
        later = backup.take_backup(conn, db_path, key, now=T0 + dt.timedelta(hours=1))  # holds the draft
        store.delete(extra["id"])
        audit.append("delete", actor="nurse", report_id=extra["id"])
    finally:
        conn.close()

    out = rebuild(db_path, key, later.path, recovery.read_contents(db_path, key, damaged=True))

    rows, _counts, _entries = snapshot(out, key)
    assert extra["id"] not in rows
    assert len(rows) == 5


def test_the_audit_chain_is_carried_over_with_a_recover_entry(db_path: Path, key: bytes):
    backup_path, _ = history(db_path, key)
    out = rebuild(db_path, key, backup_path, recovery.read_contents(db_path, key, damaged=True))
    conn = open_database(out, key)
    try:
        log = AuditLog(conn)
        assert log.verify()
        actions = [entry.action for entry in log.entries()]
        assert actions == ["profile_create", "submit", "recover"]
    finally:
        conn.close()


def test_leftovers_of_a_killed_recovery_are_removed_once_old(db_path: Path):
    import os
    import time

    folder = db_path.parent
    folder.mkdir(parents=True)
    old_scratch, young_scratch = folder / ".recover-aaaa", folder / ".recover-bbbb"
    old_result = folder / ".reports.db.recovered-cccc.tmp"
    for item in (old_scratch, young_scratch):
        item.mkdir()
        (item / "reports.db").write_bytes(b"encrypted pages")
    old_result.write_bytes(b"encrypted pages")
    hours_ago = time.time() - 7200
    for item in (old_scratch, old_result):
        os.utime(item, (hours_ago, hours_ago))
    (folder / "reports.db").write_bytes(b"the database")

    recovery.remove_stale_scratch(db_path)

    assert sorted(p.name for p in folder.iterdir()) == [".recover-bbbb", "reports.db"]


def test_the_facility_copies_are_left_out_and_unsent_review_records_kept(db_path: Path, key: bytes):
    """Issue 12: a risk manager's copies of the facility's reports have no frozen revision here (they are not its
    own); carried over, they would be queued to be sent as its own. They are left out (the next sync fetches them
    again) and the review records not sent yet are kept."""
    from pso_desktop.storage.account import Account, AccountStore
    from pso_desktop.storage.facility import FacilityStore

    own, copy = reports(2, seed=9)
    conn = open_database(db_path, key, create=True)
    AuditLog(conn).append("profile_create", actor="rm")
    AccountStore(conn).link(Account("https://pso.example", "rm", "pc"))
    store, facility = ReportStore(conn), FacilityStore(conn)
    store.add_reports([own], submit=True)
    page = [
        {
            "id": copy["id"],
            "revision": 1,
            "server_ref": "PSO-2026-000007",
            "received_at": "2026-12-01T10:00:00Z",
            "report": copy,
        }
    ]
    assert facility.save_reports(page, "c1") == 1
    facility.add_note(copy["id"], "Seen by the risk manager.", "rm")
    conn.close()

    out = rebuild(db_path, key, None, recovery.read_contents(db_path, key, damaged=True))

    rows, _counts, entries = snapshot(out, key)
    assert set(rows) == {own["id"]}
    assert entries == [(own["id"], 1, "queued")]
    conn = open_database(out, key)
    try:
        facility = FacilityStore(conn)
        assert facility.cursors() == (None, None)  # the copies come back from the start of the feed
        assert [n.text for n in facility.review(copy["id"]).notes] == ["Seen by the risk manager."]
        assert [r["kind"] for r in facility.unsent()] == ["note"]
    finally:
        conn.close()
