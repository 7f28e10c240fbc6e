"""Database URLs and the dialect shim (no server needed)."""

from __future__ import annotations

import copy
import datetime as dt
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pso_desktop.domain.samples import sample_report
from pso_server.errors import DatabaseURLInvalid
from pso_server.intake import prepare
from pso_server.store import (
    POSTGRESQL,
    SQLITE,
    Database,
    IncomingRevision,
    Tx,
    Uploader,
    User,
    format_ref,
    get_report,
    ingest_revision,
    parse_ref,
    record_received,
    set_status,
    status_changes_since,
)


@pytest.mark.parametrize("form", ["{p}", "sqlite:///{p}"])
def test_sqlite_paths_and_urls_open_the_same_file(tmp_path: Path, form: str) -> None:
    file = tmp_path / "server.db"
    db = Database.open(form.format(p=file))
    try:
        assert db.dialect is SQLITE
        with db.reader() as tx:
            assert tx.one("PRAGMA journal_mode") == ("wal",)
            assert tx.one("PRAGMA synchronous") == (2,)  # FULL
            assert tx.one("PRAGMA foreign_keys") == (1,)
    finally:
        db.close()
    assert file.is_file()


@pytest.mark.parametrize("url", ["sqlite://host/x.db", "sqlite://", "mysql://db/pso", "/no/such/folder/x.db"])
def test_unusable_urls_are_refused_plainly(url: str) -> None:
    with pytest.raises(DatabaseURLInvalid) as refused:
        Database(url)
    assert str(refused.value).endswith(".")


def test_postgresql_urls_select_the_postgresql_dialect() -> None:
    assert Database("postgresql://u:p@127.0.0.1:1/x").dialect is POSTGRESQL
    assert Database("postgres://u:p@127.0.0.1:1/x").dialect is POSTGRESQL


def test_placeholders_are_rewritten_only_for_postgresql() -> None:
    assert SQLITE.sql("SELECT ? , ?") == "SELECT ? , ?"
    assert POSTGRESQL.sql("SELECT ? , ?") == "SELECT %s , %s"


def test_case_references_round_trip() -> None:
    assert format_ref(2026, 123) == "PSO-2026-000123"
    assert parse_ref("pso-2026-000123 ") == 123
    assert parse_ref("PSO-2026-x") is None and parse_ref("7c4b7a51-3b7e-4f4e-9a43-2d7e51a0b0a1") is None


def test_a_new_sqlite_database_is_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        db = Database.open(str(tmp_path / "server.db"))
    finally:
        os.umask(old_umask)
    try:
        with db.transaction() as tx:
            tx.execute("INSERT INTO units (code, name) VALUES ('X', 'x')")
        files = sorted(tmp_path.glob("server.db*"))
        assert {f.name for f in files} >= {"server.db", "server.db-wal"}
        assert all(f.stat().st_mode & 0o077 == 0 for f in files), [oct(f.stat().st_mode) for f in files]
    finally:
        db.close()


def _revision(report: dict[str, Any], revision: int) -> IncomingRevision:
    sent = copy.deepcopy(report)
    sent["revision"] = revision
    sent["narrative"] = f"{sent['narrative']} (revision {revision})"
    prepared = prepare(sent, dt.date.today())
    assert isinstance(prepared, IncomingRevision), prepared
    return prepared


def test_an_older_revision_waits_for_a_newer_one_in_flight_and_is_stale(db_url: str) -> None:
    """Deterministic form of the revision race: revision 2 arrives while revision 3's transaction is open.
    It must wait (SQLite: the write lock; PostgreSQL: the report's row lock) and then see that it is stale;
    without the lock it would store itself and move the report back from revision 3 to 2."""
    db = Database.open(db_url)
    try:
        report = sample_report(random.Random(5))
        with db.transaction() as tx:
            tx.execute(
                "INSERT INTO users (username, password_hash, role, facility, created_at) "
                "VALUES ('nurse1', 'x', 'reporter', 'General Hospital', 0)"
            )
            (user_id,) = tx.one("SELECT id FROM users WHERE username = 'nurse1'") or (0,)
        uploader = Uploader(int(user_id), "reporter", "General Hospital")
        now = time.time()
        with db.transaction() as tx:
            assert ingest_revision(tx, _revision(report, 1), uploader, now, 2026).status == "created"
        older: list[str] = []

        def send_older() -> None:
            with db.transaction() as tx:
                older.append(ingest_revision(tx, _revision(report, 2), uploader, now, 2026).status)

        racer = threading.Thread(target=send_older)
        with db.transaction() as tx:
            assert ingest_revision(tx, _revision(report, 3), uploader, now, 2026).status == "updated"
            racer.start()
            racer.join(timeout=0.5)
            assert racer.is_alive()  # waiting for this transaction
        racer.join(timeout=30)
        assert older == ["stale"]
        with db.reader() as tx:
            assert get_report(tx, report["id"]).latest_revision == 3
    finally:
        db.close()


def test_the_status_feed_never_skips_a_change_that_commits_late(db_url: str) -> None:
    """A batch that creates a report is still open when a risk manager's status change to another report
    commits, and a client polls the feed in between: the batch's 'received' change must still reach that
    client on its next poll (its seq must not be lower than the cursor the client was given)."""
    db = Database.open(db_url)
    try:
        with db.transaction() as tx:
            tx.execute(
                "INSERT INTO users (username, password_hash, role, facility, created_at) "
                "VALUES ('manager', 'x', 'risk_manager', 'General Hospital', 0)"
            )
            (user_id,) = tx.one("SELECT id FROM users WHERE username = 'manager'") or (0,)
        viewer = User(int(user_id), "manager", "risk_manager", "General Hospital")
        uploader = Uploader(viewer.id, viewer.role, viewer.facility)
        rng = random.Random(9)
        first, second = sample_report(rng, 0), sample_report(rng, 1)
        now = time.time()

        def create(tx: Tx, report: dict[str, Any]) -> None:
            outcome = ingest_revision(tx, _revision(report, 1), uploader, now, 2026)
            assert outcome.received_at is not None
            record_received(tx, [(report["id"], outcome.received_at)])

        with db.transaction() as tx:
            create(tx, first)
        with db.reader() as tx:
            cursor = status_changes_since(tx, viewer, 0, 100)[-1].seq

        def review_first() -> None:
            with db.transaction() as tx:
                set_status(tx, first["id"], "under_review", None, None, now)

        reviewer = threading.Thread(target=review_first)
        with db.transaction() as batch:
            create(batch, second)
            reviewer.start()
            reviewer.join(timeout=0.5)
            with db.reader() as tx:  # a client polls while the batch is still open
                seen = status_changes_since(tx, viewer, cursor, 100)
        reviewer.join(timeout=30)
        cursor = seen[-1].seq if seen else cursor
        with db.reader() as tx:
            seen += status_changes_since(tx, viewer, cursor, 100)
        assert sorted((c.report_id, c.status) for c in seen) == sorted(
            [(first["id"], "under_review"), (second["id"], "received")]
        )
    finally:
        db.close()
