"""Numbered migrations on user_version: upgrade in steps, atomic steps, refuse a newer database untouched."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import sqlcipher3.dbapi2 as sqlcipher

from pso_desktop.storage import migrations
from pso_desktop.storage.database import open_database
from pso_desktop.storage.errors import DatabaseTooNewError
from pso_desktop.storage.migrations import LATEST_VERSION, migrate, schema_version
from tests.support.database import file_set_digest, raw_connection


def _tables(conn: sqlcipher.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}


def test_new_database_is_at_the_latest_version(conn: sqlcipher.Connection) -> None:
    assert LATEST_VERSION >= 2
    assert schema_version(conn) == LATEST_VERSION
    assert {"reports", "report_revisions", "outbox", "report_search", "audit_log"} <= _tables(conn)


def test_an_older_database_is_upgraded_step_by_step(db_path: Path, key: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    old = raw_connection(db_path, key)
    old.execute("PRAGMA journal_mode = WAL")
    assert migrate(old, target=1) == 1  # what the first release left behind
    old.execute(
        "INSERT INTO reports (id, revision, state, categories, created_at, updated_at, sha256, wire) "
        "VALUES ('7a1f0c1e-0000-4000-8000-000000000001', 1, 'draft', '[]', 't', 't', 'h', '{}')"
    )
    assert "audit_log" not in _tables(old)
    old.close()

    conn = open_database(db_path, key)
    try:
        assert schema_version(conn) == LATEST_VERSION
        assert "audit_log" in _tables(conn)
        assert conn.execute("SELECT count(*) FROM reports").fetchone()[0] == 1  # data kept
    finally:
        conn.close()


def test_a_failing_migration_leaves_the_previous_version(
    db_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path.parent.mkdir(parents=True)
    conn = raw_connection(db_path, key)
    migrate(conn, target=1)
    broken = (*migrations.MIGRATIONS[:1], ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    with pytest.raises(sqlcipher.OperationalError):
        migrate(conn, target=2)
    assert schema_version(conn) == 1
    assert "half_done" not in _tables(conn)
    assert not conn.in_transaction
    conn.close()


def test_a_newer_database_is_refused_and_left_untouched(db_path: Path, key: bytes) -> None:
    open_database(db_path, key, create=True).close()
    newer = raw_connection(db_path, key)
    newer.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")
    newer.close()
    before = file_set_digest(db_path)
    with pytest.raises(DatabaseTooNewError, match="newer version"):
        open_database(db_path, key)
    assert file_set_digest(db_path) == before


def test_migrate_refuses_an_impossible_target(conn: sqlcipher.Connection) -> None:
    with pytest.raises(ValueError):
        migrate(conn, target=LATEST_VERSION + 1)


def test_reports_queued_before_owner_keys_get_one_when_first_sent(db_path: Path, key: bytes) -> None:
    """Version 5 (issue 9, item 2): a report queued by version 3 has no owner key; it gets one before it is first
    sent, and keeps it; one submitted from now on gets it at submit. Keys never change and are never deleted."""
    from pso_desktop.domain.samples import sample_report
    from pso_desktop.storage.reports import ReportStore, encode_report, summary_columns

    db_path.parent.mkdir(parents=True)
    old = raw_connection(db_path, key)
    old.execute("PRAGMA journal_mode = WAL")
    migrate(old, target=3)
    # Written as version 3 wrote it (today's repository needs today's columns).
    report = sample_report(random.Random(1), 1)
    wire, sha = encode_report(report, report["revision"])
    old.execute(
        "INSERT INTO reports (id, revision, state, event_type, unit, discovered_on, categories, created_at, "
        "updated_at, sha256, wire) VALUES (?, ?, 'draft', ?, ?, ?, ?, 't', 't', ?, ?)",
        (report["id"], report["revision"], *summary_columns(report), sha, wire),
    )
    # Submitted the way version 3 did: frozen and queued, no key.
    old.execute(
        "INSERT INTO report_revisions (report_id, revision, sha256, frozen_at, wire) "
        "SELECT id, revision, sha256, 't', wire FROM reports"
    )
    old.execute(
        "INSERT INTO outbox (report_id, revision, state, size_bytes, queued_at, updated_at) "
        "SELECT id, revision, 'queued', length(CAST(wire AS BLOB)), 't', 't' FROM reports"
    )
    old.execute("UPDATE reports SET state = 'queued'")
    old.close()

    conn = open_database(db_path, key)
    try:
        store = ReportStore(conn)
        assert schema_version(conn) == LATEST_VERSION
        (queued,) = store.claim_batch(10, 1 << 20)
        assert queued.owner_key and len(queued.owner_key) >= 43 and queued.owner_key not in repr(queued)
        store.requeue_sending()
        (again,) = store.claim_batch(10, 1 << 20)
        assert again.owner_key == queued.owner_key
        fresh = sample_report(random.Random(2), 2)
        store.add_reports([fresh], submit=True)
        assert set(store.owner_keys([fresh["id"], queued.report_id])) == {fresh["id"], queued.report_id}
        for statement in ("UPDATE report_keys SET owner_key = 'x'", "DELETE FROM report_keys"):
            with pytest.raises(sqlcipher.DatabaseError):
                conn.execute(statement)
    finally:
        conn.close()


def test_migration_4_brings_the_list_indexes_to_reports_written_before_it(db_path: Path, key: bytes) -> None:
    """A profile of the previous release: its categories, the PSO's statuses, harm and search over units and case
    numbers all work after the upgrade, and the triggers keep them in step afterwards."""
    from pso_desktop.storage.report_query import ReportQuery
    from pso_desktop.storage.reports import ReportStore

    db_path.parent.mkdir(parents=True)
    old = raw_connection(db_path, key)
    old.execute("PRAGMA journal_mode = WAL")
    assert migrate(old, target=3) == 3
    report_id = "7a1f0c1e-0000-4000-8000-000000000002"
    wire = '{"categories": ["A48", "A50"], "harm": {"level": "LA21151-8"}, "narrative": "Found on the floor"}'
    old.execute(
        "INSERT INTO reports (id, revision, state, unit, categories, server_ref, created_at, updated_at, sha256, "
        "wire) VALUES (?, 1, 'submitted', 'ICU-2', '[\"A48\", \"A50\"]', 'PSO-2026-00042', 't', 't', 'h', ?)",
        (report_id, wire),
    )
    old.execute(
        "INSERT INTO server_status (report_id, server_ref, status, changed_at) VALUES (?, 'PSO-2026-00042', "
        "'under_review', 't')",
        (report_id,),
    )
    old.close()

    conn = open_database(db_path, key)
    try:
        store = ReportStore(conn)
        for query in (
            ReportQuery(categories=("A50",)),
            ReportQuery(harm_levels=("LA21151-8",)),
            ReportQuery(pso_statuses=("under_review",)),
            ReportQuery(text="icu"),
            ReportQuery(text="PSO-2026-00042"),
            ReportQuery(text="floor"),
        ):
            assert [s.id for s in store.list_summaries(query=query)] == [report_id], query
        assert store.list_summaries(query=ReportQuery(categories=("A62",))) == []
        conn.execute("UPDATE server_status SET status = 'closed' WHERE report_id = ?", (report_id,))
        assert store.summary(report_id).pso_status == "closed"  # type: ignore[union-attr]
    finally:
        conn.close()


def test_migration_11_gives_reports_written_before_it_the_sort_indexes(db_path: Path, key: bytes) -> None:
    """A profile of the previous release gets the unit and discovery date indexes; its reports sort by them, and by
    a harm and a PSO status set before the upgrade."""
    from pso_desktop.storage.report_query import SORT_INDEXES, ReportQuery
    from pso_desktop.storage.reports import ReportStore

    db_path.parent.mkdir(parents=True)
    old = raw_connection(db_path, key)
    old.execute("PRAGMA journal_mode = WAL")
    assert migrate(old, target=10) == 10
    ids = [f"7a1f0c1e-0000-4000-8000-00000000000{n}" for n in range(3)]
    for n, (report_id, unit, harm) in enumerate(
        zip(ids, ("ICU-2", "ED", None), ("LA21152-6", "LA21151-8", None), strict=True)
    ):
        wire = json.dumps({"harm": {"level": harm}} if harm else {})
        old.execute(
            "INSERT INTO reports (id, revision, state, unit, created_at, updated_at, sha256, wire) "
            "VALUES (?, 1, 'draft', ?, 't', ?, 'h', ?)",
            (report_id, unit, f"2026-12-0{n + 1}T00:00:00Z", wire),
        )
    old.execute(
        "INSERT INTO server_status (report_id, server_ref, status, changed_at) VALUES (?, 'PSO-1', 'closed', 't')",
        (ids[2],),
    )
    old.close()

    conn = open_database(db_path, key)
    try:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert set(SORT_INDEXES.values()) <= indexes
        store = ReportStore(conn)
        for sort, want in (("unit", [2, 1, 0]), ("harm", [2, 1, 0]), ("pso_status", [1, 0, 2])):
            listed = [s.id for s in store.list_summaries(query=ReportQuery(sort=sort, descending=False))]
            assert listed == [ids[n] for n in want], sort
    finally:
        conn.close()
