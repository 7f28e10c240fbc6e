"""Audit log: append-only by trigger, hash-chained, edits and truncation detected."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import sqlcipher3.dbapi2 as sqlcipher

from pso_desktop.storage.audit import GENESIS_HASH, AuditLog
from pso_desktop.storage.database import open_database, transaction
from tests.support.database import raw_connection

REPORT_ID = "3f1b2c3d-0000-4000-8000-00000000abcd"


def _fill(audit: AuditLog) -> None:
    audit.append("unlock", actor="nurse.a")
    audit.append("create", actor="nurse.a", report_id=REPORT_ID)
    audit.append("submit", actor="nurse.a", report_id=REPORT_ID, detail="1 report")
    audit.append("export", actor="nurse.a", detail="format=csv, 1 report")
    audit.append("lock", actor="nurse.a", detail="idle")


def test_entries_are_chained_and_verify(audit: AuditLog) -> None:
    assert audit.verify()  # an empty log is intact
    _fill(audit)
    entries = audit.entries()
    assert [e.action for e in entries] == ["unlock", "create", "submit", "export", "lock"]
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert audit.verify()


def test_update_and_delete_are_refused(audit: AuditLog, conn: sqlcipher.Connection) -> None:
    _fill(audit)
    with pytest.raises(sqlcipher.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2")
    with pytest.raises(sqlcipher.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
    assert audit.verify()


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE audit_log SET actor = 'nurse.b' WHERE seq = 2",
        "UPDATE audit_log SET detail = 'format=json, 1 report' WHERE seq = 4",
        "DELETE FROM audit_log WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 5",  # cut off the end: caught by the sequence high-water mark
        "UPDATE audit_log SET seq = 9 WHERE seq = 5",
    ],
)
def test_edits_through_a_raw_connection_are_detected(db_path: Path, key: bytes, tamper: str) -> None:
    conn = open_database(db_path, key, create=True)
    _fill(AuditLog(conn))
    conn.close()

    attacker = raw_connection(db_path, key)  # has the key, bypasses the app, drops the guards
    attacker.execute("DROP TRIGGER audit_log_no_update")
    attacker.execute("DROP TRIGGER audit_log_no_delete")
    attacker.execute(tamper)
    attacker.close()

    conn = open_database(db_path, key)
    try:
        assert not AuditLog(conn).verify()
    finally:
        conn.close()


def test_append_joins_the_callers_transaction(audit: AuditLog, conn: sqlcipher.Connection) -> None:
    audit.append("unlock", actor="nurse.a")
    with pytest.raises(RuntimeError), transaction(conn):
        audit.append("delete", actor="nurse.a", report_id=REPORT_ID)
        raise RuntimeError("the delete itself failed")
    assert [e.action for e in audit.entries()] == ["unlock"]
    audit.append("lock", actor="nurse.a")
    assert audit.verify()


def test_refuses_unknown_actions_and_multi_line_detail(audit: AuditLog) -> None:
    with pytest.raises(ValueError):
        audit.append("read_everything", actor="nurse.a")
    with pytest.raises(ValueError):
        audit.append("export", actor="nurse.a", detail="line one\nPatient: Jane Doe")
    with pytest.raises(ValueError):
        audit.append("export", actor="nurse.a", detail="x" * 201)
    with pytest.raises(ValueError):
        audit.append("export", actor="")
    assert audit.entries() == []
