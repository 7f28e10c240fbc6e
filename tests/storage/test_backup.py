"""Automatic encrypted backups (storage/backup.py) against real SQLCipher: what is written, kept, refused, stopped."""

from __future__ import annotations

import datetime as dt
import random
import stat
import threading
import time
from pathlib import Path

import pytest
from sqlcipher3.dbapi2 import Connection

from pso_desktop.domain import validate_report
from pso_desktop.domain.samples import sample_report
from pso_desktop.security.profiles import ProfileKeys
from pso_desktop.services.workstation import Workstation
from pso_desktop.storage import backup
from pso_desktop.storage.audit import AuditLog
from pso_desktop.storage.database import check_integrity, open_database
from pso_desktop.storage.reports import ReportStore
from tests.support.kdf import CHEAP_KDF
from tests.support.memory_keyring import MemoryKeyring

T0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
SECRET = "a long enough secret"


def reports(count: int, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    return [validate_report(sample_report(rng, i)).export() for i in range(count)]


def contents(path: Path, key: bytes) -> list[dict]:
    conn = open_database(path, key, full_check=True)
    try:
        return sorted(ReportStore(conn).export_all(), key=lambda report: report["id"])
    finally:
        conn.close()


def folder_listing(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir()) if folder.is_dir() else []


def test_backup_is_an_encrypted_checked_copy_with_a_time_for_a_name(conn: Connection, db_path: Path, key: bytes):
    added = reports(30)
    ReportStore(conn).add_reports(added[:20], submit=True)
    ReportStore(conn).add_reports(added[20:])  # some in the WAL only: the backup must see them too

    taken = backup.take_backup(conn, db_path, key, now=T0)

    folder = db_path.parent / "backups"
    assert taken.path == folder / "reports-20261201T080000.000000Z.db"
    assert folder_listing(folder) == [taken.path.name]  # no temporary file, no -wal or -shm beside it
    assert taken.size == taken.path.stat().st_size > 0
    assert stat.S_IMODE(taken.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    data = taken.path.read_bytes()
    assert not data.startswith(b"SQLite format 3")
    assert added[0]["narrative"].encode()[:40] not in data
    assert check_integrity(taken.path, key) == []
    assert backup.list_backups(db_path) == [taken]
    assert contents(taken.path, key) == sorted(ReportStore(conn).export_all(), key=lambda r: r["id"])
    with pytest.raises(Exception, match="could not be unlocked"):
        open_database(taken.path, bytes(32), full_check=True)


def test_newest_backups_are_kept(conn: Connection, db_path: Path, key: bytes):
    ReportStore(conn).add_reports(reports(3))
    for hour in range(7):
        backup.take_backup(conn, db_path, key, now=T0 + dt.timedelta(hours=hour), keep=5)
    kept = backup.list_backups(db_path)
    assert [b.taken_at for b in kept] == [T0 + dt.timedelta(hours=h) for h in (6, 5, 4, 3, 2)]
    assert len(folder_listing(db_path.parent / "backups")) == 5


def test_due_after_the_interval_and_never_for_an_empty_profile(conn: Connection, db_path: Path, key: bytes):
    assert backup.is_due(db_path, backup.DUE_AFTER, now=T0)
    assert backup.back_up_if_due(conn, db_path=db_path, key=key, max_age=dt.timedelta(0)) is None  # no reports
    assert backup.list_backups(db_path) == []

    ReportStore(conn).add_reports(reports(2))
    backup.take_backup(conn, db_path, key, now=T0)
    assert not backup.is_due(db_path, dt.timedelta(hours=4), now=T0 + dt.timedelta(hours=3, minutes=59))
    assert backup.is_due(db_path, dt.timedelta(hours=4), now=T0 + dt.timedelta(hours=4))
    # A backup stamped in the future (the clock was wrong) does not hold the next one back, and is listed as
    # the oldest: it is neither restored first nor kept forever by the rotation.
    assert backup.is_due(db_path, dt.timedelta(hours=4), now=T0 - dt.timedelta(days=1))
    earlier = T0 - dt.timedelta(days=1)
    backup.take_backup(conn, db_path, key, now=earlier)
    assert [b.taken_at for b in backup.list_backups(db_path, now=earlier)] == [earlier, T0]
    assert not backup.is_due(db_path, dt.timedelta(hours=4), now=earlier + dt.timedelta(hours=1))
    for hour in range(1, 5):
        backup.take_backup(conn, db_path, key, now=earlier + dt.timedelta(hours=hour), keep=4)
    assert T0 not in [b.taken_at for b in backup.list_backups(db_path, now=earlier)]  # rotated out first


def test_stop_request_abandons_the_backup_and_keeps_nothing(conn: Connection, db_path: Path, key: bytes):
    ReportStore(conn).add_reports(reports(40))
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return True

    with pytest.raises(backup.BackupAbandoned):
        backup.take_backup(conn, db_path, key, should_stop=should_stop, now=T0)
    assert calls
    assert folder_listing(db_path.parent / "backups") == []
    assert not conn.in_transaction  # the snapshot is released
    ReportStore(conn).add_reports(reports(1, seed=2))  # and the database is as writable as before


def test_backup_is_one_snapshot_while_another_connection_writes(
    conn: Connection, db_path: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
):
    """Writers go on during a backup (the form's autosave); the backup holds exactly the snapshot it began with,
    instead of restarting after every write (or copying half of one)."""
    ReportStore(conn).add_reports(reports(60))  # > 1 step of pages
    monkeypatch.setattr(backup, "STEP_PAGES", 8)
    writer = open_database(db_path, key)
    more = reports(6, seed=3)
    try:

        def write_between_steps() -> bool:
            if more:
                ReportStore(writer).save_draft(more.pop())
            return False

        taken = backup.take_backup(conn, db_path, key, should_stop=write_between_steps, now=T0)
    finally:
        writer.close()
    assert not more  # the writer really wrote during the copy
    assert len(contents(taken.path, key)) == 60
    assert len(list(ReportStore(conn).export_all())) == 66


def test_damaged_page_stops_the_backup_with_a_reason(pso_home: Path, key: bytes):
    path = pso_home / "profiles" / "nurse" / "reports.db"
    conn = open_database(path, key, create=True)
    ReportStore(conn).add_reports(reports(40))
    conn.close()  # checkpointed: every page is in the main file now
    data = bytearray(path.read_bytes())
    data[20 * 4096 + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    conn = open_database(path, key, full_check=False)  # the key check passes; page 21 is read by the backup
    try:
        with pytest.raises(backup.BackupError, match="damaged page"):
            backup.take_backup(conn, path, key, now=T0)
    finally:
        conn.close()
    assert folder_listing(path.parent / "backups") == []


def test_unusable_backup_folder_fails_with_one_sentence(conn: Connection, db_path: Path, key: bytes):
    """A file in the way of the backup folder: the backup fails with a plain reason, the database is untouched."""
    ReportStore(conn).add_reports(reports(3))
    (db_path.parent / "backups").write_bytes(b"not a folder")
    with pytest.raises(backup.BackupError, match="could not be written"):
        backup.take_backup(conn, db_path, key, now=T0)
    assert (db_path.parent / "backups").read_bytes() == b"not a folder"
    assert len(list(ReportStore(conn).export_all())) == 3


@pytest.fixture
def workstation(pso_home: Path, memory_keyring: MemoryKeyring) -> Workstation:
    ws = Workstation(pso_home, keys=ProfileKeys(pso_home, backend=memory_keyring, kdf=CHEAP_KDF))
    ws.create_profile("alice", SECRET)
    with ws.session("alice", SECRET) as session:
        session.add_reports(reports(80))
    return ws


def test_session_backup_is_audited_and_only_when_due(workstation: Workstation, pso_home: Path):
    with workstation.session("alice", SECRET) as session:
        assert session.back_up_if_due() is not None
        assert session.back_up_if_due() is None  # the newest is minutes old
        assert [e.action for e in session.audit.entries()].count("backup") == 1
        assert session.audit.verify()
    assert len(backup.list_backups(pso_home / "profiles" / "alice" / "reports.db")) == 1


def test_lock_does_not_wait_for_a_running_backup(workstation: Workstation, pso_home: Path):
    """The GUI runs the backup on the sync thread on a second connection; locking (the last audit entry, closing
    the connection) goes ahead while it runs, and the backup stops at its next step when asked."""
    session = workstation.open("alice", SECRET)
    in_backup, release, stop = threading.Event(), threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def should_stop() -> bool:
        in_backup.set()
        release.wait(30)  # hold the backup mid-copy, its snapshot open, until the lock is done
        return stop.is_set()

    def run() -> None:
        second = session.second_connection()
        try:
            outcome["taken"] = second.back_up_if_due(max_age=dt.timedelta(0), should_stop=should_stop)
        except backup.BackupAbandoned as exc:
            outcome["error"] = exc
        finally:
            second.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert in_backup.wait(30)
        started = time.monotonic()
        session.close()  # the lock
        assert time.monotonic() - started < 2.0
        assert session.back_up_if_due() is None  # locked: the key is gone, nothing more is backed up
        stop.set()
    finally:
        release.set()
        thread.join(30)
    assert isinstance(outcome.get("error"), backup.BackupAbandoned)
    db = pso_home / "profiles" / "alice" / "reports.db"
    assert folder_listing(db.parent / "backups") == []
    conn = open_database(db, workstation.keys.unlock("alice", SECRET))
    try:
        assert AuditLog(conn).entries()[-1].action == "lock"
    finally:
        conn.close()


KILLED_BACKUP = """
import sys, time
from pathlib import Path
from pso_desktop.storage import backup
from pso_desktop.storage.database import open_database
path, key = Path(sys.argv[1]), bytes.fromhex(sys.stdin.readline().strip())
conn = open_database(path, key)
def hold() -> bool:
    print("copying", flush=True)
    time.sleep(60)  # killed here, halfway through the copy
    return False
backup.take_backup(conn, path, key, should_stop=hold)
"""


def test_a_backup_killed_halfway_leaves_the_database_whole_and_publishes_nothing(
    conn: Connection, db_path: Path, key: bytes
):
    import os
    import signal
    import subprocess
    import sys

    added = reports(40)
    ReportStore(conn).add_reports(added, submit=True)
    conn.close()
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_BACKUP, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(key.hex() + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "copying"
        child.send_signal(signal.SIGKILL)
        child.wait(30)

    assert backup.list_backups(db_path) == []  # the half-made copy was never given a backup's name
    leftovers = folder_listing(db_path.parent / "backups")
    assert leftovers and all(name.startswith(".reports-") for name in leftovers)
    assert len(contents(db_path, key)) == 40  # the database opens, whole

    hours_ago = time.time() - 7200
    for name in leftovers:
        os.utime(db_path.parent / "backups" / name, (hours_ago, hours_ago))
    conn = open_database(db_path, key)
    try:
        taken = backup.take_backup(conn, db_path, key, now=T0)  # the next backup clears the old leftovers
    finally:
        conn.close()
    assert folder_listing(db_path.parent / "backups") == [taken.path.name]
