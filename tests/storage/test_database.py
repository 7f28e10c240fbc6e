"""open_database: key handling, asserted settings, no writes on failure, ATTACH denied, permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlcipher3.dbapi2 as sqlcipher
from sqlcipher3.dbapi2 import Connection

from pso_desktop.storage import database
from pso_desktop.storage.database import check_integrity, current_settings, open_database, transaction
from pso_desktop.storage.errors import (
    DatabaseMissingError,
    StorageBusyError,
    StorageError,
    WrongKeyError,
)
from pso_desktop.storage.reports import ReportStore
from tests.support.database import file_set_digest


def test_settings_are_asserted(conn: Connection) -> None:
    settings = current_settings(conn)
    assert str(settings["cipher_version"]).startswith("4.")
    assert settings["temp_store"] == 2
    assert settings["synchronous"] == 2
    assert settings["secure_delete"] == 1
    assert settings["foreign_keys"] == 1
    assert settings["journal_mode"] == "wal"


def test_file_is_encrypted_and_private(conn: Connection, db_path: Path, reports: list[dict[str, Any]]) -> None:
    ReportStore(conn).add_reports(reports)
    # While open, the WAL holds the new pages: every file must be owner-only and free of plaintext.
    for suffix in ("", "-wal", "-shm"):
        path = db_path.with_name(db_path.name + suffix)
        assert path.exists(), suffix
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, suffix
    with_patient = next(report for report in reports if "patient" in report)
    secrets = [with_patient["narrative"][:40].encode(), with_patient["patient"]["mrn"].encode()]
    wal = db_path.with_name(db_path.name + "-wal").read_bytes()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = db_path.read_bytes()
    assert not data.startswith(b"SQLite format 3")
    assert b"SQLite" not in wal[:64]
    for secret in secrets:
        assert secret not in data and secret not in wal


def test_reopen_with_the_right_key(db_path: Path, key: bytes, reports: list[dict[str, Any]]) -> None:
    conn = open_database(db_path, key, create=True)
    ReportStore(conn).add_reports(reports)
    conn.close()
    conn = open_database(db_path, key)
    try:
        assert ReportStore(conn).get(reports[3]["id"]) == reports[3]
    finally:
        conn.close()


def test_wrong_key_raises_and_leaves_the_file_untouched(
    db_path: Path, key: bytes, reports: list[dict[str, Any]]
) -> None:
    conn = open_database(db_path, key, create=True)
    ReportStore(conn).add_reports(reports)
    conn.close()
    before = file_set_digest(db_path)
    assert before["-wal"] is None and before["-shm"] is None  # a clean close leaves the main file only
    with pytest.raises(WrongKeyError) as raised:
        open_database(db_path, os.urandom(32))
    assert file_set_digest(db_path) == before
    assert "key" in str(raised.value) and key.hex() not in str(raised.value)


def test_wrong_key_leaves_a_hot_wal_untouched(
    db_path: Path, key: bytes, reports: list[dict[str, Any]], tmp_path: Path
) -> None:
    """A crash leaves -wal and -shm beside the file; a wrong key must not recover, checkpoint or delete them."""
    conn = open_database(db_path, key, create=True)
    ReportStore(conn).add_reports(reports)
    crashed = tmp_path / "crashed" / "reports.db"
    crashed.parent.mkdir()
    for suffix in ("", "-wal", "-shm"):  # copied while the writer is still open: what a kill -9 leaves
        crashed.with_name(crashed.name + suffix).write_bytes(db_path.with_name(db_path.name + suffix).read_bytes())
    conn.close()
    before = file_set_digest(crashed)
    assert before["-wal"] is not None
    with pytest.raises(WrongKeyError):
        open_database(crashed, os.urandom(32))
    assert file_set_digest(crashed) == before
    # ... and the right key recovers everything that was committed.
    recovered = open_database(crashed, key)
    try:
        assert len(ReportStore(recovered).list_summaries()) == len(reports)
    finally:
        recovered.close()


def test_wrong_key_prints_nothing(db_path: Path, key: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    open_database(db_path, key, create=True).close()
    capfd.readouterr()
    with pytest.raises(WrongKeyError):
        open_database(db_path, os.urandom(32))
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # SQLCipher's own HMAC log lines are silenced


def test_missing_database_is_never_created(db_path: Path, key: bytes) -> None:
    with pytest.raises(DatabaseMissingError):
        open_database(db_path, key)
    assert not db_path.exists()
    assert not db_path.parent.exists()


def test_empty_file_is_not_turned_into_a_database(db_path: Path, key: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()
    with pytest.raises(DatabaseMissingError):
        open_database(db_path, key)
    assert db_path.stat().st_size == 0


def test_key_must_be_32_bytes(db_path: Path) -> None:
    for bad in (b"", b"x" * 31, b"x" * 33, "a" * 32):
        with pytest.raises(ValueError, match="32 raw bytes"):
            open_database(db_path, bad, create=True)  # type: ignore[arg-type]
    assert not db_path.exists()


def test_key_never_appears_in_sql_text(db_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    statements: list[str] = []
    real_connect = sqlcipher.connect

    def tracing_connect(*args: object, **kwargs: object) -> Connection:
        connection = real_connect(*args, **kwargs)
        connection.set_trace_callback(statements.append)
        return connection

    monkeypatch.setattr(sqlcipher, "connect", tracing_connect)
    open_database(db_path, key, create=True).close()
    open_database(db_path, key).close()
    assert statements, "the trace callback saw no SQL at all"
    assert not [s for s in statements if key.hex() in s.lower() or s.lower().lstrip().startswith("pragma key")]


def test_attach_and_detach_are_denied(conn: Connection, tmp_path: Path) -> None:
    plain = tmp_path / "exfiltrate.db"
    with pytest.raises(sqlcipher.DatabaseError, match="not authorized"):
        conn.execute(f"ATTACH DATABASE '{plain}' AS plain KEY ''")
    with pytest.raises(sqlcipher.DatabaseError, match="not authorized"):
        conn.execute("DETACH DATABASE temp")
    assert not plain.exists()


def test_check_integrity_is_clean_and_read_only(db_path: Path, key: bytes, reports: list[dict[str, Any]]) -> None:
    conn = open_database(db_path, key, create=True)
    ReportStore(conn).add_reports(reports, submit=True)
    conn.close()
    before = file_set_digest(db_path)
    assert check_integrity(db_path, key) == []
    assert file_set_digest(db_path) == before
    with pytest.raises(WrongKeyError):
        check_integrity(db_path, os.urandom(32))
    with pytest.raises(DatabaseMissingError):
        check_integrity(db_path.with_name("other.db"), key)


def test_busy_database_is_classified(
    db_path: Path, key: bytes, conn: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "BUSY_TIMEOUT_SECONDS", 0.05)
    second = open_database(db_path, key)
    try:
        conn.execute("BEGIN IMMEDIATE")  # the first connection holds the write lock
        with pytest.raises(StorageBusyError) as raised:
            ReportStore(second).save_draft(
                {"id": "0b6c1c55-0000-4000-8000-000000000001", "revision": 1, "narrative": "x"}
            )
        assert isinstance(raised.value, StorageError)
        conn.execute("ROLLBACK")
    finally:
        second.close()


def test_transaction_nests_as_a_savepoint(conn: Connection) -> None:
    conn.execute("CREATE TEMP TABLE t (x INTEGER)")
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError), transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            raise RuntimeError("inner failure")
        assert conn.in_transaction  # the outer transaction survives the inner rollback
    assert [row[0] for row in conn.execute("SELECT x FROM t")] == [1]
    assert not conn.in_transaction


def test_plain_benchmark_path_uses_the_same_schema(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    conn = database._open_unencrypted_for_benchmark(path, create=True)
    try:
        settings = current_settings(conn)
        assert settings["journal_mode"] == "wal" and settings["synchronous"] == 2
    finally:
        conn.close()
    assert path.read_bytes().startswith(b"SQLite format 3")  # proves the encrypted files above really differ
